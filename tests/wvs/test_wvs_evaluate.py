"""Tier-2 model answers on a tiny random model: prompts, option scoring, generate mode, the wvs rule."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.norms.templates import prompt_templates
from lexalign.wvs.evaluate import evaluate, select_items
from lexalign.wvs.metrics import item_metrics, tension_distance
from lexalign.wvs.prompts import AssociationContext, build_prompt, label_answers, option_numbers, render
from lexalign.wvs.scoring import parse_answer, score_options
from lexalign.wvs.settings import WvsJob, WvsSettings
from lexalign.wvs.sources.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
WVS_CSV = REPO / "data" / "illustrative" / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv"
EN, ZH = prompt_templates("en"), prompt_templates("zh")


def schema_settings(**overrides) -> WvsSettings:
    """The wvs section with the schema's defaults (the only defaults), then ``overrides``."""
    schema = yaml.safe_load((SCHEMA).read_text(encoding="utf-8"))
    wvs = schema["properties"]["wvs"]["properties"]
    defaults = {key: spec["default"] for key, spec in wvs.items() if "default" in spec}
    norms = {key: spec["default"] for key, spec in wvs["norms"]["properties"].items()}
    return WvsSettings.from_config({**defaults, "norms": norms, **overrides})


@pytest.fixture(scope="session")
def wvs_model(tmp_path_factory) -> Path:
    """A tiny random Llama with a real BPE tokenizer, prepared like any model."""
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("wvs-model")
    raw = build_tiny_model(
        root / "raw", extra_text=["选项： 请只回答选项编号。 Options: Answer with the option number only. 10 11 12"]
    )
    return prepare_model("tiny", {"path": str(raw)}, root / "prepared")


@pytest.fixture(scope="session")
def loaded(wvs_model):
    from lexalign.models.loading import load_model

    model = load_model(wvs_model, dtype="float32")  # exact comparisons below: no bf16 rounding
    model.model.eval()
    return model


@pytest.fixture(scope="session")
def associations(tmp_path_factory) -> Path:
    rows = [
        ("family", "love", 30),
        ("family", "home", 20),
        ("family", "mother", 10),
        ("friend", "buddy", 9),
        ("work", "job", 12),
        ("religion", "god", 15),
        ("家庭", "温暖", 25),
        ("家庭", "父母", 12),
        ("朋友", "友谊", 8),
        ("工作", "上班", 10),
    ]
    table = pl.DataFrame(
        {
            "cue": [r[0] for r in rows],
            "response": [r[1] for r in rows],
            "count": [r[2] for r in rows],
            "split": ["train"] * len(rows),
        },
        schema={"cue": pl.String, "response": pl.String, "count": pl.UInt32, "split": pl.String},
    )
    path = tmp_path_factory.mktemp("wvs-assoc") / "associations.parquet"
    table.write_parquet(path)
    return path


ITEMS = {item["item_id"]: item for item in load_catalog()}


# --------------------------------------------------------------------------------------------------
# Prompts


def test_prompt_framings(loaded):
    item = ITEMS["Q1"]
    messages, fallback = build_prompt(item, EN, "en", "United States", "interviewer")
    assert not fallback and len(messages) == 1
    text = messages[0]["content"]
    assert "the United States" in text and "World Values Survey" in text
    assert "1. Very important\n2. Rather important\n3. Not very important\n4. Not at all important" in text
    assert text.endswith("Answer with the option number only.")
    zh, _ = build_prompt(item, ZH, "zh", "China", "interviewer")
    assert (
        "中国" in zh[0]["content"]
        and "1. 非常重要" in zh[0]["content"]
        and zh[0]["content"].endswith("请只回答选项编号。")
    )
    neutral, _ = build_prompt(item, EN, "en", "United States", "neutral")
    assert "United States" not in neutral[0]["content"]
    persona, _ = build_prompt(item, EN, "en", "China", "persona", system="Be yourself.")
    assert (
        persona[0]["role"] == "system" and "Be yourself." in persona[0]["content"] and "China" in persona[0]["content"]
    )
    observer, _ = build_prompt(item, ZH, "zh", "United States", "observer")
    assert "美国" in observer[0]["content"] and "普通人" in observer[0]["content"]
    scale, _ = build_prompt(ITEMS["Q182"], EN, "en", "United States", "interviewer")
    assert "1. Never justifiable\n2\n3\n" in scale[0]["content"] and "10. Always justifiable" in scale[0]["content"]
    rendered = render(loaded.tokenizer, messages)
    assert rendered.startswith("<bos><start_of_turn>user\n") and rendered.endswith("<start_of_turn>model\n")
    english_only = {**item, "question_zh": None, "options_zh": None}
    assert build_prompt(english_only, ZH, "zh", "China", "interviewer")[1] is True
    with pytest.raises(LexalignError, match=r"templates\.prompts\.nl: no built-in templates.*wvs_interviewer"):
        prompt_templates("nl", {"nl": {"system": "x"}})
    # the wording is configuration: overriding one key changes the prompt
    custom = prompt_templates(
        "en", {"en": {"wvs_instruction": "Reply with a digit.", "wvs_countries": {"China": "the PRC"}}}
    )
    text = build_prompt(item, custom, "en", "China", "interviewer")[0][0]["content"]
    assert text.endswith("Reply with a digit.") and "live in the PRC" in text


