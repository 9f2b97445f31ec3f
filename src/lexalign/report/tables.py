"""Tier-1 and training tables, built from the readers' records only.

Every builder returns a :class:`~lexalign.report.format.Table` (a long frame for the CSV, a display
frame for Markdown and LaTeX). P@k columns are the k the results hold; a CI's level is the one the
results carry (``confidence``), never a setting of the report.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from lexalign.config import methods
from lexalign.core import stats
from lexalign.report import format as f
from lexalign.report.readers import MEASURES, Key, Results, Summary
from lexalign.report.reference import REPORTED, REPORTED_COLUMN, Reference

PAIRED_TEST = "Wilcoxon signed-rank, two-sided, per-cue {metric}"
PROFILE_TEST = "Wilcoxon signed-rank, two-sided, per-cue medians (model vs human)"
BASELINE = methods.BASELINE


def ordered(results: Results, store: Mapping[Key, object]) -> list[Key]:
    """Keys in run-grid order: models and languages as configured, methods in registry order."""
    models = {m: i for i, m in enumerate(results.models)}
    langs = {m: i for i, m in enumerate(results.languages)}
    return sorted(
        store,
        key=lambda k: (
            models.get(k[0], len(models)),
            k[0],
            langs.get(k[1], len(langs)),
            k[1],
            methods.order_key(k[2]),
            k[2],
        ),
    )


def metric_names(ks: list[int]) -> list[str]:
    return [*(f"P@{k}" for k in ks), "Spearman"]


def _ci_header(summaries: list[Summary]) -> str:
    levels = sorted({s.confidence for s in summaries if s.low is not None and s.confidence is not None})
    return f"[{f.level(levels[0])} CI]" if len(levels) == 1 else "[CI]"


class Precision:
    """P@k and Spearman per result, as written by the lexical stage; where a value or its CI is absent
    (e.g. ``lexical.bootstrap_samples: 0``), computed from per_cue.parquet at the report's confidence."""

    def __init__(self, results: Results, resamples: int, confidence: float, seed: int):
        self.ks = sorted(
            {k for r in results.lexical.values() for k in r.precision}
            | {
                int(c[2:])
                for r in results.lexical.values()
                if r.per_cue is not None
                for c in r.per_cue.columns
                if c[:2] == "P@"
            }
        )
        self.values: dict[Key, dict[str, Summary]] = {}
        for key in ordered(results, results.lexical):
            result = results.lexical[key]
            have = {f"P@{k}": s for k, s in result.precision.items()}
            if result.spearman is not None:
                have["Spearman"] = result.spearman
            for metric in metric_names(self.ks):
                summary = have.get(metric)
                if (
                    (summary is not None and summary.low is not None)
                    or result.per_cue is None
                    or metric not in result.per_cue.columns
                ):
                    continue
                values = result.per_cue[metric].cast(pl.Float64).to_list()
                seed_of = stats.derived_seed(seed, *key, metric)
                computed = stats.summarise(values, resamples, seed_of, confidence)
                if computed["n"]:
                    ci = computed["ci"] or [None, None]
                    have[metric] = Summary(
                        computed["mean"],
                        ci[0],
                        ci[1],
                        confidence if computed["ci"] else None,
                        computed["n"],
                    )
            have = {m: s for m, s in have.items() if s.mean is not None}
            if not have:
                results.note(f"lexical {'/'.join(key)}: no P@k or Spearman in scores.json or per_cue.parquet; left out")
            self.values[key] = have


