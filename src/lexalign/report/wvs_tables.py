"""Tier-2 tables: WVS metrics, distances, the high-tension counts, the study's definitions beside the
corrected ones, and the reference answerers (uniform, target-country majority, other country) with
bootstrap CIs over items."""

from __future__ import annotations

import polars as pl

from lexalign.config.countries import short_name
from lexalign.core import stats
from lexalign.report import format as f
from lexalign.report.definitions import TENSION_NOTE
from lexalign.report.readers import GROUPS, Results, WvsResult
from lexalign.report.reference import REPORTED, REPORTED_COLUMN, Reference
from lexalign.report.tables import ordered
from lexalign.wvs import metrics as wvs_metrics
from lexalign.wvs import norms as wvs_norms

DISTANCE = "distance"  # the wvs stage's tension distance, 0.5 * JS + 0.5 * EMD/(N-1)
METRIC_ORDER = wvs_metrics.METRICS
#: answers.parquet column prefix of each answerer's per-item metrics -> its description.
ANSWERERS = {
    "": "the model's answer distribution",
    "uniform_": "uniform: every option equally likely",
    "target_majority_": "target majority: the target country's majority answer, with certainty",
    "other_country_": "other country: the other country's human answer distribution",
}
BASELINE_METRICS = ("distance", "js", "emd_norm", "acc")


def _metric_key(name: str) -> tuple[int, str]:
    return (
        METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER),
        name,
    )


def short_country(country: str | None) -> str:
    return short_name(country) if country else f.MISSING


def country_names(results: Results) -> tuple[str, str]:
    """The compared countries' names (config order) for headers and captions; 'first'/'second' without any."""
    return results.country_pair() or ("first country", "second country")


def metrics_tables(results: Results) -> tuple[f.Table, f.Table]:
    """wvs_metrics (vs both countries' humans, overall / by option count / high tension) and wvs_distance."""
    rows, distance_rows = [], []
    first_name, second_name = country_names(results)
    a, b = short_country(first_name), short_country(second_name)
    for key in ordered(results, results.wvs):
        result = results.wvs[key]
        for country in result.countries.values():
            for group in GROUPS:
                values = result.metrics.get(country, {}).get(group, {})
                for metric in sorted(values, key=_metric_key):
                    rows.append(
                        {
                            "model": key[0],
                            "language": key[1],
                            "method": key[2],
                            "humans": country,
                            "target": country == result.target,
                            "options": group,
                            "metric": metric,
                            "value": values[metric],
                            "n_items": result.n_items.get(group),
                        }
                    )
        if len(result.countries) != 2:
            continue
        first, second = result.countries.values()
        d1, d2 = (result.value(name, "overall", DISTANCE) for name in (first, second))
        if d1 is not None or d2 is not None:
            closer = None if d1 is None or d2 is None else second if d2 < d1 else first if d1 < d2 else "tie"
            distance_rows.append(
                {
                    "model": key[0],
                    "language": key[1],
                    "method": key[2],
                    "first_country": first,
                    "second_country": second,
                    "distance_to_first": d1,
                    "distance_to_second": d2,
                    "closer_to": closer,
                    "distance_to_first_high_tension": result.value(first, "high tension", DISTANCE),
                    "distance_to_second_high_tension": result.value(second, "high tension", DISTANCE),
                    "n_items": result.n_items.get("overall"),
                }
            )
    long = pl.DataFrame(
        rows,
        schema={
            **f.KEY_SCHEMA,
            "humans": pl.String,
            "target": pl.Boolean,
            "options": pl.String,
            "metric": pl.String,
            "value": pl.Float64,
            "n_items": pl.Int64,
        },
    )
    names = sorted(set(long["metric"].to_list()), key=_metric_key)
    display = []
    if long.height:
        for part in long.partition_by(
            ["model", "language", "method", "humans", "target", "options"],
            maintain_order=True,
        ):
            r = part.row(0, named=True)
            values = dict(zip(part["metric"].to_list(), part["value"].to_list()))
            display.append(
                {
                    "model": r["model"],
                    "language": r["language"],
                    "method": f.label(r["method"]),
                    "vs humans": short_country(r["humans"]) + (" (target)" if r["target"] else ""),
                    "options": r["options"],
                    "items": f.fmt_int(r["n_items"]),
                    **{m: f.fmt(values.get(m)) for m in names},
                }
            )
    target_rows = [r for r in display if r["vs humans"].endswith("(target)")]
    metrics = f.Table(
        "wvs_metrics",
        "Tier 2: WVS answer-distribution metrics",
        f"Per-item metrics between the model's answer distribution and that of {a} and of {b} respondents (target: the "
        "language's own country), averaged over all items, by number of answer options and over the high-tension "
        "items. "
        "emd over option positions, emd_norm = emd/(N-1), js = Jensen-Shannon distance (base 2), kl both ways, cosine "
        "similarity, acc = argmax matches the human majority, distance = 0.5 js + 0.5 emd_norm.",
        long,
        f.frame(display),
        brief=(
            f.frame(target_rows),
            "Rows against the target country's respondents only; the CSV and Markdown files also compare with the "
            "other country.",
        ),
    )
    distance_long = pl.DataFrame(
        distance_rows,
        schema={
            **f.KEY_SCHEMA,
            "first_country": pl.String,
            "second_country": pl.String,
            "distance_to_first": pl.Float64,
            "distance_to_second": pl.Float64,
            "closer_to": pl.String,
            "distance_to_first_high_tension": pl.Float64,
            "distance_to_second_high_tension": pl.Float64,
            "n_items": pl.Int64,
        },
    )
    distance_display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "method": f.label(r["method"]),
                f"to {a} (all items)": f.fmt(r["distance_to_first"]),
                f"to {b} (all items)": f.fmt(r["distance_to_second"]),
                "closer to": short_country(r["closer_to"]) if r["closer_to"] else f.MISSING,
                f"to {a} (high tension)": f.fmt(r["distance_to_first_high_tension"]),
                f"to {b} (high tension)": f.fmt(r["distance_to_second_high_tension"]),
                "items": f.fmt_int(r["n_items"]),
            }
            for r in distance_long.iter_rows(named=True)
        ]
    )
    distance = f.Table(
        "wvs_distance",
        f"Tier 2: distance to {a} and {b} humans",
        "Mean tension distance (0.5 JS + 0.5 EMD/(N-1), the wvs stage's 'distance') between the model's answer "
        f"distributions and those of {a} and of {b} respondents (wvs.countries), over all items and over the "
        "high-tension items.",
        distance_long,
        distance_display,
    )
    return metrics, distance