def test_association_context(associations):
    en = AssociationContext.from_parquet(associations, "en", top_k=2, max_cues=3, templates=EN)
    assert en.cues_for(["family", "How important is the following in your life: family?"]) == ["family"]
    assert en.cues_for(["friends and work"]) == ["friend", "work"]
    assert en.block(["family"]).endswith("family: love, home")
    zh = AssociationContext.from_parquet(associations, "zh", top_k=2, max_cues=3, templates=ZH)
    assert zh.cues_for(["家庭和朋友", "以下这一项在您的生活中有多重要：工作？"]) == ["家庭", "朋友", "工作"]
    assert zh.block(["家庭"]).endswith("\n家庭：温暖，父母")


def test_jieba_missing_is_a_clear_error(associations, monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)
    zh = AssociationContext.from_parquet(associations, "zh", top_k=2, max_cues=3, templates=ZH)
    with pytest.raises(LexalignError, match="needs the optional dependency jieba"):
        zh.cues_for(["家庭"])


# --------------------------------------------------------------------------------------------------
# Scoring


def _manual_scores(loaded, prompt: str, answers: list[str]) -> list[float]:
    """Reference: score each option string by separate forward passes (no batching, no sharing)."""
    import torch

    tok, model = loaded.tokenizer, loaded.model
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    digits = [
        i
        for i, piece in enumerate(tok.convert_ids_to_tokens(list(range(len(tok)))))
        if piece and piece[0] in "0123456789"
    ]
    out = []
    for answer in answers:
        full = tok(prompt + answer, add_special_tokens=False)["input_ids"]
        cont = full[len(prompt_ids) :]
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), -1)
        total = sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(cont))
        if any(other != answer and other.startswith(answer) for other in answers):
            with torch.inference_mode():
                after = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0, -1].float(), -1)
            total += math.log(1 - float(after[digits].exp().sum()))
        out.append(total)
    return out


def test_option_scores_match_separate_passes(loaded):
    tok = loaded.tokenizer
    items = [ITEMS["Q182"], ITEMS["Q1"], ITEMS["Q7"], ITEMS["Q172"]]
    prompts = [render(tok, build_prompt(item, EN, "en", "United States", "interviewer")[0]) for item in items]
    scored = score_options(loaded.model, tok, prompts, [option_numbers(i["n_options"]) for i in items], batch_size=3)
    for item, prompt, result in zip(items, prompts, scored):
        n = item["n_options"]
        expected = _manual_scores(loaded, prompt, [str(k) for k in range(1, n + 1)])
        assert result["logprobs"] == pytest.approx(expected, abs=2e-4)
        assert sum(result["probs"]) == pytest.approx(1.0) and len(result["probs"]) == n
        assert sum(result["probs_norm"]) == pytest.approx(1.0)
        assert result["valid_mass"] == pytest.approx(float(np.exp(expected).sum()), rel=1e-3)
    # "10" is scored as its own answer, and "1" as "1 then no further digit"
    ten = scored[0]
    assert ten["probs_norm"] != pytest.approx(ten["probs"])


