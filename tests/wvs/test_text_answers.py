"""The text answer modes' own parts: describe prompts, a mode's answers.parquet columns and metrics.json block."""

from __future__ import annotations

import polars as pl
import pytest

from lexalign.core.errors import LexalignError
from lexalign.norms.templates import prompt_templates
from lexalign.wvs.describe import parse_stated
from lexalign.wvs.prompts import build_prompt
from lexalign.wvs.refusal import NO_OPTION, OPTION, REFUSAL, TextAnswer
from lexalign.wvs.sampling import aggregate
from lexalign.wvs.settings import Sampling
from lexalign.wvs.text_answers import (
    DESCRIBE,
    GENERATE,
    SAMPLE,
    describe_templates,
    mode_columns,
    mode_record,
    mode_summary,
    text_outcomes,
)

ITEM = {
    "item_id": "Q1",
    "n_options": 4,
    "question_en": "How important is family in your life?",
    "options_en": ["Very important", "Rather important", "Not very important", "Not at all important"],
    "question_zh": "家庭在您生活中有多重要？",
    "options_zh": ["非常重要", "比较重要", "不太重要", "一点也不重要"],
}


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("framing", ["interviewer", "neutral", "persona", "observer"])
def test_describe_prompts_ask_for_the_countrys_shares_in_every_framing(language, framing):
    templates = prompt_templates(language)
    country = "United States" if language == "en" else "China"
    described = describe_templates(templates, language, country)
    messages, _ = build_prompt(ITEM, described, language, country, framing, instruction="wvs_describe_instruction")
    user = messages[-1]["content"]
    place = templates["wvs_countries"][country]
    assert user.endswith(templates["wvs_describe_instruction"].format(country=place))
    assert templates["wvs_instruction"] not in user  # not the "answer with the option number" line
    if framing in ("interviewer", "observer"):
        assert user.startswith(templates[f"wvs_describe_{framing}"].format(country=place))
    system = [m["content"] for m in messages if m["role"] == "system"]
    assert system == ([templates["wvs_describe_persona"].format(country=place)] if framing == "persona" else [])


def test_describe_templates_name_a_missing_or_wrong_template():
    templates = prompt_templates("en")
    with pytest.raises(LexalignError, match="no wvs_describe_observer template"):
        describe_templates({k: v for k, v in templates.items() if k != "wvs_describe_observer"}, "en", "China")
    with pytest.raises(LexalignError, match=r"templates\.prompts\.en\.wvs_describe_instruction: unknown placeholder"):
        describe_templates({**templates, "wvs_describe_instruction": "{cue}?"}, "en", "China")


def _sample_row(answers):
    sampled = aggregate(answers, 3)
    return {"sampled": sampled, "sample_texts": ["t"] * len(answers), "sample_outcomes": [a.outcome for a in answers]}


def test_sample_columns_record_and_summary():
    rows = [
        _sample_row([TextAnswer(OPTION, 0), TextAnswer(OPTION, 0), TextAnswer(REFUSAL), TextAnswer(OPTION, 2)]),
        _sample_row([TextAnswer(NO_OPTION)] * 4),
    ]
    record = mode_record(SAMPLE, rows[0])
    assert set(record) == set(mode_columns(SAMPLE))
    assert record["sample_counts"] == [2, 0, 1] and record["n_samples"] == 4
    assert (record["refusal_share"], record["no_option_share"], record["invalid_share"]) == (0.25, 0.0, 0.25)
    pl.DataFrame([record, mode_record(SAMPLE, rows[1])], schema=mode_columns(SAMPLE))  # the types fit
    summary = mode_summary(SAMPLE, rows, Sampling(n=4, temperature=0.7, seed=3, max_new_tokens=8))
    assert summary["n"] == 4 and summary["temperature"] == 0.7 and summary["seed"] == 3
    assert summary["max_new_tokens"] == 8
    assert summary["answers"] == 8 and summary["items_without_valid_answer"] == 1
    assert summary["shares"] == {"refusal": 1 / 8, "no_valid_option": 4 / 8, "invalid": 5 / 8}
    assert text_outcomes(SAMPLE, rows) == {OPTION: 3, REFUSAL: 1, NO_OPTION: 4}


def test_describe_columns_record_and_summary():
    labels = ITEM["options_en"]
    rows = [
        {"stated": parse_stated(text, labels), "text_outcome": parse_stated(text, labels).outcome}
        for text in ("1. 60%\n2. 30%\n3. 20%\n4. 10%", "30%, 40%, 20%, 10%", "no idea")
    ]
    record = mode_record(DESCRIBE, rows[0])
    assert set(record) == set(mode_columns(DESCRIBE))
    assert record["stated_raw"] == [60.0, 30.0, 20.0, 10.0] and record["stated_raw_sum"] == 120.0
    assert mode_record(DESCRIBE, rows[2])["stated_raw"] is None
    pl.DataFrame([mode_record(DESCRIBE, row) for row in rows], schema=mode_columns(DESCRIBE))
    summary = mode_summary(DESCRIBE, rows)
    assert summary["invalid_share"] == pytest.approx(1 / 3)
    assert summary["raw_sum"]["items_not_100"] == 1 and summary["raw_sum"]["max"] == 120.0
    assert summary["assigned_by"] == {"reference": 1, "position": 1}
    assert text_outcomes(DESCRIBE, rows) == {"stated": 2, "refusal": 0, "no usable numbers": 1}


def test_logits_and_generate_have_no_columns_or_block_of_their_own():
    for mode in ("logits", GENERATE):
        assert mode_columns(mode) == {} and mode_record(mode, {}) == {} and mode_summary(mode, []) is None
    assert text_outcomes("logits", []) is None
