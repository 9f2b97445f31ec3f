"""Templating: SFT augmentation, bounds, ranking, DPO and eval tables, determinism and leakage."""

from __future__ import annotations

import dataclasses
import random

import polars as pl
import pytest

from lexalign.core.errors import LexalignError
from lexalign.core.snake import Rule
from lexalign.norms.ingest import ingest
from lexalign.norms.templates import (
    TemplateJob,
    TemplateSettings,
    build_templates,
    list_bounds,
    prompt_templates,
    ranking_splits,
    run,
    sft_copies,
)

SECTION = {
    "sft_target_examples": 600,
    "subsample_fraction": 0.7,
    "max_list_length": None,
    "bound_margin": 0.1,
    "bound_jitter": 0.03,
    "ranking_size": 10,
    "ranking_per_cue": 1,
    "eval_bounds": [40, 50],
    "prompts": {},
    "definition": "corrected",
}
SETTINGS = TemplateSettings.from_config(SECTION)


@pytest.fixture(scope="module")
def templated(tmp_path_factory, swow_zh):
    out = tmp_path_factory.mktemp("templates")
    ingest(swow_zh, {}, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, out / "associations.parquet", out / "ingest.json")
    outputs = {name: out / f"{name}.parquet" for name in ("sft", "ranking", "dpo", "eval")} | {
        "stats": out / "stats.json"
    }
    stats = build_templates(out / "associations.parquet", "zh", SETTINGS, 42, outputs)
    return out, outputs, stats


def test_bounds_cover_n_within_margin_and_jitter():
    rng = random.Random(0)
    for n in (1, 2, 10, 57, 300):
        lo, hi = list_bounds(n, 0.1, 0.03, rng)
        assert 1 <= lo <= hi
        assert n * 0.87 - 1 <= lo <= n * 0.93 + 1
        assert n * 1.07 - 1 <= hi <= n * 1.13 + 1


def test_sft_targets_are_ordered_subsets_in_the_prompt_language(templated):
    out, outputs, _ = templated
    sft = pl.read_parquet(outputs["sft"])
    assoc = pl.read_parquet(out / "associations.parquet")
    order = {cue: list(g["response"]) for (cue,), g in assoc.group_by("cue")}
    for cue, prompt, completion in sft.select("cue", "prompt", "completion").head(50).iter_rows():
        words = completion[0]["content"].split("，")
        full = [w for w in order[cue]]
        positions = [full.index(w) for w in words]
        assert positions == sorted(positions)
        assert f"“{cue}”" in prompt[1]["content"]
    assert sft.select("cue", "completion").is_duplicated().sum() == 0


def test_no_test_cue_in_training_tables(templated):
    out, outputs, stats = templated
    test_cues = set(pl.read_parquet(outputs["eval"])["cue"])
    assert test_cues
    for name in ("sft", "ranking", "dpo"):
        assert not test_cues & set(pl.read_parquet(outputs[name])["cue"])
    assert "passed" in stats["leakage_check"]


def test_ranking_gold_is_human_order(templated):
    out, outputs, _ = templated
    ranking = pl.read_parquet(outputs["ranking"])
    for words, gold, counts in ranking.select("words", "gold", "gold_counts").iter_rows():
        assert sorted(words) == sorted(gold) and len(gold) == 10
        assert counts == sorted(counts, reverse=True)


def test_dpo_rejected_differs_from_chosen(templated):
    _, outputs, _ = templated
    dpo = pl.read_parquet(outputs["dpo"])
    assert dpo.height > 0
    assert all(c[0]["content"] != r[0]["content"] for c, r in dpo.select("chosen", "rejected").iter_rows())


def test_deterministic_for_a_seed(templated, tmp_path):
    out, outputs, _ = templated
    again = {name: tmp_path / f"{name}.parquet" for name in ("sft", "ranking", "dpo", "eval")} | {
        "stats": tmp_path / "s.json"
    }
    build_templates(out / "associations.parquet", "zh", SETTINGS, 42, again)
    for name in ("sft", "ranking", "dpo", "eval"):
        assert pl.read_parquet(outputs[name]).equals(pl.read_parquet(again[name]))


def test_custom_language_needs_every_template():
    with pytest.raises(LexalignError, match="templates.prompts.nl"):
        prompt_templates("nl", {"nl": {"system": "Je bent een assistent."}})
    full = dict(prompt_templates("en"))
    assert prompt_templates("nl", {"nl": full})["system"] == full["system"]