def test_scores_do_not_depend_on_batching(loaded):
    tok = loaded.tokenizer
    items = [ITEMS[q] for q in ("Q1", "Q48", "Q57", "Q152", "Q171")]
    prompts = [render(tok, build_prompt(item, ZH, "zh", "China", "interviewer")[0]) for item in items]
    counts = [option_numbers(i["n_options"]) for i in items]
    together = score_options(loaded.model, tok, prompts, counts, batch_size=5)
    alone = [score_options(loaded.model, tok, [p], [n], batch_size=1)[0] for p, n in zip(prompts, counts)]
    uncached = score_options(loaded.model, tok, prompts, counts, batch_size=2, prefix_cache=False)
    for a, b, c in zip(together, alone, uncached):
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=2e-4)
        assert a["logprobs"] == pytest.approx(c["logprobs"], abs=2e-4)


def test_the_prefix_cache_goes_by_the_models_own_keyword(loaded, caplog):
    """The shared prefix's cache is passed and read under the keyword the model's forward takes (transformers
    5 renamed ``past_key_values`` to ``cache`` and drops the old name in a later release), with no
    deprecation warning, and it is used (the log names the cached prefix)."""
    import warnings

    from lexalign.models.generation import cache_keyword

    tok = loaded.tokenizer
    items = [ITEMS[q] for q in ("Q1", "Q48")]
    prompts = [render(tok, build_prompt(item, ZH, "zh", "China", "interviewer")[0]) for item in items]
    counts = [option_numbers(i["n_options"]) for i in items]
    assert cache_keyword(loaded.model) in ("cache", "past_key_values")
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="lexalign.wvs.scoring"):
        warnings.filterwarnings("error", message=r".*past_key_values.* is deprecated")
        score_options(loaded.model, tok, prompts, counts, batch_size=2)
    assert re.search(r"shared prefix: [1-9]\d* tokens", caplog.text)


def test_label_text_scoring(loaded):
    tok = loaded.tokenizer
    item = ITEMS["Q1"]
    messages = build_prompt(item, EN, "en", "United States", "interviewer", instruction="wvs_instruction_label")[0]
    assert messages[-1]["content"].endswith("\nAnswer with the text of one option only.")
    prompt = render(tok, messages)
    labels = label_answers(item, "en")
    assert labels == ["Very important", "Rather important", "Not very important", "Not at all important"]
    result = score_options(loaded.model, tok, [prompt], [labels], batch_size=2)[0]
    expected = np.asarray(_manual_scores(loaded, prompt, labels))  # label texts: no digit termination
    assert result["logprobs"] == pytest.approx(expected, abs=2e-4)
    # several items in batches, with and without the shared prefix cache: the same scores
    items = [ITEMS[q] for q in ("Q1", "Q48", "Q152", "Q182")]
    label_prompt = "wvs_instruction_label"
    prompts = [
        render(tok, build_prompt(i, EN, "en", "United States", "interviewer", instruction=label_prompt)[0])
        for i in items
    ]
    strings = [label_answers(i, "en") for i in items]
    cached = score_options(loaded.model, tok, prompts, strings, batch_size=3)
    plain = score_options(loaded.model, tok, prompts, strings, batch_size=5, prefix_cache=False)
    assert cached[0]["logprobs"] == pytest.approx(expected, abs=2e-4)
    for a, b in zip(cached, plain):
        assert a["logprobs"] == pytest.approx(b["logprobs"], abs=2e-4)
    chars = np.asarray([len(label) for label in labels], dtype=float)
    per_char = np.exp(expected / chars - np.max(expected / chars))
    assert result["probs_norm"] == pytest.approx(per_char / per_char.sum(), abs=1e-4)  # acc_norm: per character
    assert result["probs_norm"] != pytest.approx(result["probs"], abs=1e-3)
    # a scale labelled only at its ends: the middle positions are scored by their numbers
    assert label_answers(ITEMS["Q182"], "en")[:3] == ["Never justifiable", "2", "3"]


def test_parse_answer():
    labels = ["Never", "", "", "", "", "", "", "", "", "Always"]
    assert parse_answer("3", labels) == 2
    assert parse_answer("Answer: 10.", labels) == 9
    assert parse_answer("１", labels) == 0  # full-width digit
    assert parse_answer("12", labels) is None
    assert parse_answer("I would say always", labels) == 9
    assert parse_answer("no idea", labels) is None
    assert parse_answer("非常重要", ["非常重要", "比较重要"]) == 0


def test_select_items_spreads_over_the_catalog(humans):
    table = pl.read_parquet(humans)
    picked = select_items(table, 10)
    assert (
        picked.height == 10
        and picked["item_id"][0] == table["item_id"][0]
        and picked["item_id"][-1] == table["item_id"][-1]
    )
    assert select_items(table, None).height == table.height


