"""Model norms vs human norms (rule ``population_compare``): per cue, by response position, and on the
pooled cue-response graph, with bootstrap CIs over cues.

Both sides are ingested norms (cue, response, count), cleaned and pooled by the same code. Measures:

- per cue (:func:`cue_measures`): top-k overlap of the two frequency orders, P@k-style typicality (the
  model's k most frequent responses that humans also gave, / k), Spearman of response strengths over the
  shared responses, response types, Shannon entropy (bits) and the share of single-mention responses on
  each side, their model / human ratios, and the variety ratio: expected types at the same number of
  responses on both sides (rarefaction), model / human, so that a population of another size than the
  humans' is compared fairly (1 = human variety);
- by position (:func:`position_measures`, raw participant files only): how often R1 and R2/R3 give the
  side's most frequent response, and which share of the model's R1 and R2/R3 responses humans also gave;
- on the pooled graph (:func:`graph_measures`, networkx; edges cue -> response weighted by strength =
  count / the cue's responses): the in-strength distribution, its continuous power-law fit (maximum
  likelihood exponent, KS distance of the fit) and the two-sample KS distance between model and human
  in-strengths, the average clustering coefficient, and the Spearman correlation of the nodes' in-strength
  and PageRank between the model and the human graph (nodes in both). CIs: percentile bootstrap over cues.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from lexalign.config.grid import temperature_label
from lexalign.core import stats
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, read_json, write_json
from lexalign.population.graph import GRAPH_MEASURES, graph_measures
from lexalign.population.settings import CompareJob, CompareSettings

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
Counts = Mapping[str, Mapping[str, int]]  # cue -> response -> count

#: Per-cue measures: column -> one line (the report's description). Ratios are model / human.
CUE_MEASURES = {
    "top_k_overlap": "share of the human top-k responses among the model's top-k",
    "typicality": "P@k-style: share of the model's k most frequent responses that humans also gave",
    "spearman": "Spearman of response strengths over the responses both sides gave (>= 3 shared)",
    "model_types": "response types per cue, model",
    "human_types": "response types per cue, humans",
    "types_ratio": "response types per cue, model / humans (depends on the number of participants)",
    "variety_ratio": "expected types at the same number of responses (rarefaction), model / humans",
    "model_entropy": "entropy (bits) of the cue's response distribution, model",
    "human_entropy": "entropy (bits) of the cue's response distribution, humans",
    "entropy_ratio": "entropy, model / humans",
    "model_single_share": "share of response types given once, model",
    "human_single_share": "share of response types given once, humans",
}
POSITION_MEASURES = {
    "model_r1_top_share": "share of model R1 responses that are the cue's most frequent model response",
    "model_r23_top_share": "same for model R2/R3",
    "human_r1_top_share": "share of human R1 responses that are the cue's most frequent human response",
    "human_r23_top_share": "same for human R2/R3",
    "model_r1_human_hit": "share of model R1 responses that humans also gave for the cue",
    "model_r23_human_hit": "same for model R2/R3",
}
MIN_SHARED = 3  # responses both sides gave, for a per-cue Spearman


def counts_of(table: pl.DataFrame, cues: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """An ingested associations table as cue -> response -> count (count-descending order kept)."""
    if cues is not None:
        table = table.filter(pl.col("cue").is_in(list(cues)))
    out: dict[str, dict[str, int]] = {}
    for cue, response, count in table.select("cue", "response", "count").iter_rows():
        out.setdefault(cue, {})[response] = int(count)
    return {cue: dict(sorted(r.items(), key=lambda item: (-item[1], item[0]))) for cue, r in out.items()}


# --------------------------------------------------------------------------- per cue


def entropy_bits(counts: Sequence[int]) -> float:
    data = np.asarray([c for c in counts if c > 0], dtype=float)
    p = data / data.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def rarefied_types(counts: Sequence[int], n: int) -> float:
    """Expected number of types among ``n`` responses drawn without replacement (Hurlbert's rarefaction)."""
    from scipy.special import gammaln

    data = np.asarray(counts, dtype=float)
    total = data.sum()
    if n >= total:
        return float(len(data))

    def log_choose(a, b):
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    rest = total - data
    absent = np.where(rest >= n, np.exp(log_choose(rest, n) - log_choose(total, n)), 0.0)
    return float((1.0 - absent).sum())


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def cue_row(model: Mapping[str, int], human: Mapping[str, int], k: int) -> dict:
    """The per-cue measures of one cue (both maps count-descending, as :func:`counts_of` gives them)."""
    from scipy.stats import spearmanr

    model_top, human_top = list(model)[:k], list(human)[:k]
    shared = [r for r in model if r in human]
    rho = None
    if len(shared) >= MIN_SHARED:
        m_total, h_total = sum(model.values()), sum(human.values())
        a, b = [model[r] / m_total for r in shared], [human[r] / h_total for r in shared]
        if len(set(a)) > 1 and len(set(b)) > 1:
            rho = float(spearmanr(a, b).statistic)
    n = min(sum(model.values()), sum(human.values()))
    m_types, h_types = len(model), len(human)
    m_entropy, h_entropy = entropy_bits(list(model.values())), entropy_bits(list(human.values()))
    return {
        "model_tokens": sum(model.values()),
        "human_tokens": sum(human.values()),
        "top_k_overlap": len(set(model_top) & set(human_top)) / k,
        "typicality": sum(1 for r in model_top if r in human) / k,
        "spearman": rho,
        "model_types": m_types,
        "human_types": h_types,
        "types_ratio": _ratio(m_types, h_types),
        "variety_ratio": _ratio(rarefied_types(list(model.values()), n), rarefied_types(list(human.values()), n)),
        "model_entropy": m_entropy,
        "human_entropy": h_entropy,
        "entropy_ratio": _ratio(m_entropy, h_entropy),
        "model_single_share": sum(1 for c in model.values() if c == 1) / m_types,
        "human_single_share": sum(1 for c in human.values() if c == 1) / h_types,
    }


def cue_measures(model: Counts, human: Counts, k: int) -> pl.DataFrame:
    """One row per cue both sides answered (sorted by cue): the :data:`CUE_MEASURES` and token counts."""
    if k < 1:
        raise LexalignError(f"config population.top_k: {k} (need at least 1)")
    cues = sorted(set(model) & set(human))
    rows = [{"cue": cue, **cue_row(model[cue], human[cue], k)} for cue in cues]
    schema = {"cue": pl.String, "model_tokens": pl.Int64, "human_tokens": pl.Int64}
    schema |= {name: pl.Int64 if name.endswith("_types") else pl.Float64 for name in CUE_MEASURES}
    return pl.DataFrame(rows, schema=schema)


# --------------------------------------------------------------------------- by response position


def position_counts(path: str | os.PathLike, norms: Mapping) -> pl.DataFrame | None:
    """(cue, response, r1, r23) counts of a raw participant file, cleaned by ingest's own code; None for a
    pooled strength file. R1 alone is read by pointing all three response columns at R1 (each R1 response
    is then counted three times, divided out here), so the cleaning is exactly ingest's."""
    from lexalign.core.csvfile import sniff
    from lexalign.norms.ingest import RAW_COLUMNS, detect_format, pooled_counts, resolve_columns

    _, header = sniff(Path(path))
    fmt = norms.get("format", "auto")
    if (detect_format(header) if fmt == "auto" else fmt) != "raw":
        return None
    overrides = {k: v for k, v in dict(norms.get("columns", {})).items() if k in RAW_COLUMNS}
    r1 = resolve_columns(Path(path), header, RAW_COLUMNS, overrides)["R1"]
    pooled, _ = pooled_counts(path, norms)
    first, _ = pooled_counts(path, {**norms, "columns": {**overrides, "R2": r1, "R3": r1}})
    first = first.with_columns((pl.col("count") // 3).alias("r1")).drop("count")
    table = pooled.join(first, on=["cue", "response"], how="left").with_columns(pl.col("r1").fill_null(0))
    return table.select("cue", "response", "r1", (pl.col("count") - pl.col("r1")).alias("r23"))


def _share(counts: Mapping[str, int], hits) -> float | None:
    """Share of the responses in ``counts`` (by count) that are in ``hits``; None without responses."""
    total = sum(counts.values())
    return None if total == 0 else sum(c for r, c in counts.items() if r in hits) / total


def position_measures(model: pl.DataFrame, human: pl.DataFrame | None, human_counts: Counts) -> pl.DataFrame:
    """Per cue of the model table: the :data:`POSITION_MEASURES` (human ones null without a human raw file)."""

    def split(table: pl.DataFrame) -> dict[str, tuple[dict, dict, str]]:
        out: dict[str, tuple[dict, dict, str]] = {}
        for cue, frame in table.group_by("cue"):
            r1 = {r: c for r, c in zip(frame["response"], frame["r1"]) if c}
            r23 = {r: c for r, c in zip(frame["response"], frame["r23"]) if c}
            total = frame.with_columns(n=pl.col("r1") + pl.col("r23")).sort(["n", "response"], descending=[True, False])
            out[cue[0]] = (r1, r23, total["response"][0])
        return out

    model_by_cue = split(model)
    human_by_cue = split(human) if human is not None else {}
    rows = []
    for cue in sorted(set(model_by_cue) & set(human_counts)):
        r1, r23, top = model_by_cue[cue]
        row = {
            "cue": cue,
            "model_r1_top_share": _share(r1, {top}),
            "model_r23_top_share": _share(r23, {top}),
            "model_r1_human_hit": _share(r1, human_counts[cue]),
            "model_r23_human_hit": _share(r23, human_counts[cue]),
            "human_r1_top_share": None,
            "human_r23_top_share": None,
        }
        if cue in human_by_cue:
            h1, h23, h_top = human_by_cue[cue]
            row["human_r1_top_share"] = _share(h1, {h_top})
            row["human_r23_top_share"] = _share(h23, {h_top})
        rows.append(row)
    return pl.DataFrame(rows, schema={"cue": pl.String, **dict.fromkeys(POSITION_MEASURES, pl.Float64)})


# --------------------------------------------------------------------------- the stage


def _summaries(frame: pl.DataFrame, names, resamples: int, seed: int) -> dict:
    return {
        name: stats.summarise(frame[name].to_list(), resamples, stats.derived_seed(seed, name))
        for name in names
        if name in frame.columns
    }


def compare_temperature(
    model_table: pl.DataFrame,
    human_table: pl.DataFrame,
    model_positions: pl.DataFrame | None,
    human_positions: pl.DataFrame | None,
    settings: CompareSettings,
    seed: int,
) -> tuple[dict, pl.DataFrame]:
    """Every measure of one temperature's model norms against the human norms: (summary, per-cue frame)."""
    model_counts = counts_of(model_table)
    if not model_counts:
        raise LexalignError("population_compare: the model norms have no cue with a usable response")
    human_counts = counts_of(human_table, list(model_counts))
    resamples = int(settings.bootstrap_samples)
    per_cue = cue_measures(model_counts, human_counts, int(settings.top_k))
    if per_cue.height == 0:
        raise LexalignError("population_compare: the model and human norms share no cue")
    summary = {
        "n_cues": per_cue.height,
        "cues_without_model_responses": len(set(human_table["cue"].unique()) - set(model_counts)),
        "top_k": int(settings.top_k),
        "per_cue": _summaries(per_cue, CUE_MEASURES, resamples, seed),
        "overall": {
            "model_tokens": int(per_cue["model_tokens"].sum()),
            "human_tokens": int(per_cue["human_tokens"].sum()),
            "model_types": len({r for c in per_cue["cue"] for r in model_counts[c]}),
            "human_types": len({r for c in per_cue["cue"] for r in human_counts[c]}),
        },
    }
    if model_positions is not None:
        positions = position_measures(model_positions, human_positions, human_counts)
        summary["position"] = _summaries(positions, POSITION_MEASURES, resamples, seed)
        per_cue = per_cue.join(positions, on="cue", how="left")
        if human_positions is None:
            summary["position_note"] = "the human norms are a pooled strength file: no human R1 vs R2/R3"
    summary["graph"] = graph_measures(
        {c: model_counts[c] for c in per_cue["cue"]},
        {c: human_counts[c] for c in per_cue["cue"]},
        int(settings.graph_bootstrap_samples),
        stats.derived_seed(seed, "graph"),
    )
    return summary, per_cue


def compare(job: CompareJob) -> dict:
    """The ``population_compare`` rule: every temperature's model norms against the human norms; writes
    ``job.outputs["compare"]`` (JSON) and ``job.outputs["per_cue"]`` (Parquet, one row per temperature and cue)."""
    from lexalign.norms.ingest import load_associations

    settings, seed, model_associations = job.settings, job.seed, job.model_associations
    produced = read_json(job.population_summary_path)
    ingest_norms = produced.get("ingest_norms", {})
    temperatures = list(produced.get("temperatures", {}).values())
    if len(temperatures) != len(model_associations) or len(job.participant_files) != len(model_associations):
        raise LexalignError(
            f"{job.population_summary_path}: lists {len(temperatures)} temperature(s) but "
            f"{len(model_associations)} model norms file(s) were given"
        )
    human_table = load_associations(job.human_associations_path)
    human_positions = position_counts(job.human_norms_path, job.human_norms)
    result = {
        "schema_version": SCHEMA_VERSION,
        **dict(job.labels),
        "participants": produced.get("participants"),
        "responses_per_participant": produced.get("responses_per_participant"),
        "definitions": {**CUE_MEASURES, **POSITION_MEASURES, **GRAPH_MEASURES},
        "bootstrap": {
            "resamples": int(settings.bootstrap_samples),
            "graph_resamples": int(settings.graph_bootstrap_samples),
            "over": "cues",
            "seed": seed,
        },
        "temperatures": {},
    }
    frames = []
    for produced_t, model_path, participants in zip(temperatures, model_associations, job.participant_files):
        label = temperature_label(produced_t["temperature"])
        model_table = load_associations(model_path)
        summary, per_cue = compare_temperature(
            model_table,
            human_table,
            position_counts(participants, ingest_norms),
            human_positions,
            settings,
            stats.derived_seed(seed, "population_compare", label),
        )
        result["temperatures"][label] = {
            "temperature": produced_t["temperature"],
            "model_norms": str(participants),
            **summary,
        }
        frames.append(per_cue.with_columns(pl.lit(float(produced_t["temperature"])).alias("temperature")))
        log.info("population_compare %s: %d cues", label, summary["n_cues"])
    with atomic_path(job.outputs["per_cue"]) as tmp:
        pl.concat(frames, how="diagonal_relaxed").write_parquet(tmp)
    write_json(job.outputs["compare"], result)
    return result