def precision_tables(results: Results, precision: Precision, reference: Reference) -> tuple[f.Table, f.Table]:
    """P@k + Spearman with CIs and the study's reported value; gains over vanilla."""
    rows = []
    for key, have in precision.values.items():
        model, lang, method = key
        base = precision.values.get((model, lang, BASELINE), {})
        for metric in metric_names(precision.ks):
            est = have.get(metric)
            if est is None:
                continue
            ref = base.get(metric)
            gain = None if ref is None or ref.mean is None or method == BASELINE else est.mean - ref.mean
            rows.append(
                {
                    "model": model,
                    "language": lang,
                    "method": method,
                    "metric": metric,
                    "value": est.mean,
                    "ci_low": est.low,
                    "ci_high": est.high,
                    "confidence": est.confidence,
                    "n_cues": est.n,
                    "gain_points": None if gain is None else 100 * gain,
                    "gain_percent": None if gain is None or not ref.mean else 100 * gain / ref.mean,
                    REPORTED_COLUMN: reference.lexical(model, lang, method, metric),
                }
            )
    schema = {
        **f.KEY_SCHEMA,
        "metric": pl.String,
        "value": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "confidence": pl.Float64,
        "n_cues": pl.Int64,
        "gain_points": pl.Float64,
        "gain_percent": pl.Float64,
        REPORTED_COLUMN: pl.Float64,
    }
    long = pl.DataFrame(rows, schema=schema)
    present = set(long["metric"].to_list())
    names = [m for m in metric_names(precision.ks) if m in present]
    all_summaries = [s for have in precision.values.values() for s in have.values()]
    header = _ci_header(all_summaries)
    display, gains = [], []
    for (model, lang, method), have in precision.values.items():
        if not have:
            continue
        by_metric = {
            r["metric"]: r
            for r in long.filter(
                (pl.col("model") == model) & (pl.col("language") == lang) & (pl.col("method") == method)
            ).iter_rows(named=True)
        }
        row = {"model": model, "language": lang, "method": f.label(method)}
        gain = dict(row)
        for metric in names:
            r = by_metric.get(metric)
            row[f"{metric} {header}"] = f.fmt_ci(r["value"], r["ci_low"], r["ci_high"]) if r else f.MISSING
            gain[f"Δ{metric} pts (%)"] = (
                f.fmt_gain(r["gain_points"], r["gain_percent"]) if r and method != BASELINE else f.MISSING
            )
        row["cues"] = f.fmt_int(
            next(
                (r["n_cues"] for r in by_metric.values() if r["n_cues"] is not None),
                None,
            )
        )
        if reference.active or any(r[REPORTED_COLUMN] is not None for r in by_metric.values()):
            row[f"P@5 {REPORTED}"] = f.fmt(by_metric["P@5"][REPORTED_COLUMN]) if "P@5" in by_metric else f.MISSING
        display.append(row)
        if method != BASELINE:
            gains.append(gain)
    levels = sorted({s.confidence for s in all_summaries if s.confidence is not None})
    ci_text = ", ".join(f.level(c) for c in levels) or "no"
    ref_note = (
        f"Columns marked '{REPORTED}' are the study's published numbers (resources/reference_numbers.yaml), "
        "not measured here."
    )
    table = f.Table(
        "precision",
        "Tier 1: P@k and rank agreement",
        "Mean over test cues of P@k (share of the first k generated words that humans gave for the cue) and of the "
        "Spearman "
        f"rank agreement (cues with ≥2 overlapping words); {ci_text} CIs: percentile bootstrap over cues, as the "
        "lexical stage "
        f"wrote them (computed here from per_cue.parquet where scores.json has none). {ref_note}",
        long,
        f.frame(display),
    )
    gains_table = f.Table(
        "gains",
        "Tier 1: gain over vanilla",
        "Difference from the vanilla model of the same (model, language): percentage points (100 × difference) and "
        "percent of the vanilla value.",
        long.select(
            "model",
            "language",
            "method",
            "metric",
            "value",
            "gain_points",
            "gain_percent",
        ),
        f.frame(gains),
    )
    if results.lexical and long.filter(pl.col("gain_points").is_not_null()).is_empty():
        gains_table.notes.append(
            "no (model, language) has both vanilla and another method, so there are no gains to show"
        )
    return table, gains_table


def words_per_cue_text(results: Results) -> str:
    """'the first 10 model words vs the human top 10' with the profiles' own word counts."""
    counts = sorted({r.words_per_cue for r in results.lexical.values() if r.words_per_cue is not None})
    n = " or ".join(str(c) for c in counts) if counts else "N"
    return f"the first {n} model words vs the human top {n} per cue"