# --------------------------------------------------------------------------------------------------
# The wvs rule


def job_for(wvs_model, humans, out, **kwargs) -> WvsJob:
    """A wvs job writing into ``out``: English vanilla, interviewer-logits unless given."""
    args = {
        "lang": "en",
        "method": "vanilla",
        "prompt_language": "en",
        "country": "United States",
        "framing": "interviewer",
        "mode": "logits",
        **kwargs,
    }
    return WvsJob(wvs_model, humans, out / "metrics.json", out / "answers.parquet", model_name="tiny", **args)


def run(wvs_model, humans, tmp_path, settings=None, prompts=None, **kwargs):
    """One wvs job; ``framing`` and ``mode`` are the job's (the rule's wildcards), interviewer-logits unless given."""
    settings = schema_settings(**{"max_items": 24, "high_tension_n": 5, "batch_size": 8, **(settings or {})})
    out = tmp_path / kwargs.get("method", "vanilla")
    metrics = evaluate(job_for(wvs_model, humans, out, **kwargs), settings, prompts)
    return (
        metrics,
        json.loads((out / "metrics.json").read_text(encoding="utf-8")),
        pl.read_parquet(out / "answers.parquet"),
    )


def test_evaluate_logits(wvs_model, humans, tmp_path):
    metrics, written, answers = run(wvs_model, humans, tmp_path)
    assert written == json.loads(json.dumps(metrics))
    assert written["schema_version"] == 3
    assert written["n_items"] == written["n_scored"] == answers.height == 24
    assert "base 2" in written["definitions"]["js"] and "distance" in written["definitions"]["js"]
    assert "epsilon 1e-06" in written["definitions"]["kl_model_human"]
    for name in ("model", "uniform", "target_majority", "other_country"):
        for country in ("usa", "chn"):
            block = written["results"][name][country]
            assert block["overall"]["n"] == 24 and block["high_tension"]["n"] == 5
            assert sum(b["n"] for b in block["by_option_count"].values()) == 24
    tension = written["high_tension"]
    assert tension["closer_to"]["chn"] + tension["closer_to"]["usa"] + tension["ties"] == 5
    assert len(tension["items"]) == 5 and tension["answered"] == 5 and tension["unanswered"] == []
    # every item's full per-option probabilities are written out, with its distances
    row = answers.row(0, named=True)
    assert len(row["probs"]) == len(row["logprobs"]) == row["n_options"] and row["answer_code"] in row["codes"]
    expected = item_metrics(row["probs"], row["human_usa"], 1e-6)
    assert row["js_usa"] == pytest.approx(expected["js"]) and row["emd_norm_usa"] == pytest.approx(expected["emd_norm"])
    study = item_metrics(row["probs"], row["human_usa"], definition="study")
    assert row["study_js_usa"] == pytest.approx(study["js"]) and row["study_distance_usa"] == pytest.approx(
        study["distance"]
    )
    # the reference answerers by hand, per item and averaged
    uniform_js = [
        item_metrics([1 / n] * n, h, 1e-6)["js"] for n, h in answers.select("n_options", "human_usa").iter_rows()
    ]
    assert answers["uniform_js_usa"].to_list() == pytest.approx(uniform_js)
    assert written["results"]["uniform"]["usa"]["overall"]["js"] == pytest.approx(np.mean(uniform_js))
    assert written["results"]["target_majority"]["usa"]["overall"]["acc"] == 1.0  # US majority vs US humans
    assert answers["other_country_js_chn"].to_list() == pytest.approx([0.0] * 24, abs=1e-7)  # China vs itself
    assert written["results"]["other_country"]["chn"]["overall"]["emd"] == pytest.approx(0.0, abs=1e-9)
    top = answers.sort("human_tension", descending=True).head(5)["item_id"].to_list()
    assert sorted(top) == sorted(answers.filter(pl.col("high_tension"))["item_id"].to_list())


