"""The tier-1 headline: each trained method against the strongest untrained method whose lists are well formed,
in points with the paired CI and test; the relative-gain rule; the share of well-formed lists beside every
method of the P@k tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from lexalign.config import grid
from lexalign.core import stats
from lexalign.core.resources import SCHEMA
from lexalign.report import build, readers
from lexalign.report.headline import headline_table, paired_tests_table
from lexalign.report.reference import Reference
from lexalign.report.tables import (
    MIN_RELATIVE_BASE,
    WELL_FORMED_WORDS,
    Precision,
    gain_cell,
    list_shapes,
    precision_tables,
    relative_gain,
)

CUES = 40
RESAMPLES = 300
#: method -> (mean P@5, cues whose list has WELL_FORMED_WORDS or more words): vanilla scores best of the
#: untrained methods but does not answer with lists; norms_prompt is the strongest well-formed baseline.
RUN = {
    "vanilla": (0.50, 4),
    "prompt": (0.20, 38),
    "norms_prompt": (0.30, 36),
    "sft": (0.45, 40),
    "dpo": (0.40, 35),
}


def write_result(root: Path, lang: str, method: str, p5: float, formed: int, seed: int) -> None:
    """scores.json and per_cue.parquet of one (tiny, lang, method) in the lexical stage's layout."""
    rng = np.random.default_rng(seed)
    folder = root / "lexical" / "tiny" / lang / method
    folder.mkdir(parents=True, exist_ok=True)
    n_words = [WELL_FORMED_WORDS + 5] * formed + [WELL_FORMED_WORDS - 1] * (CUES - formed)
    frame = pl.DataFrame(
        {
            "cue": [f"cue{i}" for i in range(CUES)],
            "n_words": n_words,
            "p_at_5": np.clip(rng.normal(p5, 0.1, CUES), 0, 1).round(1),
        }
    )
    frame.write_parquet(folder / "per_cue.parquet")
    scores = {
        "schema_version": 2,
        "method": method,
        "n_cues": CUES,
        "precision_at_k": {"5": stats.summarise(frame["p_at_5"].to_list(), RESAMPLES, seed)},
    }
    (folder / "scores.json").write_text(json.dumps(scores), encoding="utf-8")


def tables(tmp_path: Path, run: dict = RUN, langs=("en",)):
    root = tmp_path / "results"
    for i, (method, (p5, formed)) in enumerate(run.items()):
        for lang in langs:
            write_result(root, lang, method, p5, formed, seed=i)
    files = grid.result_files(["tiny"], list(langs), list(run), root, framings=["interviewer"], modes=["logits"])
    results = readers.collect(["tiny"], list(langs), list(run), lexical=files["lexical"])
    precision = Precision(results, RESAMPLES, 0.95, 1)
    paired = paired_tests_table(results, precision, RESAMPLES, 0.95, 1)
    return results, precision, paired, headline_table(results, precision, paired, 0.95)


def row(table: pl.DataFrame, **where) -> dict:
    part = table.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert part.height == 1, (where, part)
    return part.row(0, named=True)


def test_the_baseline_is_the_strongest_with_well_formed_lists(tmp_path):
    _, _, paired, headline = tables(tmp_path)
    assert headline.long["method"].to_list() == ["sft", "dpo"]
    assert set(headline.long["baseline"]) == {"norms_prompt"}  # not vanilla: 4 of 40 lists well formed
    sft = row(headline.long, method="sft")
    pair = row(paired.long, method="sft", baseline="norms_prompt")
    assert sft["difference_points"] == pytest.approx(100 * pair["difference"])
    assert [sft["ci_low_points"], sft["ci_high_points"]] == pytest.approx([100 * pair["ci_low"], 100 * pair["ci_high"]])
    assert (sft["p_value"], sft["p_holm"], sft["n_cues"]) == (pair["p_value"], pair["p_holm"], CUES)
    assert (sft["well_formed"], sft["baseline_well_formed"]) == (1.0, 36 / CUES)
    assert sft["gain_percent"] == pytest.approx(sft["difference_points"] / pair["mean_baseline"])
    shown = row(headline.display, **{"method (well-formed lists)": "SFT (100% (40/40))"})
    assert shown["baseline (well-formed lists)"] == "norms prompt (90% (36/40))"
    assert shown["ΔP@5 pts [95% CI]"].startswith(f"{sft['difference_points']:+.1f} [")
    assert shown["Δ %"] == f"{sft['gain_percent']:+.1f}%"
    # the paired table shows both methods' shares too
    assert row(paired.display, comparison="SFT − norms prompt")["well-formed lists"] == "100% (40/40) / 90% (36/40)"


def test_a_dropped_well_formed_baseline_changes_the_choice(tmp_path):
    """Without norms_prompt, prompt (38 of 40 well formed) is the strongest well-formed baseline."""
    run = {name: spec for name, spec in RUN.items() if name != "norms_prompt"}
    assert set(tables(tmp_path, run)[3].long["baseline"]) == {"prompt"}