def profile_table(results: Results, resamples: int, confidence: float, seed: int) -> f.Table:
    """Concreteness, valence, arousal: model vs human (mean of per-cue medians), coverage, Wilcoxon p."""
    rows, skipped = [], {}
    for key in ordered(results, results.lexical):
        result = results.lexical[key]
        for measure in MEASURES:
            summary = result.profile.get(measure)
            if summary is not None and summary.skipped:
                skipped.setdefault((key[1], summary.skipped), []).append(measure)
                continue
            row = _profile_row(result, measure, summary)
            if row is not None:
                difference = (
                    None
                    if None in (row["model_median"], row["human_median"])
                    else row["model_median"] - row["human_median"]
                )
                rows.append(
                    {
                        "model": key[0],
                        "language": key[1],
                        "method": key[2],
                        "measure": measure,
                        **row,
                        "difference": difference,
                    }
                )
    schema = {
        **f.KEY_SCHEMA,
        "measure": pl.String,
        "model_median": pl.Float64,
        "human_median": pl.Float64,
        "difference": pl.Float64,
        "model_coverage": pl.Float64,
        "human_coverage": pl.Float64,
        "n_cues": pl.Int64,
        "wilcoxon_p": pl.Float64,
        "test": pl.String,
    }
    long = pl.DataFrame([{c: r[c] for c in schema} for r in rows], schema=schema)
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "method": f.label(r["method"]),
                "measure": r["measure"],
                "model median": f.fmt(r["model_median"], 2),
                "human median": f.fmt(r["human_median"], 2),
                "Δ": f.fmt_signed(r["difference"], 2),
                "coverage model / human": f"{f.pct(r['model_coverage'])} / {f.pct(r['human_coverage'])}",
                "cues": f.fmt_int(r["n_cues"]),
                "Wilcoxon p": f.fmt_p(r["wilcoxon_p"]),
            }
            for r in long.iter_rows(named=True)
        ]
    )
    table = f.Table(
        "profile",
        "Tier 1: psycholinguistic profile",
        f"Concreteness (1–5), valence and arousal (1–9) of {words_per_cue_text(results)}: mean over cues of the "
        "per-cue "
        f"medians, word coverage by the norms; p: {PROFILE_TEST}.",
        long,
        display,
    )
    for (lang, why), measures in skipped.items():
        table.notes.append(f"{lang}: {', '.join(dict.fromkeys(measures))} not profiled: {why}")
    if results.lexical and long.is_empty() and not skipped:
        table.notes.append("no psycholinguistic profile in the tier-1 results")
    return table


def _profile_row(result, measure: str, summary) -> dict | None:
    """One measure: the stage's summary, or computed from the per-cue medians in per_cue.parquet."""
    row = {
        "model_median": None,
        "human_median": None,
        "model_coverage": None,
        "human_coverage": None,
        "n_cues": None,
        "wilcoxon_p": None,
        "test": PROFILE_TEST,
    }
    if summary is not None and summary.test:
        row["test"] = f"{summary.test}, per-cue medians (model vs human)"
    if summary is not None:
        row.update(
            model_median=summary.model.mean if summary.model else None,
            human_median=summary.human.mean if summary.human else None,
            model_coverage=summary.model_coverage,
            human_coverage=summary.human_coverage,
            n_cues=summary.n_pairs,
            wilcoxon_p=summary.p_value,
        )
    frame, model_col, human_col = result.per_cue, f"{measure}_model", f"{measure}_human"
    if row["model_median"] is None and frame is not None and {model_col, human_col} <= set(frame.columns):
        m, h = (
            frame[model_col].cast(pl.Float64).to_list(),
            frame[human_col].cast(pl.Float64).to_list(),
        )
        test = stats.wilcoxon(m, h)
        if test["n_pairs"]:
            row.update(
                model_median=stats.mean(m),
                human_median=stats.mean(h),
                n_cues=test["n_pairs"],
                wilcoxon_p=test["p_value"],
            )
    if row["model_median"] is None and row["human_median"] is None:
        return None
    return row


