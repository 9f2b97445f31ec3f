"""Tier-2 tables across answer modes: every mode asked side by side, and how far the modes agree per item.

The four readouts of one model's answer distribution (``wvs.modes``): ``logits`` (option probabilities),
``generate`` (one greedy answer, one-hot), ``sample`` (the shares of N sampled answers) and ``describe`` (the
shares the model states for the target country). ``answer_modes`` shows, per model, language, method,
framing and mode, JS and EMD/(N-1) to each country's respondents and the invalid and refusal shares, with
bootstrap CIs over items; ``mode_agreement`` pairs the modes of one framing on the items both answered (the
same argmax; the JS distance between the two distributions) and ``mode_agreement_items`` lists the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import polars as pl

from lexalign.report import format as f
from lexalign.report.readers import Results, VariantKey
from lexalign.report.wvs_gap import SUMMARY_SCHEMA, summary_row, variant_keys
from lexalign.report.wvs_tables import short_country
from lexalign.wvs.metrics import js_distance
from lexalign.wvs.refusal import REFUSAL

#: The per-item metrics shown against each country's humans (answers.parquet columns ``<metric>_<key>``).
MODE_METRICS = ("js", "emd_norm")
#: Share name -> what it counts per item (then averaged over all items asked).
SHARES = {
    "invalid": "no distribution: 1 for an item whose generate or describe answer gives none (a refusal, no valid "
    "option, no usable numbers); in sample mode the share of its N answers naming no option; 0 in logits mode",
    "refusal": "1 for a refused generate or describe answer; in sample mode the share of refused answers",
}
AGREEMENT = {
    "agreement": "the two modes' argmax options are the same (of the items both give a distribution)",
    "js_between": "JS distance between the two modes' distributions (same items)",
}
ITEM_SCHEMA = {
    **f.KEY_SCHEMA,
    "framing": pl.String,
    "mode_a": pl.String,
    "mode_b": pl.String,
    "item_id": pl.String,
    "answer_a": pl.Int64,
    "answer_b": pl.Int64,
    "agree": pl.Boolean,
    "js_between": pl.Float64,
}


def item_shares(answers: pl.DataFrame) -> dict[str, list[float]]:
    """Per :data:`SHARES` name, every item's value (sample mode's own columns where the table has them)."""
    if "invalid_share" in answers.columns:
        return {
            "invalid": answers["invalid_share"].cast(pl.Float64).to_list(),
            "refusal": answers["refusal_share"].cast(pl.Float64).to_list(),
        }
    answered = answers["answered"].to_list() if "answered" in answers.columns else [True] * answers.height
    outcomes = answers["text_outcome"].to_list() if "text_outcome" in answers.columns else [None] * answers.height
    return {
        "invalid": [0.0 if a else 1.0 for a in answered],
        "refusal": [float(o == REFUSAL) for o in outcomes],
    }


def modes_table(results: Results, resamples: int, confidence: float, seed: int) -> f.Table:
    """``answer_modes``: every framing x mode's JS and EMD/(N-1) to each country, invalid and refusal shares."""
    boot = (resamples, confidence, seed)
    rows, display, missing = [], [], []
    for vkey in variant_keys(results):
        key, (framing, mode) = vkey[:3], vkey[3:]
        result = results.wvs_variants[vkey]
        answers = result.answers
        if answers is None:
            missing.append("/".join(vkey))
            continue
        cells: dict[str, dict] = {}
        for country_key, country in result.countries.items():
            for metric in MODE_METRICS:
                column = f"{metric}_{country_key}"
                values = answers[column].cast(pl.Float64).to_list() if column in answers.columns else []
                row = summary_row(key, framing, mode, country, metric, values, boot, ("modes", country_key, metric))
                rows.append(row)
                cells[f"{metric} vs {short_country(country)}"] = row
        for name, values in item_shares(answers).items():
            row = summary_row(key, framing, mode, None, name, values, boot, ("modes", name))
            rows.append(row)
            cells[name] = row
        answered = int(answers["answered"].sum()) if "answered" in answers.columns else None
        display.append(
            {
                "model": key[0],
                "language": key[1],
                "method": f.label(key[2]),
                "framing": framing,
                "mode": mode,
                "answered": f.out_of(answered, answers.height),
                **{
                    f"{name} [{f.level(confidence)} CI]": f.fmt_ci(c["mean"], c["ci_low"], c["ci_high"])
                    for name, c in cells.items()
                },
            }
        )
    shares = "; ".join(f"{name}: {what}" for name, what in SHARES.items())
    table = f.Table(
        "answer_modes",
        "Tier 2: the answer modes side by side",
        "Per framing and answer mode (wvs.modes; logits: option probabilities, generate: one greedy text answer, "
        "sample: the shares of N sampled answers, describe: the shares the model states for the target country's "
        "people): JS and EMD/(N-1) to each country's respondents, per item then averaged over the items with a "
        f"distribution, and the invalid and refusal shares over all items asked, with {f.level(confidence)} "
        f"percentile bootstrap CIs over items. {shares}.",
        pl.DataFrame(rows, schema=SUMMARY_SCHEMA),
        f.frame(display),
    )
    if missing:
        table.notes.append(f"no answers.parquet for {', '.join(missing)}: left out")
    return table


def _by_item(answers: pl.DataFrame) -> dict[str, tuple[int | None, list[float] | None]]:
    """item -> (argmax, 1-based; None without a distribution) and the distribution (None where the table has
    none, or no ``probs`` column: an answers table written before it had one)."""
    probs = answers["probs"].to_list() if "probs" in answers.columns else [None] * answers.height
    return {
        str(item): (answer, None if p is None else [float(v) for v in p])
        for item, answer, p in zip(answers["item_id"].to_list(), answers["answer_position"].to_list(), probs)
    }