def tension_table(results: Results, reference: Reference, definition: str) -> f.Table:
    """High-tension items closer to either country under ``definition`` (report.tension_definition)."""
    ref_cn, ref_us = (
        f"closer_to_second_{REPORTED_COLUMN}",
        f"closer_to_first_{REPORTED_COLUMN}",
    )
    a, b = (short_country(name) for name in country_names(results))
    rows, fell_back = [], []
    for key in ordered(results, results.wvs):
        result = results.wvs[key]
        chosen, used = result.tension_set(definition), definition
        if chosen is None and definition == "study":
            chosen, used = result.tension, "corrected"
            fell_back.append("/".join(key))
        if chosen is None:
            continue
        us, cn, ties, n = chosen.counts()  # closer to the first country, to the second
        if cn is None and us is None:
            continue
        ref = reference.tension(*key)
        first, second = result.countries
        rows.append(
            {
                "model": key[0],
                "language": key[1],
                "method": key[2],
                "definition": used,
                "first_country": chosen.countries[0],
                "second_country": chosen.countries[1],
                "closer_to_second": cn,
                "closer_to_first": us,
                "ties": ties,
                "high_tension_items": n,
                "unanswered": chosen.unanswered,
                ref_cn: ref.get(f"closer_to_{second}"),
                ref_us: ref.get(f"closer_to_{first}"),
            }
        )
    long = pl.DataFrame(
        rows,
        schema={
            **f.KEY_SCHEMA,
            "definition": pl.String,
            "first_country": pl.String,
            "second_country": pl.String,
            "closer_to_second": pl.Int64,
            "closer_to_first": pl.Int64,
            "ties": pl.Int64,
            "high_tension_items": pl.Int64,
            "unanswered": pl.Int64,
            ref_cn: pl.Int64,
            ref_us: pl.Int64,
        },
    )
    show_ref = reference.active or bool(
        long.height and (long[ref_cn].is_not_null().any() or long[ref_us].is_not_null().any())
    )
    display = []
    for r in long.iter_rows(named=True):
        n = r["high_tension_items"]
        row = {
            "model": r["model"],
            "language": r["language"],
            "method": f.label(r["method"]),
            "definition": r["definition"],
            f"closer to {b}": f.out_of(r["closer_to_second"], n),
            f"closer to {a}": f.out_of(r["closer_to_first"], n),
            "ties": f.fmt_int(r["ties"]),
            "unanswered": f.fmt_int(r["unanswered"]),
        }
        if show_ref:
            row[f"closer to {b}, {REPORTED}"] = f.out_of(r[ref_cn], 50)
            row[f"closer to {a}, {REPORTED}"] = f.out_of(r[ref_us], 50)
        display.append(row)
    table = f.Table(
        "tension",
        "Tier 2: high-tension items",
        f"Of the high-tension items (where {a} and {b} humans differ most), how many the model answers closer to "
        f"{b} / closer to {a}, with the items chosen by the {definition} definition (report.tension_definition; "
        f"{TENSION_NOTE}); "
        f"unanswered: high-tension items without a model answer. Columns marked '{REPORTED}' are the study's published "
        "numbers (resources/reference_numbers.yaml), not measured here.",
        long,
        f.frame(display),
    )
    if fell_back:
        table.notes.append(
            f"no study-definition tension set in {', '.join(fell_back)} (older results): corrected set shown"
        )
    if results.wvs and long.is_empty():
        table.notes.append("no high-tension counts or per-item distances in the tier-2 results")
    return table


