"""Tier-1 and training tables, built from the readers' records only.

Every builder returns a :class:`~lexalign.report.format.Table` (a long frame for the CSV, a display
frame for Markdown and LaTeX). P@k columns are the k the results hold; a CI's level is the one the
results carry (``confidence``), never a setting of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from lexalign.config import methods
from lexalign.core import stats
from lexalign.report import format as f
from lexalign.report.readers import MEASURES, Key, Results, Summary
from lexalign.report.reference import REPORTED, REPORTED_COLUMN, Reference

PROFILE_TEST = "Wilcoxon signed-rank, two-sided, per-cue medians (model vs human)"
BASELINE = methods.BASELINE
#: A list is well formed with at least this many distinct words (per_cue.parquet ``n_words``), and a method's
#: lists are where at least WELL_FORMED_SHARE of its test cues' are: below that a P@k measures the format too.
WELL_FORMED_WORDS = 10
WELL_FORMED_SHARE = 0.9
#: A gain is shown in per cent of the baseline only where the baseline's value is at least this: over a
#: baseline near zero (a model that does not answer with a list) a relative gain says nothing of the content.
MIN_RELATIVE_BASE = 0.05


@dataclass(frozen=True)
class ListShape:
    """How many of one result's test cues parse to a well-formed list."""

    well_formed: int
    cues: int

    @property
    def share(self) -> float:
        return self.well_formed / self.cues

    @property
    def ok(self) -> bool:
        return self.share >= WELL_FORMED_SHARE

    def text(self) -> str:
        return f"{f.pct(self.share)} ({self.well_formed}/{self.cues})"


def list_shapes(results: Results) -> dict[Key, ListShape]:
    """Every tier-1 result whose per_cue.parquet has the list lengths, by key."""
    shapes = {}
    for key, result in results.lexical.items():
        frame = result.per_cue
        if frame is not None and "n_words" in frame.columns and frame.height:
            shapes[key] = ListShape(int((frame["n_words"] >= WELL_FORMED_WORDS).sum()), frame.height)
    return shapes


def shape_text(shapes: Mapping[Key, ListShape], key: Key) -> str:
    return shapes[key].text() if key in shapes else f.MISSING


def well_formed_caption() -> str:
    return (
        f"'well-formed lists': the share of test cues whose list has at least {WELL_FORMED_WORDS} distinct words "
        f"(a method's lists are well formed at {f.pct(WELL_FORMED_SHARE)} or more)"
    )


def relative_gain(points: float | None, base: float | None, baseline: str) -> tuple[float | None, str]:
    """A gain of ``points`` (100 × difference) in per cent of the baseline's value ``base``, or None and why
    not (short: a table cell says it): the baseline's value is below :data:`MIN_RELATIVE_BASE`."""
    if points is None or base is None:
        return None, ""
    if base < MIN_RELATIVE_BASE:
        return None, f"{f.label(baseline)} {base:.3f} < {MIN_RELATIVE_BASE:g}"
    return points / base, ""


def gain_cell(points: float | None, percent: float | None, why: str) -> str:
    """'+12.0 (+40.0%)', or '+47.1 (no %: vanilla 0.000 < 0.05)' where the relative gain is left out."""
    return f"{points:+.1f} (no %: {why})" if points is not None and why else f.fmt_gain(points, percent)


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
    """P@k + Spearman with CIs, the share of well-formed lists and the study's reported value; gains over
    vanilla (in per cent only over a vanilla value of at least :data:`MIN_RELATIVE_BASE`)."""
    shapes = list_shapes(results)
    rows = []
    for key, have in precision.values.items():
        model, lang, method = key
        base = precision.values.get((model, lang, BASELINE), {})
        shape = shapes.get(key)
        for metric in metric_names(precision.ks):
            est = have.get(metric)
            if est is None:
                continue
            ref = base.get(metric)
            gain = None if ref is None or ref.mean is None or method == BASELINE else 100 * (est.mean - ref.mean)
            percent, why = relative_gain(gain, ref.mean if ref else None, BASELINE)
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
                    "well_formed": shape.share if shape else None,
                    "gain_points": gain,
                    "gain_percent": percent,
                    "gain_percent_left_out": why or None,
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
        "well_formed": pl.Float64,
        "gain_points": pl.Float64,
        "gain_percent": pl.Float64,
        "gain_percent_left_out": pl.String,
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
        row = {
            "model": model,
            "language": lang,
            "method": f.label(method),
            "well-formed lists": shape_text(shapes, (model, lang, method)),
        }
        gain = dict(row)
        for metric in names:
            r = by_metric.get(metric)
            row[f"{metric} {header}"] = f.fmt_ci(r["value"], r["ci_low"], r["ci_high"]) if r else f.MISSING
            gain[f"Δ{metric} pts (%)"] = (
                gain_cell(r["gain_points"], r["gain_percent"], r["gain_percent_left_out"])
                if r and method != BASELINE
                else f.MISSING
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
        f"wrote them (computed here from per_cue.parquet where scores.json has none); {well_formed_caption()}. "
        f"{ref_note}",
        long,
        f.frame(display),
    )
    gains_table = f.Table(
        "gains",
        "Tier 1: gain over vanilla",
        "Difference from the vanilla model of the same (model, language): percentage points (100 × difference) and "
        f"percent of the vanilla value, the latter only where vanilla's value is at least {MIN_RELATIVE_BASE:g} "
        f"(below it the cell says so); {well_formed_caption()}.",
        long.select(
            "model",
            "language",
            "method",
            "metric",
            "value",
            "well_formed",
            "gain_points",
            "gain_percent",
            "gain_percent_left_out",
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