def test_evaluate_label_text_scores(wvs_model, humans, tmp_path):
    _, written, answers = run(wvs_model, humans, tmp_path, settings={"max_items": 6, "score_labels": True})
    label = written["label_text"]
    for row in answers.iter_rows(named=True):
        assert len(row["label_probs"]) == len(row["label_probs_norm"]) == len(row["probs"]) == row["n_options"]
        assert sum(row["label_probs"]) == pytest.approx(1.0) and row["label_probs"] != pytest.approx(row["probs"])
    acc = [float(np.argmax(p) == np.argmax(h)) for p, h in answers.select("label_probs", "human_usa").iter_rows()]
    acc_norm = [
        float(np.argmax(p) == np.argmax(h)) for p, h in answers.select("label_probs_norm", "human_usa").iter_rows()
    ]
    assert label["results"]["usa"]["overall"]["acc"] == pytest.approx(np.mean(acc))
    assert label["length_normalised"]["usa"]["overall"]["acc"] == pytest.approx(np.mean(acc_norm))
    assert answers["prompt"][0].endswith("Answer with the option number only.<end_of_turn>\n<start_of_turn>model\n")
    _, off, plain = run(wvs_model, humans, tmp_path, settings={"max_items": 3})
    assert off["label_text"] is None and plain["label_probs"].null_count() == 3


def test_study_block(wvs_model, humans, tmp_path):
    _, written, answers = run(wvs_model, humans, tmp_path, settings={"high_tension_n": 6})
    study = written["study"]
    assert "values" in study["definitions"]["distance"] and "natural log" in study["definitions"]["js"]
    # the study's tension set: the top items by its own tension distance over every item asked
    by_hand = [tension_distance(us, cn, "study") for us, cn in answers.select("human_usa", "human_chn").iter_rows()]
    assert answers["human_tension_study"].to_list() == pytest.approx(by_hand)
    top = answers.with_row_index().sort(["human_tension_study", "index"], descending=[True, False]).head(6)
    assert [i["item_id"] for i in study["high_tension"]["items"]] == top["item_id"].to_list()
    assert set(top["item_id"]) == set(answers.filter(pl.col("high_tension_study"))["item_id"])
    chosen = answers.filter(pl.col("high_tension_study"))
    closer = int((chosen["study_distance_chn"] < chosen["study_distance_usa"]).sum())
    assert study["high_tension"]["closer_to"]["chn"] == closer and study["high_tension"]["n"] == 6
    overall = study["results"]["model"]["usa"]["overall"]
    assert overall["js"] == pytest.approx(answers["study_js_usa"].mean())
    assert overall["js"] == pytest.approx(written["results"]["model"]["usa"]["overall"]["js"] * math.sqrt(math.log(2)))
    assert "goqa_similarity" not in overall


def test_generate_mode(wvs_model, humans, loaded, tmp_path, monkeypatch):
    import lexalign.models.generation as generation

    tok = loaded.tokenizer
    conversations = [build_prompt(ITEMS[q], EN, "en", "United States", "interviewer")[0] for q in ("Q1", "Q2", "Q3")]
    texts = generation.generate_on_model(
        loaded.model, tok, conversations, stop_token_ids=loaded.stop_token_ids, max_new_tokens=3, batch_size=2
    )
    assert len(texts) == 3 and all(t.n_tokens <= 3 for t in texts)
    # A random tiny model answers nonsense: parse canned answers instead, as an instruction-following model would.
    canned = ["2", "I'd say 10", "Rather important", "no idea", "<think>maybe 7</think>3"]

    def fake(model, tok, conversations, **kwargs):
        return [generation.Generation(text, 1, True) for text in (canned * 10)[: len(conversations)]]

    monkeypatch.setattr(generation, "generate_on_model", fake)
    metrics, _, answers = run(
        wvs_model, humans, tmp_path, mode="generate", settings={"max_items": 5, "high_tension_n": 5}
    )
    assert metrics["mode"] == "generate" and answers["raw_text"].to_list() == canned
    assert answers["text_outcome"].to_list() == ["option", *["no valid option"] * 3, "option"]
    assert metrics["text_outcomes"] == {"option": 2, "refusal": 0, "no valid option": 3}
    assert metrics["skipped"]["unparsed_answers"] == answers["probs"].null_count() >= 1
    assert metrics["n_scored"] == 5 - metrics["skipped"]["unparsed_answers"]
    first = answers.row(0, named=True)
    assert first["probs"] == [0.0, 1.0, 0.0, 0.0] and first["answer_position"] == 2
    assert answers.row(4, named=True)["answer_position"] == 3  # the think block is not the answer
    # unanswered items stay in the high-tension set, listed and counted in neither direction
    tension = metrics["high_tension"]
    assert tension["n"] == 5 and len(tension["unanswered"]) == 5 - tension["answered"] >= 1
    assert tension["closer_to"]["chn"] + tension["closer_to"]["usa"] + tension["ties"] == tension["answered"]
    monkeypatch.setattr(
        generation, "generate_on_model", lambda model, tok, c, **k: [generation.Generation("hmm", 1, True)] * len(c)
    )
    # no valid option anywhere is a result (the gap table reads it), not an error
    metrics, _, answers = run(wvs_model, humans, tmp_path, mode="generate", settings={"max_items": 5})
    assert metrics["n_scored"] == 0 and set(answers["text_outcome"]) == {"no valid option"}
    assert metrics["results"]["model"]["usa"]["overall"]["n"] == 0