# ---- the study's data generation beside the corrected one -------------------------------------------


def test_sft_copies_per_definition():
    """study: 1,000,000 // ALL cues (the study's notebook); corrected: round(target / train cues)."""
    # paper scale: SWOW-EN US 12,281 cues (8,597 train), SWOW-ZH 10,024 cues (7,017 train)
    assert sft_copies(1_000_000, 8597, 12281, "study") == 81
    assert sft_copies(1_000_000, 7017, 10024, "study") == 99
    assert sft_copies(1_000_000, 8597, 12281, "corrected") == 116
    assert sft_copies(1_000_000, 7017, 10024, "corrected") == 143
    assert sft_copies(10, 50, 100, "study") == 1 and sft_copies(10, 50, 100, "corrected") == 1  # at least one copy
    with pytest.raises(LexalignError, match="templates.definition: 'paper' is not one of corrected, study"):
        sft_copies(10, 5, 10, "paper")


def test_ranking_splits_per_definition():
    assert ranking_splits("study") == ["train"]
    assert ranking_splits("corrected") == ["train", "val"]


def test_study_definition_tables(templated, tmp_path):
    """study: copies = target // all cues, 6 ranking tasks per train cue and none for val cues."""
    out, outputs, stats = templated
    lists = (
        pl.read_parquet(out / "associations.parquet").group_by("cue").agg(pl.col("split").first(), pl.len().alias("n"))
    )
    n_all, n_train = lists.height, lists.filter(pl.col("split") == "train").height
    study = {name: tmp_path / f"{name}.parquet" for name in ("sft", "ranking", "dpo", "eval")} | {
        "stats": tmp_path / "s.json"
    }
    got = build_templates(
        out / "associations.parquet",
        "zh",
        dataclasses.replace(SETTINGS, definition="study", ranking_per_cue=6),
        42,
        study,
    )
    assert got["definition"] == "study" and stats["definition"] == "corrected"
    assert got["copies_per_train_cue"] == max(1, 600 // n_all) and stats["copies_per_train_cue"] == max(
        1, round(600 / n_train)
    )
    assert got["copies_per_train_cue"] < stats["copies_per_train_cue"]
    ranking = pl.read_parquet(study["ranking"])
    assert set(ranking["split"]) == {"train"}
    eligible = lists.filter((pl.col("split") == "train") & (pl.col("n") >= SETTINGS.ranking_size)).height
    assert ranking.height == 6 * eligible
    assert set(pl.read_parquet(outputs["ranking"])["split"]) == {"train", "val"}  # corrected keeps val cues


def test_reversed_eval_bounds_are_refused():
    """The template job's settings refuse them with the line the config check gives (one check, in config)."""
    with pytest.raises(
        LexalignError, match=r"^config: templates.eval_bounds: \[50, 40\] is reversed; write \[low, high\]$"
    ):
        TemplateSettings.from_config({**SECTION, "eval_bounds": [50, 40]})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({**SECTION, "ranking_sise": 10}, "config templates: unknown key templates.ranking_sise"),
        ({k: v for k, v in SECTION.items() if k != "bound_margin"}, "config templates: no templates.bound_margin "),
        ({**SECTION, "definition": "paper"}, "config templates.definition: 'paper' is not one of corrected, study"),
    ],
)
def test_template_settings_name_a_misspelt_or_missing_key(section, message):
    with pytest.raises(LexalignError) as info:
        TemplateSettings.from_config(section)
    assert str(info.value).startswith(message)


def test_template_job_from_the_rule_writes_what_build_templates_writes(templated, tmp_path):
    out, outputs, stats = templated
    names = ("sft", "ranking", "dpo", "eval", "stats")
    rule = Rule(
        input={"associations": str(out / "associations.parquet")},
        output={name: str(tmp_path / f"{name}.{'json' if name == 'stats' else 'parquet'}") for name in names},
        params={"prompt_language": "zh", "templates": SECTION, "seed": 42},
        wildcards={"lang": "zh"},
    )
    job = TemplateJob.from_rule(rule)
    assert job.settings == SETTINGS
    assert run(job) == stats
    for name in ("sft", "ranking", "dpo", "eval"):
        assert pl.read_parquet(outputs[name]).equals(pl.read_parquet(job.outputs[name]))