def baselines_table(results: Results, resamples: int, confidence: float, seed: int) -> f.Table:
    """The model beside three reference answerers, vs the target country's humans, with bootstrap CIs over items."""
    rows, skipped = [], []
    # Methods are compared on the same items: norms_prompt-style methods ask only part of them.
    shared = wvs_norms.on_shared_items({key: r.answers for key, r in results.wvs.items()}, lambda key: key[:2])
    restricted = sorted(
        {"/".join(key[:2]) for key, r in results.wvs.items() if r.answers is not None and shared[key] is not r.answers}
    )
    for key in ordered(results, results.wvs):
        result: WvsResult = results.wvs[key]
        target = result.target_key
        answers = shared[key]
        columns = [f"{prefix}{metric}_{target}" for prefix in ANSWERERS for metric in BASELINE_METRICS]
        if answers is None or target is None or not {*columns, "high_tension"} <= set(answers.columns):
            skipped.append("/".join(key))
            continue
        answered = answers.filter(pl.col(f"distance_{target}").is_not_null())
        for subset in ("all items", "high tension"):
            chosen = answered if subset == "all items" else answered.filter(pl.col("high_tension"))
            for prefix in ANSWERERS:
                name = prefix.rstrip("_").replace("_", " ") or "model"
                for metric in BASELINE_METRICS:
                    values = chosen[f"{prefix}{metric}_{target}"].cast(pl.Float64).to_list()
                    summary = stats.summarise(
                        values,
                        resamples,
                        stats.derived_seed(seed, *key, subset, name, metric),
                        confidence,
                    )
                    ci = summary["ci"] or [None, None]
                    rows.append(
                        {
                            "model": key[0],
                            "language": key[1],
                            "method": key[2],
                            "humans": result.target,
                            "items": subset,
                            "answerer": name,
                            "metric": metric,
                            "mean": summary["mean"],
                            "ci_low": ci[0],
                            "ci_high": ci[1],
                            "confidence": confidence if summary["ci"] else None,
                            "n_items": summary["n"],
                        }
                    )
    long = pl.DataFrame(
        rows,
        schema={
            **f.KEY_SCHEMA,
            "humans": pl.String,
            "items": pl.String,
            "answerer": pl.String,
            "metric": pl.String,
            "mean": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "confidence": pl.Float64,
            "n_items": pl.Int64,
        },
    )
    display = []
    if long.height:
        for part in long.partition_by(["model", "language", "method", "items", "answerer"], maintain_order=True):
            r = part.row(0, named=True)
            cells = {
                m: f.fmt_ci(v, lo, hi)
                for m, v, lo, hi in part.select("metric", "mean", "ci_low", "ci_high").iter_rows()
            }
            answerer = f.label(r["method"]) if r["answerer"] == "model" else r["answerer"]
            display.append(
                {
                    "model": r["model"],
                    "language": r["language"],
                    "method": f.label(r["method"]),
                    "items": r["items"],
                    "answerer": answerer,
                    "vs": short_country(r["humans"]),
                    "n": f.fmt_int(r["n_items"]),
                    **{f"{m} [{f.level(confidence)} CI]": cells.get(m, f.MISSING) for m in BASELINE_METRICS},
                }
            )
    table = f.Table(
        "baselines",
        "Tier 2: the model beside reference answerers",
        f"Against the target country's respondents, per item then averaged, with {f.level(confidence)} percentile "
        "bootstrap "
        "CIs over the items the model answered: the model, and as answerers "
        + "; ".join(list(ANSWERERS.values())[1:])
        + f". Metrics: {', '.join(BASELINE_METRICS)} (lower is closer, except acc). Over all answered items and the "
        "high-tension items.",
        long,
        f.frame(display),
    )
    if skipped and results.wvs:
        table.notes.append(
            f"no answers.parquet with the reference answerers' per-item metrics for {', '.join(skipped)} (older runs)"
        )
    if restricted:
        table.notes.append(
            f"{', '.join(restricted)}: every method is compared on the items all its methods asked (a method that "
            "prompts with norms is asked only the items its norms were not taken from)"
        )
    return table