def paired_tests_table(results: Results, precision: Precision, resamples: int, confidence: float, seed: int) -> f.Table:
    """Every pair of methods of one (model, lang) on the same cues: paired bootstrap CI and Wilcoxon p."""
    metric = "P@5" if 5 in precision.ks else (f"P@{precision.ks[0]}" if precision.ks else "P@5")
    test_name = PAIRED_TEST.format(metric=metric)
    rows, by_pair = [], {}
    for key in ordered(results, results.lexical):
        frame = results.lexical[key].per_cue
        if frame is not None and metric in frame.columns:
            by_pair.setdefault(key[:2], []).append(key)
    for (model, lang), keys in by_pair.items():
        start = len(rows)
        for i, key_b in enumerate(keys):
            for key_a in keys[i + 1 :]:
                a = results.lexical[key_a].per_cue.select("cue", pl.col(metric).cast(pl.Float64).alias("a"))
                b = results.lexical[key_b].per_cue.select("cue", pl.col(metric).cast(pl.Float64).alias("b"))
                joined = a.join(b, on="cue", how="inner").drop_nulls()
                if joined.is_empty():
                    continue
                va, vb = joined["a"].to_list(), joined["b"].to_list()
                diff = [x - y for x, y in zip(va, vb)]
                ci = stats.bootstrap_ci(
                    diff,
                    resamples,
                    stats.derived_seed(seed, model, lang, key_a[2], key_b[2]),
                    confidence,
                )
                test = stats.wilcoxon(va, vb)
                rows.append(
                    {
                        "model": model,
                        "language": lang,
                        "method": key_a[2],
                        "baseline": key_b[2],
                        "metric": metric,
                        "n_cues": joined.height,
                        "mean_method": stats.mean(va),
                        "mean_baseline": stats.mean(vb),
                        "difference": stats.mean(diff),
                        "ci_low": ci[0] if ci else None,
                        "ci_high": ci[1] if ci else None,
                        "confidence": confidence,
                        "ci": "paired percentile bootstrap over cues",
                        "test": test_name,
                        "statistic": test["statistic"],
                        "p_value": 1.0 if test["note"] == "every pair is equal" else test["p_value"],
                        "p_holm": None,
                    }
                )
        for row, adjusted in zip(rows[start:], stats.holm([r["p_value"] for r in rows[start:]])):
            row["p_holm"] = adjusted
    schema = {
        **f.KEY_SCHEMA,
        "baseline": pl.String,
        "metric": pl.String,
        "n_cues": pl.Int64,
        "mean_method": pl.Float64,
        "mean_baseline": pl.Float64,
        "difference": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "confidence": pl.Float64,
        "ci": pl.String,
        "test": pl.String,
        "statistic": pl.Float64,
        "p_value": pl.Float64,
        "p_holm": pl.Float64,
    }
    long = pl.DataFrame(rows, schema=schema)
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "comparison": f"{f.label(r['method'])} − {f.label(r['baseline'])}",
                "cues": str(r["n_cues"]),
                f"Δ{metric} [{f.level(confidence)} CI]": f.fmt_ci(
                    r["difference"], r["ci_low"], r["ci_high"], signed=True
                ),
                "test": "Wilcoxon signed-rank",
                "p": f.fmt_p(r["p_value"]),
                "p (Holm)": f.fmt_p(r["p_holm"]),
            }
            for r in long.iter_rows(named=True)
        ]
    )
    table = f.Table(
        "paired_tests",
        "Tier 1: paired significance between methods",
        f"Per-cue {metric} of two methods on the same test cues: mean difference with its {f.level(confidence)} paired "
        f"bootstrap CI; p: {test_name}; Holm-adjusted over the comparisons of one (model, language).",
        long,
        display,
    )
    if results.lexical and long.is_empty():
        table.notes.append(f"needs per_cue.parquet with {metric} for at least two methods of one (model, language)")
    return table