def agreement_items(first: pl.DataFrame, second: pl.DataFrame) -> pl.DataFrame:
    """Per item the first table asked: both modes' argmax (1-based), whether they agree (where both give
    one) and the JS distance between their distributions (where both have one)."""
    other = _by_item(second)
    rows = []
    for item, (answer, probs) in _by_item(first).items():
        answer_b, probs_b = other.get(item, (None, None))
        both = probs is not None and probs_b is not None and len(probs) == len(probs_b)
        rows.append(
            {
                "item_id": item,
                "answer_a": answer,
                "answer_b": answer_b,
                "agree": (answer == answer_b) if answer is not None and answer_b is not None else None,
                "js_between": js_distance(probs, probs_b) if both else None,
            }
        )
    return pl.DataFrame(
        rows, schema={k: ITEM_SCHEMA[k] for k in ("item_id", "answer_a", "answer_b", "agree", "js_between")}
    )


def _pairs(results: Results) -> list[tuple[VariantKey, VariantKey]]:
    """Every two modes of one (model, lang, method, framing) that both wrote answers, in listed mode order."""
    groups: dict[tuple, list[VariantKey]] = {}
    for vkey in variant_keys(results):
        if results.wvs_variants[vkey].answers is not None:
            groups.setdefault(vkey[:4], []).append(vkey)
    return [pair for keys in groups.values() for pair in combinations(keys, 2)]


def agreement_tables(results: Results, resamples: int, confidence: float, seed: int) -> tuple[f.Table, f.Table]:
    """``mode_agreement`` (per mode pair: agreement and JS between, with CIs) and ``mode_agreement_items``."""
    boot = (resamples, confidence, seed)
    rows, display, frames = [], [], []
    for a, b in _pairs(results):
        key, framing, pair = a[:3], a[3], f"{a[4]} vs {b[4]}"
        items = agreement_items(results.wvs_variants[a].answers, results.wvs_variants[b].answers)
        frames.append(
            items.with_columns(
                model=pl.lit(key[0]),
                language=pl.lit(key[1]),
                method=pl.lit(key[2]),
                framing=pl.lit(framing),
                mode_a=pl.lit(a[4]),
                mode_b=pl.lit(b[4]),
            ).select(list(ITEM_SCHEMA))
        )
        values = {
            "agreement": [float(v) for v in items["agree"].to_list() if v is not None],
            "js_between": [v for v in items["js_between"].to_list() if v is not None],
        }
        cells = {}
        for name, series in values.items():
            cells[name] = row = summary_row(key, framing, pair, None, name, series, boot, ("agreement", name))
            rows.append(row)
        display.append(
            {
                "model": key[0],
                "language": key[1],
                "method": f.label(key[2]),
                "framing": framing,
                "modes": pair,
                **f.item_ci_cells(cells, confidence),
            }
        )
    what = "; ".join(f"{name}: {text}" for name, text in AGREEMENT.items())
    summary = f.Table(
        "mode_agreement",
        "Tier 2: agreement between answer modes",
        "For every two answer modes asked in one framing, on the items both give a distribution, with "
        f"{f.level(confidence)} percentile bootstrap CIs over items. {what}.",
        pl.DataFrame(rows, schema=SUMMARY_SCHEMA).drop("humans"),
        f.frame(display),
    )
    per_item = pl.concat(frames) if frames else pl.DataFrame(schema=ITEM_SCHEMA)
    items_table = f.Table(
        "mode_agreement_items",
        "Tier 2: answer modes per item",
        "Per item and pair of answer modes: each mode's argmax option (1-based position), whether they agree, and "
        "the JS distance between the two distributions (empty where a mode gives none).",
        per_item,
        f.frame(
            [
                {
                    **{k: r[k] for k in ("model", "language", "framing", "item_id")},
                    "method": f.label(r["method"]),
                    "modes": f"{r['mode_a']} vs {r['mode_b']}",
                    "argmax a": f.fmt_int(r["answer_a"]),
                    "argmax b": f.fmt_int(r["answer_b"]),
                    "agree": f.MISSING if r["agree"] is None else str(r["agree"]).lower(),
                    "JS between": f.fmt(r["js_between"]),
                }
                for r in per_item.iter_rows(named=True)
            ]
        ),
    )
    items_table.brief = (items_table.display.head(10), "First 10 rows; the files list every item.")
    if results.wvs_variants and not rows:
        summary.notes.append("no framing was run in more than one answer mode (wvs.modes)")
    return summary, items_table


#: What each answer mode reads from the model, for the report's index.
MODE_TEXT = {
    "logits": "the option numbers' next-token probabilities (one forward pass)",
    "generate": "the option its one greedy text answer names (one-hot; the study's text readout)",
    "sample": "the shares of its N sampled text answers that name each option",
    "describe": "the shares it states for the target country's people when asked for them",
}


def index_text(results: Results) -> list[str]:
    """index.md's paragraph on the answer modes read (none when one mode alone was run)."""
    modes = list(dict.fromkeys(k[4] for k in variant_keys(results)))
    if len(modes) < 2:
        return []
    each = "; ".join(f"{mode}: {MODE_TEXT.get(mode, 'an answer mode')}" for mode in modes)
    return [
        f"The model's answer distribution was read {len(modes)} ways (wvs.modes; {each}). answer_modes shows them "
        "side by side against each country's respondents, with the invalid and refusal shares; mode_agreement and "
        "mode_agreement_items show per item how far two modes agree.",
        "",
    ]


def tables(results: Results, resamples: int, confidence: float, seed: int) -> Sequence[f.Table]:
    """Every table of this module, in report order."""
    return [modes_table(results, resamples, confidence, seed), *agreement_tables(results, resamples, confidence, seed)]