def test_no_well_formed_baseline_leaves_the_cells_empty_and_says_why(tmp_path):
    run = {"vanilla": (0.1, 3), "prompt": (0.1, 35), "sft": (0.4, 40)}  # prompt: 35/40 = 88% < 90%
    headline = tables(tmp_path, run)[3]
    sft = row(headline.long, method="sft")
    assert sft["baseline"] is None and sft["difference_points"] is None and sft["gain_percent"] is None
    assert sft["why_empty"] == (
        "no untrained method's lists are well formed (vanilla 8% (3/40), persona prompt 88% (35/40)); "
        "the paired table has every pair"
    )
    assert headline.display["ΔP@5 pts [95% CI]"].to_list() == [f"empty: {sft['why_empty']}"]


def test_relative_gain_only_over_a_baseline_of_at_least_the_floor():
    assert relative_gain(10.0, 0.2, "vanilla") == (pytest.approx(50.0), "")
    assert relative_gain(10.0, MIN_RELATIVE_BASE, "vanilla") == (pytest.approx(200.0), "")
    assert relative_gain(47.1, 0.049, "vanilla") == (None, "vanilla 0.049 < 0.05")
    assert relative_gain(47.1, 0.0, "norms_prompt") == (None, "norms prompt 0.000 < 0.05")
    assert relative_gain(None, 0.3, "vanilla") == (None, "")
    assert gain_cell(47.1, None, "vanilla 0.000 < 0.05") == "+47.1 (no %: vanilla 0.000 < 0.05)"
    assert gain_cell(10.0, 50.0, "") == "+10.0 (+50.0%)"


def test_the_headline_leaves_out_a_relative_gain_over_a_low_baseline(tmp_path):
    run = {"vanilla": (0.0, 0), "norms_prompt": (0.01, 40), "sft": (0.4, 40)}
    headline = tables(tmp_path, run)[3]
    sft = row(headline.long, method="sft")
    assert sft["baseline"] == "norms_prompt" and sft["difference_points"] > 30
    assert sft["gain_percent"] is None
    assert sft["gain_percent_left_out"] == f"norms prompt {sft['mean_baseline']:.3f} < 0.05"
    assert headline.display["Δ %"].to_list() == [f"no %: {sft['gain_percent_left_out']}"]


def test_gains_over_a_low_vanilla_say_why_there_is_no_percent(tmp_path):
    run = {"vanilla": (0.0, 0), "prompt": (0.3, 40), "sft": (0.4, 40)}
    results, precision, _, _ = tables(tmp_path, run, langs=("en", "zh"))
    reference = Reference({}, {})
    precision_table, gains = precision_tables(results, precision, reference)
    sft = row(gains.long, method="sft", language="en", metric="P@5")
    assert sft["gain_points"] > 30 and sft["gain_percent"] is None
    vanilla = row(gains.long, method="vanilla", language="en", metric="P@5")["value"]
    assert vanilla < MIN_RELATIVE_BASE and sft["gain_percent_left_out"] == f"vanilla {vanilla:.3f} < 0.05"
    shown = row(gains.display, method="SFT", language="en")
    assert shown["ΔP@5 pts (%)"] == f"{sft['gain_points']:+.1f} (no %: {sft['gain_percent_left_out']})"
    prompt = row(gains.long, method="prompt", language="en", metric="P@5")  # prompt's gain: also no per cent
    assert prompt["gain_percent"] is None and prompt["gain_percent_left_out"] == sft["gain_percent_left_out"]
    # every P@k table shows the share of well-formed lists beside each method
    assert row(precision_table.display, method="vanilla", language="zh")["well-formed lists"] == "0% (0/40)"
    assert row(gains.display, method="SFT", language="en")["well-formed lists"] == "100% (40/40)"
    assert row(precision_table.long, method="prompt", language="en", metric="P@5")["well_formed"] == 1.0


def test_list_shapes_count_cues_with_enough_words(tmp_path):
    results = tables(tmp_path)[0]
    shapes = list_shapes(results)
    assert {key[2]: (s.well_formed, s.ok) for key, s in shapes.items()} == {
        "vanilla": (4, False),
        "prompt": (38, True),
        "norms_prompt": (36, True),
        "sft": (40, True),
        "dpo": (35, False),
    }


def test_the_report_writes_the_headline_table(tmp_path):
    results = tables(tmp_path)[0]
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))["properties"]["report"]["properties"]
    settings = build.ReportSettings.from_config(
        {**{name: spec["default"] for name, spec in schema.items()}, "bootstrap_resamples": RESAMPLES, "dpi": 40}
    )
    index = build.build_report(results, tmp_path / "report/index.md", settings, seed=1)
    written = pl.read_csv(index.parent / "tables/tier1/headline.csv")
    assert written["baseline"].to_list() == ["norms_prompt", "norms_prompt"]
    assert "Tier 1: trained methods against the strongest well-formed baseline" in index.read_text(encoding="utf-8")