def test_evaluate_assoc_and_prompt_methods(wvs_model, humans, associations, tmp_path):
    assoc, _, answers = run(
        wvs_model,
        humans,
        tmp_path,
        method="assoc_prompt",
        lang="zh",
        prompt_language="zh",
        country="China",
        associations_path=associations,
        settings={"max_items": 12},
    )
    assert assoc["associations_context"]["items_with_associations"] >= 1
    q1 = answers.filter(pl.col("item_id") == "Q1").row(0, named=True)
    assert q1["assoc_cues"] == ["家庭"] and "下面是我的问题。\n你所在群体的人对本题中一些词语的联想" in q1["prompt"]
    assert "\n家庭：温暖，父母\n\n以下这一项在您的生活中有多重要：家庭？" in q1["prompt"]
    persona, _, answers = run(
        wvs_model, humans, tmp_path, method="prompt", framing="neutral", settings={"max_items": 3}
    )
    assert "born and raised in the United States" in answers["prompt"][0]
    # templates.prompts overrides reach the prompt
    _, _, custom = run(
        wvs_model, humans, tmp_path, settings={"max_items": 3}, prompts={"en": {"wvs_options": "Choices:"}}
    )
    assert "\nChoices:\n1. " in custom["prompt"][0]


def test_evaluate_user_errors(wvs_model, humans, tmp_path):
    with pytest.raises(LexalignError, match="wvs_country: 'France'"):
        run(wvs_model, humans, tmp_path, country="France")
    with pytest.raises(LexalignError, match="trained method but no adapter"):
        run(wvs_model, humans, tmp_path, method="sft")
    with pytest.raises(LexalignError, match="method 'assoc_prompt' needs the ingested associations"):
        run(wvs_model, humans, tmp_path, method="assoc_prompt")
    with pytest.raises(LexalignError, match=r"unknown method 'chatty_prompt' \(known: vanilla"):
        run(wvs_model, humans, tmp_path, method="chatty_prompt")
    with pytest.raises(LexalignError, match=r"wvs: framing 'chatty' is not one of .*\(config wvs.framings\)"):
        run(wvs_model, humans, tmp_path, framing="chatty")
    with pytest.raises(LexalignError, match=r"wvs: mode 'survey' is not one of .*\(config wvs.modes\)"):
        run(wvs_model, humans, tmp_path, mode="survey")
    with pytest.raises(LexalignError, match=r"^config wvs: no wvs.assoc_max_cues, wvs.assoc_model_method, "):
        WvsSettings.from_config({"batch_size": 8})


# --------------------------------------------------------------------------------------------------
# Generate mode: refusals, the token budget, <think> blocks


LABELS = ["Very important", "Rather important", "Not very important", "Not at all important"]


