"""Tier-2 tables across framings and answer modes: metrics per framing x mode, and the logit-text gap.

Each wvs job is one framing x mode (``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/``, read into
``Results.wvs_variants``). ``framing_mode`` shows every job's metrics against the target country with
bootstrap CIs over the items it answered. ``logit_text_gap`` pairs, for the same model, language, method
and framing, the generate job's text answer of each item (an option, a refusal or no valid option;
:mod:`lexalign.wvs.refusal`) with the logits job's argmax, and gives the refusal, no-valid-option and
agreement rates with bootstrap CIs over items; ``logit_text_gap_items`` lists the item pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from lexalign.core import stats
from lexalign.report import format as f
from lexalign.report.readers import Results, VariantKey, WvsResult
from lexalign.report.tables import ordered
from lexalign.report.wvs_tables import BASELINE_METRICS, short_country
from lexalign.wvs.refusal import NO_OPTION, OPTION, REFUSAL

LOGITS, GENERATE = "logits", "generate"
#: Rate name -> (what it counts, over which items).
GAP_RATES = {
    "refusal": "text answer is a refusal (of all items asked)",
    "no_valid_option": "text answer names no option and is no refusal (of all items asked)",
    "agreement": "text option = logit argmax (of the items with a text option and a logit answer)",
    "agreement_all": "text option = logit argmax (of all items with a logit answer; refusals disagree)",
}
ITEM_SCHEMA = {
    **f.KEY_SCHEMA,
    "framing": pl.String,
    "item_id": pl.String,
    "text_outcome": pl.String,
    "text_answer": pl.Int64,
    "logit_answer": pl.Int64,
    "agree": pl.Boolean,
    "raw_text": pl.String,
}
SUMMARY_SCHEMA = {
    **f.KEY_SCHEMA,
    "framing": pl.String,
    "mode": pl.String,
    "humans": pl.String,
    "measure": pl.String,
    "mean": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "confidence": pl.Float64,
    "n_items": pl.Int64,
}


def variant_keys(results: Results) -> list[VariantKey]:
    """Every framing x mode read, in run-grid order of (model, lang, method), then as listed."""
    base = {key: i for i, key in enumerate(ordered(results, {k[:3]: None for k in results.wvs_variants}))}
    listed = list(results.wvs_variants)
    return sorted(listed, key=lambda k: (base[k[:3]], listed.index(k)))


def several(results: Results) -> bool:
    """Whether more than one framing x mode was read for any (model, lang, method)."""
    return len({k[3:] for k in results.wvs_variants}) > 1


def headline_note(results: Results) -> str | None:
    """A note for the headline tables saying which framing x mode they show, when several were run."""
    if not several(results):
        return None
    shown = sorted({f"{r.framing}-{r.mode}" for r in results.wvs.values()})
    return f"framing-mode shown: {', '.join(shown)}; every framing x mode is in the framing_mode table"


def summary_row(key, framing, mode, humans, measure, values, boot, parts) -> dict:
    """One :data:`SUMMARY_SCHEMA` row: the mean of ``values`` (None left out) with its percentile bootstrap CI
    (``boot``: resamples, confidence, seed; the seed derived from the row's key and ``parts``)."""
    resamples, confidence, seed = boot
    summary = stats.summarise(values, resamples, stats.derived_seed(seed, *key, framing, mode, *parts), confidence)
    ci = summary["ci"] or [None, None]
    return {
        "model": key[0],
        "language": key[1],
        "method": key[2],
        "framing": framing,
        "mode": mode,
        "humans": humans,
        "measure": measure,
        "mean": summary["mean"],
        "ci_low": ci[0],
        "ci_high": ci[1],
        "confidence": confidence if summary["ci"] else None,
        "n_items": summary["n"],
    }


def _target(result: WvsResult) -> str | None:
    return result.target_key


def framing_mode_table(results: Results, resamples: int, confidence: float, seed: int) -> f.Table:
    """Metrics against the target country's humans for every framing x mode, with bootstrap CIs over items."""
    boot = (resamples, confidence, seed)
    rows, display, fallback = [], [], []
    for vkey in variant_keys(results):
        key, (framing, mode) = vkey[:3], vkey[3:]
        result = results.wvs_variants[vkey]
        target = _target(result)
        answers = result.answers
        columns = {f"{metric}_{target}" for metric in BASELINE_METRICS}
        mine = []
        if answers is not None and target is not None and columns <= set(answers.columns):
            asked = answers.height
            for metric in BASELINE_METRICS:
                values = answers[f"{metric}_{target}"].cast(pl.Float64).to_list()
                mine.append(summary_row(key, framing, mode, result.target, metric, values, boot, ("framing_mode",)))
            if "text_outcome" in answers.columns and mode == GENERATE:
                refused = [float(o == REFUSAL) for o in answers["text_outcome"].to_list()]
                mine.append(summary_row(key, framing, mode, result.target, "refusal", refused, boot, ("refusal",)))
        else:  # an older result without answers.parquet: the means metrics.json has, no CI
            fallback.append("/".join(vkey))
            asked = None
            for metric in BASELINE_METRICS:
                row = summary_row(key, framing, mode, result.target, metric, [], boot, ())
                row.update(mean=result.value(result.target or "", "overall", metric), n_items=None)
                mine.append(row)
        rows.extend(mine)
        cells = {row["measure"]: row for row in mine}
        answered = cells.get(BASELINE_METRICS[0], {}).get("n_items")
        display.append(
            {
                "model": key[0],
                "language": key[1],
                "method": f.label(key[2]),
                "framing": framing,
                "mode": mode,
                "vs": short_country(result.target),
                "answered": f.out_of(answered, asked),
                **{
                    f"{m} [{f.level(confidence)} CI]": f.fmt_ci(c.get("mean"), c.get("ci_low"), c.get("ci_high"))
                    for m in (*BASELINE_METRICS, "refusal")
                    for c in [cells.get(m, {})]
                },
            }
        )
    table = f.Table(
        "framing_mode",
        "Tier 2: every framing x answer mode",
        f"Per framing (wvs.framings) and answer mode (wvs.modes): the model against the target country's "
        f"respondents, per item then averaged over the items it answered, with {f.level(confidence)} percentile "
        "bootstrap CIs over items (distance = 0.5 js + 0.5 emd_norm; acc = argmax matches the human majority). "
        "Generate mode scores the option its text names (one-hot), sample mode the shares of its sampled answers, "
        "describe mode the shares it states; refusal = share of items whose generate answer is a refusal "
        "(answer_modes has every mode's invalid and refusal shares).",
        pl.DataFrame(rows, schema=SUMMARY_SCHEMA),
        f.frame(display),
    )
    if fallback:
        table.notes.append(
            f"no per-item metrics in answers.parquet for {', '.join(fallback)}: means from metrics.json, without CIs"
        )
    return table


def _pairs(results: Results) -> list[tuple[tuple[str, str, str], str, WvsResult, WvsResult]]:
    """(key, framing, logits result, generate result) for every framing run in both modes with answers."""
    pairs = []
    for vkey in variant_keys(results):
        if vkey[4] != LOGITS:
            continue
        text = results.wvs_variants.get((*vkey[:4], GENERATE))
        logits = results.wvs_variants[vkey]
        if text is not None and logits.answers is not None and text.answers is not None:
            pairs.append((vkey[:3], vkey[3], logits, text))
    return pairs


def gap_items(logits: pl.DataFrame, text: pl.DataFrame) -> pl.DataFrame:
    """Per item asked in generate mode: the text outcome and option (1-based) beside the logit argmax."""
    joined = text.select(
        pl.col("item_id").cast(pl.String),
        pl.col("text_outcome"),
        pl.col("answer_position").alias("text_answer"),
        pl.col("raw_text"),
    ).join(
        logits.select(pl.col("item_id").cast(pl.String), pl.col("answer_position").alias("logit_answer")),
        on="item_id",
        how="left",
    )
    return joined.with_columns(
        pl.when(pl.col("text_outcome") == OPTION)
        .then(pl.col("text_answer") == pl.col("logit_answer"))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
        .alias("agree")
    )


def gap_rates(items: pl.DataFrame) -> dict[str, list[float]]:
    """Per :data:`GAP_RATES` name, the 0/1 value of every item it counts."""
    outcomes = items["text_outcome"].to_list()
    logit = items["logit_answer"].to_list()
    agree = items["agree"].to_list()
    return {
        "refusal": [float(o == REFUSAL) for o in outcomes],
        "no_valid_option": [float(o == NO_OPTION) for o in outcomes],
        "agreement": [float(a) for a, lg in zip(agree, logit) if a is not None and lg is not None],
        "agreement_all": [float(bool(a)) for a, lg in zip(agree, logit) if lg is not None],
    }


def logit_text_gap_tables(results: Results, resamples: int, confidence: float, seed: int) -> tuple[f.Table, f.Table]:
    """``logit_text_gap`` (rates with CIs per model, language, method, framing) and ``logit_text_gap_items``."""
    boot = (resamples, confidence, seed)
    rows, display, item_frames = [], [], []
    for key, framing, logits, text in _pairs(results):
        items = gap_items(logits.answers, text.answers)
        item_frames.append(
            items.select(
                pl.lit(key[0]).alias("model"),
                pl.lit(key[1]).alias("language"),
                pl.lit(key[2]).alias("method"),
                pl.lit(framing).alias("framing"),
                *ITEM_SCHEMA.keys() - {"model", "language", "method", "framing"},
            ).select(list(ITEM_SCHEMA))
        )
        cells = {}
        for name, values in gap_rates(items).items():
            row = summary_row(key, framing, f"{LOGITS} vs {GENERATE}", None, name, values, boot, ("gap", name))
            rows.append(row)
            cells[name] = row
        display.append(
            {
                "model": key[0],
                "language": key[1],
                "method": f.label(key[2]),
                "framing": framing,
                "items": f.fmt_int(items.height),
                **f.item_ci_cells(cells, confidence),
            }
        )
    rates = ", ".join(f"{name}: {what}" for name, what in GAP_RATES.items())
    summary = f.Table(
        "logit_text_gap",
        "Tier 2: logit-text gap",
        "For every framing run in both answer modes: the model's text answer (generate mode, refusals detected by "
        "a per-language pattern list, resources/refusals.yaml) against its logit argmax (logits mode) on the same "
        f"items, with {f.level(confidence)} percentile bootstrap CIs over items. {rates}.",
        pl.DataFrame(rows, schema=SUMMARY_SCHEMA).drop("humans"),
        f.frame(display),
    )
    per_item = pl.concat(item_frames) if item_frames else pl.DataFrame(schema=ITEM_SCHEMA)
    items_table = f.Table(
        "logit_text_gap_items",
        "Tier 2: text answer vs logit argmax per item",
        "Per item: the text answer's outcome (option, refusal, no valid option), the option it names and the logit "
        "argmax (1-based option positions), and whether they agree.",
        per_item,
        f.frame(
            [
                {
                    **{k: r[k] for k in ("model", "language", "framing", "item_id", "text_outcome")},
                    "method": f.label(r["method"]),
                    "text answer": f.fmt_int(r["text_answer"]),
                    "logit argmax": f.fmt_int(r["logit_answer"]),
                    "agree": f.MISSING if r["agree"] is None else str(r["agree"]).lower(),
                }
                for r in per_item.iter_rows(named=True)
            ]
        ),
    )
    items_table.brief = (items_table.display.head(10), "First 10 items; the files list every item.")
    if results.wvs_variants and not rows:
        modes = sorted({k[4] for k in results.wvs_variants})
        summary.notes.append(
            f"no framing was run in both logits and generate mode (modes run: {', '.join(modes)}; set "
            "wvs.modes: [logits, generate])"
        )
    return summary, items_table


def tables(results: Results, resamples: int, confidence: float, seed: int) -> Sequence[f.Table]:
    """Every table of this module, in report order."""
    return [
        framing_mode_table(results, resamples, confidence, seed),
        *logit_text_gap_tables(results, resamples, confidence, seed),
    ]
