"""The study's definitions beside the corrected ones (issue 12): for each number whose definition
differs, the corrected value, the study-definition value and a one-line note on the difference."""

from __future__ import annotations

import polars as pl

from lexalign.config.countries import short_name
from lexalign.report import format as f
from lexalign.report.readers import Results
from lexalign.report.tables import Precision, ordered

#: One line per metric whose study form differs from the corrected one (issue 12); other metrics are equal.
DEFINITION_NOTES = {
    "js": "study: natural-log Jensen-Shannon distance (= base-2 value × √ln 2); corrected: base 2, in [0, 1]",
    "kl_model_human": "study: epsilon 1e-10 added before KL; corrected: wvs.kl_epsilon",
    "kl_human_model": "study: epsilon 1e-10 added before KL; corrected: wvs.kl_epsilon",
    "distance": (
        "study: 0.5 JS (base 2) + 0.5 wasserstein_distance of the probabilities as values / (N-1), which "
        "ignores which option holds the mass; corrected: the EMD over option positions"
    ),
}
TENSION_NOTE = (
    "study: the items with the largest gap between the two countries by the study's distance, closer-to by the "
    "study's distance; "
    "corrected: both by the position-based distance"
)


def number(value: float | None, quantity: str, signed: bool = False) -> str:
    """A metric with 3 decimals; an item count (closer_to_<country>) as an integer."""
    if quantity.startswith("closer_to") and value is not None:
        return f"{int(value):+d}" if signed else str(int(value))
    return f.fmt_signed(value) if signed else f.fmt(value)


def study_tier1_table(results: Results, precision: Precision) -> f.Table:
    """Each tier-1 number whose definition differs: the corrected value beside the study's, with a note."""
    notes = {
        "P@k": (
            "study: cues whose parsed list has fewer than 3 words are dropped before averaging; "
            "corrected: every test cue counts"
        ),
        "Spearman": "study: one Spearman pooled over all cues; corrected: per-cue Spearman, averaged over cues",
    }
    rows = []
    for key in ordered(results, results.lexical):
        study = results.lexical[key].study
        if study is None:
            continue
        have = precision.values.get(key, {})
        pairs = [(f"P@{k}", s) for k, s in study.precision.items()] + (
            [("Spearman", study.spearman)] if study.spearman else []
        )
        for metric, theirs in pairs:
            ours = have.get(metric)
            corrected = ours.mean if ours else None
            if corrected is None and theirs.mean is None:
                continue
            rows.append(
                {
                    "model": key[0],
                    "language": key[1],
                    "method": key[2],
                    "metric": metric,
                    "corrected": corrected,
                    "study": theirs.mean,
                    "difference": None if None in (corrected, theirs.mean) else theirs.mean - corrected,
                    "n_corrected": ours.n if ours else None,
                    "n_study": theirs.n,
                    "note": notes["Spearman" if metric == "Spearman" else "P@k"],
                }
            )
    schema = {
        **f.KEY_SCHEMA,
        "metric": pl.String,
        "corrected": pl.Float64,
        "study": pl.Float64,
        "difference": pl.Float64,
        "n_corrected": pl.Int64,
        "n_study": pl.Int64,
        "note": pl.String,
    }
    long = pl.DataFrame(rows, schema=schema)
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "method": f.label(r["method"]),
                "metric": r["metric"],
                "corrected": f.fmt(r["corrected"]),
                "study definition": f.fmt(r["study"]),
                "study − corrected": f.fmt_signed(r["difference"]),
                "cues (corrected / study)": f"{f.fmt_int(r['n_corrected'])} / {f.fmt_int(r['n_study'])}",
            }
            for r in long.iter_rows(named=True)
        ]
    )
    table = f.Table(
        "definitions",
        "Tier 1: corrected vs the study's definitions",
        "The same outputs scored by lexalign's corrected definitions and by the study's own code's definitions. "
        + " ".join(f"{k}: {v}." for k, v in notes.items()),
        long,
        display,
    )
    stage_notes = dict.fromkeys(
        n for key in ordered(results, results.lexical) if (st := results.lexical[key].study) for n in st.notes
    )
    table.notes.extend(f"lexical stage: {note}" for note in stage_notes)
    if results.lexical and long.is_empty():
        table.notes.append(
            "no tier-1 result carries the study's definitions (scores.json has no 'study' block; older runs)"
        )
    return table


def study_tier2_table(results: Results) -> f.Table:
    """Each tier-2 number whose definition differs, over all items: corrected beside the study's value."""
    rows = []
    for key in ordered(results, results.wvs):
        result = results.wvs[key]
        for country in result.countries.values():
            theirs = result.study_metrics.get(country, {}).get("overall", {})
            for metric in [m for m in DEFINITION_NOTES if m in theirs]:
                ours = result.value(country, "overall", metric)
                rows.append(
                    {
                        "model": key[0],
                        "language": key[1],
                        "method": key[2],
                        "humans": country,
                        "quantity": metric,
                        "corrected": ours,
                        "study": theirs[metric],
                        "difference": None if ours is None else theirs[metric] - ours,
                        "note": DEFINITION_NOTES[metric],
                    }
                )
        if result.study_tension is not None and result.tension is not None:
            keys = list(result.countries)  # counts(): closer to the first country, to the second
            for name, index in ((f"closer_to_{keys[1]}", 1), (f"closer_to_{keys[0]}", 0)):
                ours, theirs = (
                    result.tension.counts()[index],
                    result.study_tension.counts()[index],
                )
                rows.append(
                    {
                        "model": key[0],
                        "language": key[1],
                        "method": key[2],
                        "humans": "high-tension items",
                        "quantity": name,
                        "corrected": ours,
                        "study": theirs,
                        "difference": None if None in (ours, theirs) else theirs - ours,
                        "note": TENSION_NOTE,
                    }
                )
    long = pl.DataFrame(
        rows,
        schema={
            **f.KEY_SCHEMA,
            "humans": pl.String,
            "quantity": pl.String,
            "corrected": pl.Float64,
            "study": pl.Float64,
            "difference": pl.Float64,
            "note": pl.String,
        },
    )
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "method": f.label(r["method"]),
                "vs": short_name(r["humans"]),
                "quantity": r["quantity"],
                "corrected": number(r["corrected"], r["quantity"]),
                "study definition": number(r["study"], r["quantity"]),
                "study − corrected": number(r["difference"], r["quantity"], signed=True),
            }
            for r in long.iter_rows(named=True)
        ]
    )
    used = dict.fromkeys(r["quantity"] for r in rows)
    notes = " ".join(f"{q}: {DEFINITION_NOTES[q]}." for q in used if q in DEFINITION_NOTES)
    table = f.Table(
        "definitions",
        "Tier 2: corrected vs the study's definitions",
        "The same answer distributions measured by lexalign's corrected definitions and by the study's own code's, "
        "over all "
        f"items. {notes} closer_to_*: {TENSION_NOTE}.",
        long,
        display,
    )
    if results.wvs and long.is_empty():
        table.notes.append(
            "no tier-2 result carries the study's definitions (metrics.json has no 'study' block; older runs)"
        )
    return table