@pytest.mark.parametrize(
    ("text", "language", "outcome", "position"),
    [
        ("2", "en", "option", 1),
        ("**3.** Not very important", "en", "option", 2),
        ("As an AI language model, I don't have personal opinions.", "en", "refusal", None),
        ("I'm sorry, but I can't answer that.", "en", "refusal", None),
        ("I cannot choose one of these options.", "en", "refusal", None),
        ("I would prefer not to say.", "en", "refusal", None),
        ("I'd say it is rather important", "en", "option", 1),  # a quoted label, no refusal
        ("Hmm, hard to tell.", "en", "no valid option", None),
        ("7", "en", "no valid option", None),  # out of range
        ("作为一个人工智能，我没有个人观点。", "zh", "refusal", None),
        ("抱歉，我无法回答这个问题。", "zh", "refusal", None),
        ("我不能选择任何一个选项", "zh", "refusal", None),
        ("１", "zh", "option", 0),  # full-width digit, NFKC
        ("2。比较重要", "zh", "option", 1),
        ("As an AI, I cannot choose.", "zh", "refusal", None),  # English refusals count in every language
        ("这个问题很难说。", "zh", "no valid option", None),
        ("<think>As an AI I might refuse, but</think>4", "en", "option", 3),  # the think block is not the answer
        ("<think>The user asks about family... I'd pick 1", "en", "no valid option", None),  # cut off in the block
        ("1. I'm sorry to say it is very important", "en", "option", 0),  # a leading option number wins
    ],
)
def test_text_answer_outcomes(text, language, outcome, position):
    from lexalign.wvs.refusal import classify

    answer = classify(text, LABELS, language)
    assert (answer.outcome, answer.position) == (outcome, position)


def test_refusal_patterns_are_data_per_language():
    from lexalign.wvs.refusal import REFUSALS_FILE, is_refusal, refusal_patterns

    data = yaml.safe_load(REFUSALS_FILE.read_text(encoding="utf-8"))
    assert {"en", "zh"} <= set(data) and all(data[lang] for lang in ("en", "zh"))
    assert len(refusal_patterns("zh")) == len(data["zh"]) + len(data["en"])  # English ones too
    assert len(refusal_patterns("nl")) == len(data["en"])  # a language without patterns: English only
    assert is_refusal("对不起，我不便回答。", "zh") and not is_refusal("对不起，我不便回答。", "en")
    assert not is_refusal("Family is very important to me.", "en")


def test_generate_mode_token_budget_and_outcomes(wvs_model, humans, tmp_path, monkeypatch):
    """max_new_tokens reaches the generator; refusals in both languages are recorded per item."""
    import lexalign.models.generation as generation

    seen = {}
    canned = {
        "en": ["<think>long reasoning</think>1", "As an AI, I cannot choose.", "who knows"],
        "zh": ["<think>推理</think>2", "抱歉，我无法回答。", "不好说"],
    }

    def fake(model, tok, conversations, **kwargs):
        seen.update(kwargs)
        texts = canned[seen["lang"]]
        return [generation.Generation(t, 3, True) for t in (texts * 10)[: len(conversations)]]

    monkeypatch.setattr(generation, "generate_on_model", fake)
    for lang, country in (("en", "United States"), ("zh", "China")):
        seen["lang"] = lang
        metrics, written, answers = run(
            wvs_model,
            humans,
            tmp_path / lang,
            mode="generate",
            lang=lang,
            prompt_language=lang,
            country=country,
            settings={"max_items": 6, "max_new_tokens": 77},
        )
        assert seen["max_new_tokens"] == 77 and written["max_new_tokens"] == 77
        assert answers["text_outcome"].to_list() == ["option", "refusal", "no valid option"] * 2
        assert answers["answer_position"].to_list()[:3] == [int(canned[lang][0][-1]), None, None]
        assert written["text_outcomes"] == {"option": 2, "refusal": 2, "no valid option": 2}
        assert written["n_scored"] == 2 and written["framing"] == "interviewer"


def test_evaluate_modes_loads_the_model_once_and_writes_each_mode(wvs_model, humans, tmp_path, monkeypatch):
    import lexalign.models.loading as models
    from lexalign.wvs.evaluate import evaluate_modes

    settings = schema_settings(max_items=6, high_tension_n=3, batch_size=8, max_new_tokens=3)
    jobs = [job_for(wvs_model, humans, tmp_path / mode, mode=mode) for mode in ("logits", "generate")]
    loads = []
    real_load = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    together = evaluate_modes(jobs, settings)
    assert len(loads) == 1 and [m["mode"] for m in together] == ["logits", "generate"]
    for job, metrics in zip(jobs, together):
        assert json.loads(Path(job.metrics_out).read_text(encoding="utf-8"))["mode"] == job.mode
        alone = evaluate(dataclasses.replace(job, metrics_out=tmp_path / f"{job.mode}.json"), settings)
        assert alone["results"] == metrics["results"]  # sharing the model changes no answer
    other = dataclasses.replace(jobs[1], adapter_dir=tmp_path)
    with pytest.raises(LexalignError, match="one model, adapter and dtype"):
        evaluate_modes([jobs[0], other], settings)
