"""The tier-1 comparisons between methods on the same test cues: every pair (:func:`paired_tests_table`) and
the headline (:func:`headline_table`), each trained method against the strongest untrained method whose lists
are well formed.

The headline is what the study asks of tier 1: do the norms make the model's associations more like the
culture's? Against a baseline that does not answer with a list (a base model, a persona prompt to it) any
trained method wins by the format alone, so the baseline is the strongest one whose lists are well formed
(:data:`lexalign.report.tables.WELL_FORMED_SHARE`); with the norms_prompt method among them, the difference is
the part of the gain that needs training. Differences are in points with their paired bootstrap CI over cues
and the paired test of :func:`paired_tests_table`; a relative gain only over a baseline value of at least
:data:`lexalign.report.tables.MIN_RELATIVE_BASE`.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from lexalign.config import methods
from lexalign.core import stats
from lexalign.report import format as f
from lexalign.report.readers import Key, Results
from lexalign.report.tables import (
    MIN_RELATIVE_BASE,
    WELL_FORMED_SHARE,
    ListShape,
    Precision,
    list_shapes,
    ordered,
    relative_gain,
    shape_text,
    well_formed_caption,
)

PAIRED_TEST = "Wilcoxon signed-rank, two-sided, per-cue {metric}"
#: What an untrained method's context is, for the headline's description.
CONTEXTS = {"persona": "a native speaker's persona", "norms": "train cues with their human lists as demonstrations"}


def paired_metric(precision: Precision) -> str:
    """The metric methods are compared on: P@5, or the smallest k the results hold."""
    return "P@5" if 5 in precision.ks else (f"P@{precision.ks[0]}" if precision.ks else "P@5")


def paired_tests_table(results: Results, precision: Precision, resamples: int, confidence: float, seed: int) -> f.Table:
    """Every pair of methods of one (model, lang) on the same cues: paired bootstrap CI and Wilcoxon p."""
    metric = paired_metric(precision)
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
    shapes = list_shapes(results)
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "comparison": f"{f.label(r['method'])} − {f.label(r['baseline'])}",
                "well-formed lists": " / ".join(
                    shape_text(shapes, (r["model"], r["language"], m)) for m in (r["method"], r["baseline"])
                ),
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
        f"bootstrap CI; p: {test_name}; Holm-adjusted over the comparisons of one (model, language); "
        f"{well_formed_caption()}, of the two methods.",
        long,
        display,
    )
    if results.lexical and long.is_empty():
        table.notes.append(f"needs per_cue.parquet with {metric} for at least two methods of one (model, language)")
    return table


def strongest_baseline(
    precision: Precision, shapes: Mapping[Key, ListShape], model: str, lang: str, present: list[str], metric: str
) -> tuple[str | None, str]:
    """The untrained method of (model, lang) with the highest ``metric`` among those whose lists are well formed
    (ties: registry order), or None and why none is."""
    untrained = [m for m in present if not methods.get(m).trained]
    formed = [m for m in untrained if (model, lang, m) in shapes and shapes[(model, lang, m)].ok]
    scored = [m for m in formed if metric in precision.values.get((model, lang, m), {})]
    if scored:
        return max(scored, key=lambda m: (precision.values[(model, lang, m)][metric].mean, -methods.order_key(m))), ""
    if not untrained:
        return None, "no untrained method in the run"
    shares = ", ".join(f"{f.label(m)} {shape_text(shapes, (model, lang, m))}" for m in untrained)
    return None, f"no untrained method's lists are well formed ({shares}); the paired table has every pair"


def headline_table(results: Results, precision: Precision, paired: f.Table, confidence: float) -> f.Table:
    """Each trained method of a (model, lang) against its strongest well-formed baseline: the difference in
    points with the paired CI (at ``confidence``, as ``paired`` computed it) and test of ``paired`` (the pairs
    table), and in per cent where the baseline allows."""
    metric = paired_metric(precision)
    shapes = list_shapes(results)
    pairs = {(r["model"], r["language"], r["method"], r["baseline"]): r for r in paired.long.iter_rows(named=True)}
    grouped: dict[tuple[str, str], list[str]] = {}
    for model, lang, method in ordered(results, results.lexical):
        grouped.setdefault((model, lang), []).append(method)
    rows = []
    for (model, lang), present in grouped.items():
        baseline, why_none = strongest_baseline(precision, shapes, model, lang, present, metric)
        for method in methods.trained(present):
            pair = pairs.get((model, lang, method, baseline)) if baseline else None
            points = 100 * pair["difference"] if pair else None
            percent, why = relative_gain(points, pair["mean_baseline"] if pair else None, baseline or "")
            if pair:
                why_empty = ""
            else:
                why_empty = f"no per-cue {metric} of both methods on the same cues" if baseline else why_none
            shape = shapes.get((model, lang, method))
            base_shape = shapes.get((model, lang, baseline)) if baseline else None
            rows.append(
                {
                    "model": model,
                    "language": lang,
                    "method": method,
                    "well_formed": shape.share if shape else None,
                    "baseline": baseline,
                    "baseline_well_formed": base_shape.share if base_shape else None,
                    "metric": metric,
                    "n_cues": pair["n_cues"] if pair else None,
                    "mean_method": pair["mean_method"] if pair else None,
                    "mean_baseline": pair["mean_baseline"] if pair else None,
                    "difference_points": points,
                    "ci_low_points": None if not pair or pair["ci_low"] is None else 100 * pair["ci_low"],
                    "ci_high_points": None if not pair or pair["ci_high"] is None else 100 * pair["ci_high"],
                    "confidence": pair["confidence"] if pair else None,
                    "gain_percent": percent,
                    "gain_percent_left_out": why or None,
                    "p_value": pair["p_value"] if pair else None,
                    "p_holm": pair["p_holm"] if pair else None,
                    "why_empty": why_empty or None,
                }
            )
    schema = {
        **f.KEY_SCHEMA,
        "well_formed": pl.Float64,
        "baseline": pl.String,
        "baseline_well_formed": pl.Float64,
        "metric": pl.String,
        "n_cues": pl.Int64,
        "mean_method": pl.Float64,
        "mean_baseline": pl.Float64,
        "difference_points": pl.Float64,
        "ci_low_points": pl.Float64,
        "ci_high_points": pl.Float64,
        "confidence": pl.Float64,
        "gain_percent": pl.Float64,
        "gain_percent_left_out": pl.String,
        "p_value": pl.Float64,
        "p_holm": pl.Float64,
        "why_empty": pl.String,
    }
    long = pl.DataFrame(rows, schema=schema)
    display = f.frame([_display_row(r, shapes, metric, confidence) for r in long.iter_rows(named=True)])
    table = f.Table(
        "headline",
        "Tier 1: trained methods against the strongest well-formed baseline",
        f"Each trained method against the untrained method ({untrained_labels()}) with the highest mean {metric} "
        "among those whose lists are well formed "
        f"({f.pct(WELL_FORMED_SHARE)} or more of the test cues): the difference in {metric} points (100 × "
        f"difference) with its {f.level(confidence)} paired percentile bootstrap CI over cues and "
        f"{PAIRED_TEST.format(metric=metric)} (p, and Holm-adjusted over every pair of the (model, language), as in "
        f"the paired table); in per cent of the baseline only where its {metric} is at least "
        f"{MIN_RELATIVE_BASE:g}; {well_formed_caption()}.",
        long,
        display,
    )
    if results.lexical and long.is_empty():
        table.notes.append("no (model, language) has a trained method in the tier-1 results")
    return table


def untrained_labels() -> str:
    """The untrained methods tier 1 evaluates, by label, with what each adds to the prompt."""
    names = [m for m in methods.evaluated_by(methods.LEXICAL) if not methods.get(m).trained]
    return ", ".join(
        f.label(m) + (f" ({CONTEXTS[c]})" if (c := methods.get(m).context) in CONTEXTS else "") for m in names
    )


def _points(difference: float | None, low: float | None, high: float | None) -> str:
    if difference is None:
        return f.MISSING
    return f"{difference:+.1f}" + (f" [{low:+.1f}, {high:+.1f}]" if low is not None and high is not None else "")


def _display_row(r: dict, shapes: Mapping[Key, ListShape], metric: str, confidence: float | None) -> dict:
    key = (r["model"], r["language"])
    row = {
        "model": r["model"],
        "language": r["language"],
        "method (well-formed lists)": f"{f.label(r['method'])} ({shape_text(shapes, (*key, r['method']))})",
        "baseline (well-formed lists)": (
            f"{f.label(r['baseline'])} ({shape_text(shapes, (*key, r['baseline']))})" if r["baseline"] else f.MISSING
        ),
        f"{metric} method / baseline": f"{f.fmt(r['mean_method'])} / {f.fmt(r['mean_baseline'])}",
        f"Δ{metric} pts [{f.level(confidence)} CI]": (
            f"empty: {r['why_empty']}"
            if r["why_empty"]
            else _points(r["difference_points"], r["ci_low_points"], r["ci_high_points"])
        ),
        "Δ %": (
            f"{r['gain_percent']:+.1f}%"
            if r["gain_percent"] is not None
            else (f"no %: {r['gain_percent_left_out']}" if r["gain_percent_left_out"] else f.MISSING)
        ),
        "p (Wilcoxon)": f.fmt_p(r["p_value"]),
        "p (Holm)": f.fmt_p(r["p_holm"]),
        "cues": f.fmt_int(r["n_cues"]),
    }
    return row
