"""Templating: SFT augmentation, bounds, ranking, DPO and eval tables, determinism and leakage."""

from __future__ import annotations

import random

import polars as pl
import pytest

from lexalign.errors import LexalignError
from lexalign.ingest import ingest
from lexalign.templates import build_templates, list_bounds, prompt_templates

SETTINGS = {
    "sft_target_examples": 600, "subsample_fraction": 0.7, "max_list_length": None, "bound_margin": 0.1,
    "bound_jitter": 0.03, "ranking_size": 10, "ranking_per_cue": 1, "eval_bounds": [40, 50], "prompts": {},
}


@pytest.fixture(scope="module")
def templated(tmp_path_factory, swow_zh):
    out = tmp_path_factory.mktemp("templates")
    ingest(swow_zh, {}, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, out / "associations.parquet", out / "ingest.json")
    outputs = {name: out / f"{name}.parquet" for name in ("sft", "ranking", "dpo", "eval")} | {"stats": out / "stats.json"}
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
    again = {name: tmp_path / f"{name}.parquet" for name in ("sft", "ranking", "dpo", "eval")} | {"stats": tmp_path / "s.json"}
    build_templates(out / "associations.parquet", "zh", SETTINGS, 42, again)
    for name in ("sft", "ranking", "dpo", "eval"):
        assert pl.read_parquet(outputs[name]).equals(pl.read_parquet(again[name]))


def test_custom_language_needs_every_template():
    with pytest.raises(LexalignError, match="templates.prompts.nl"):
        prompt_templates("nl", {"nl": {"system": "Je bent een assistent."}})
    full = dict(prompt_templates("en"))
    assert prompt_templates("nl", {"nl": full})["system"] == full["system"]
