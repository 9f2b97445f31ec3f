"""Report stage: turn every per-(model, lang, method) result into the tables and figures a reader of
the paper compares, plus ``index.md`` linking them.

Layout written under the report directory (``results/report/``)::

    index.md                         Markdown summary: run grid, notes, every table, every figure
    tables/tier1/   precision, gains, profile, paired_tests      (.csv, .md, .tex each)
    tables/tier2/   wvs_metrics, wvs_distance, tension           (.csv, .md, .tex each)
    tables/training/training                                    (.csv, .md, .tex)
    figures/precision_at_k/{lang}.png|pdf
    figures/profile/{lang}.png|pdf
    figures/tension/{model}.{lang}.png|pdf
    figures/training/{model}.{lang}.png|pdf

Upstream files are read in one place (the "readers" section below) into small canonical records;
everything after that works on those records only. A result that is missing or unreadable is left
out of the tables with a note (in ``index.md`` and under each affected table), never a crash.
Numbers the study reported (``resources/reference_numbers.yaml``) appear only in columns labelled
"reported by the study".
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from lexalign.errors import LexalignError

log = logging.getLogger(__name__)

METHOD_ORDER = ("vanilla", "prompt", "assoc_prompt", "sft", "rl", "sft_rl", "dpo")
METHOD_LABELS = {
    "vanilla": "vanilla",
    "prompt": "persona prompt",
    "assoc_prompt": "association prompt",
    "sft": "SFT",
    "rl": "RL",
    "sft_rl": "SFT+RL",
    "dpo": "DPO",
}
K_VALUES = (5, 10, 20, 30, 40, 50)
MEASURES = ("concreteness", "valence", "arousal")
OPTION_GROUPS = ("2", "3", "4", ">=5")
COUNTRY_NAMES = {"us": "United States", "china": "China"}  # the wvs stage's country keys
DISTANCE = "distance"  # the wvs stage's tension distance, 0.5 * JS + 0.5 * EMD/(N-1)
WVS_METRICS = ("emd", "emd_norm", "js", "kl_model_human", "kl_human_model", "cosine", "acc", "goqa_similarity", "wvb_emd_below_0_2", "distance")
PAIRED_METRIC = "P@5"
PAIRED_TEST = "Wilcoxon signed-rank, two-sided, per-cue P@5"
PROFILE_TEST = "Wilcoxon signed-rank, two-sided, per-cue medians (model vs human)"
REPORTED = "reported by the study"
REPORTED_COLUMN = "reported_by_the_study"
REFERENCE_FILE = Path(__file__).parent / "resources" / "reference_numbers.yaml"

#: Output directories, relative to the report directory; rule ``report`` declares the same paths.
LAYOUT = {
    "tier1": "tables/tier1",
    "tier2": "tables/tier2",
    "training": "tables/training",
    "fig_precision": "figures/precision_at_k",
    "fig_profile": "figures/profile",
    "fig_tension": "figures/tension",
    "fig_training": "figures/training",
}

DEFAULT_SETTINGS = {
    "reference_models": {},
    "reference_languages": {},
    "bootstrap_resamples": 2000,
    "confidence": 0.95,
    "dpi": 150,
    "figure_formats": ["png", "pdf"],
    "cjk_fonts": [],
}

Key = tuple[str, str, str]  # (model, lang, method)


# ==================================================================================================
# Canonical records (what the readers produce)
# ==================================================================================================


@dataclass
class Estimate:
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None


@dataclass
class LexicalResult:
    """Tier 1 for one (model, lang, method).

    ``per_cue`` has canonical columns: ``cue``, ``P@5`` .. ``P@50``, ``Spearman``, and per measure
    ``{measure}_model`` / ``{measure}_human`` (per-cue medians), where upstream wrote them.
    """

    precision: dict[str, Estimate] = field(default_factory=dict)  # "P@5" -> estimate; "Spearman" too
    profile: dict[str, dict] = field(default_factory=dict)  # measure -> summary from scores.json
    per_cue: pl.DataFrame | None = None
    n_cues: int | None = None


@dataclass
class WvsResult:
    """Tier 2 for one (model, lang, method).

    ``metrics[country][group]`` maps metric -> mean over items, for country "United States" or
    "China" and group "overall", "2", "3", "4", ">=5" or "high tension"; ``items`` (per high-tension
    item) has canonical columns ``item``, ``dist_us``, ``dist_cn``.
    """

    target: str | None = None
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    n_items: dict[str, int] = field(default_factory=dict)  # group -> items averaged
    closer_cn: int | None = None
    closer_us: int | None = None
    ties: int | None = None
    tension_items: int | None = None
    items: pl.DataFrame | None = None

    def distance(self, country: str, group: str = "overall") -> float | None:
        return _number(self.metrics.get(country, {}).get(group, {}).get(DISTANCE))


@dataclass
class TrainResult:
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


@dataclass
class Results:
    models: list[str]
    languages: list[str]
    methods: list[str]
    lexical: dict[Key, LexicalResult] = field(default_factory=dict)
    wvs: dict[Key, WvsResult] = field(default_factory=dict)
    train: dict[Key, TrainResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            log.warning("report: %s", text)
            self.notes.append(text)


# ==================================================================================================
# Readers: the only code that knows the upstream file layouts (adjust here when a stage changes)
# ==================================================================================================
#
# results/lexical/{model}/{lang}/{method}/scores.json      P@k, Spearman (+ CIs), profile summary
#                                        /per_cue.parquet  one row per test cue
# results/wvs/{model}/{lang}/{method}/metrics.json         metrics vs US and China humans, overall /
#                                                          by option count / high tension; tension counts
#                                    /answers.parquet      one row per item (distances, high tension)
# results/train/{model}/{lang}/{method}/metrics.json       trainer summary
#                                      /log_history.jsonl  the trainer's log records
# Each reader's docstring names the keys it reads.


def _k_of(column: str) -> int | None:
    """k of a per-cue P@k column (``p_at_5`` -> 5)."""
    match = re.fullmatch(r"p_at_(\d+)", column)
    return int(match.group(1)) if match else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _estimate(obj: Any) -> Estimate | None:
    """A stage summary ``{mean, ci95: [lo, hi] | null, n_cues}`` (or a bare number) as an Estimate."""
    if not isinstance(obj, Mapping):
        return Estimate(_number(obj)) if _number(obj) is not None else None
    ci = obj.get("ci95")
    low, high = (_number(ci[0]), _number(ci[1])) if isinstance(ci, Sequence) and len(ci) == 2 else (None, None)
    n = obj.get("n_cues", obj.get("n"))
    return Estimate(_number(obj.get("mean")), low, high, n if isinstance(n, int) else None)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LexalignError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LexalignError(f"{path}: expected a JSON object")
    return data


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LexalignError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _canonical_per_cue(frame: pl.DataFrame) -> pl.DataFrame:
    """per_cue.parquet with ``p_at_{k}`` renamed ``P@{k}`` and ``spearman`` renamed ``Spearman``."""
    renames = {c: f"P@{_k_of(c)}" for c in frame.columns if _k_of(c) is not None}
    if "spearman" in frame.columns:
        renames["spearman"] = "Spearman"
    return frame.rename(renames)


def read_lexical(folder: Path) -> LexicalResult:
    """scores.json (required) and per_cue.parquet (optional) of one tier-1 result.

    scores.json: ``n_cues``; ``precision_at_k: {"5": {mean, ci95: [lo, hi], n_cues}, ...}``;
    ``spearman: {mean, ci95, n_cues}``; ``psycholinguistic.measures.<measure>: {model: {mean, ci95,
    coverage}, human: {...}, wilcoxon: {p_value}, ...}`` or ``{skipped: why}``. per_cue.parquet: one
    row per cue with ``cue``, ``p_at_{k}``, ``spearman``, ``<measure>_model``, ``<measure>_human``.
    """
    scores = _read_json(folder / "scores.json")
    result = LexicalResult(n_cues=scores.get("n_cues"))
    precision = scores.get("precision_at_k") or {}
    if not isinstance(precision, Mapping):
        raise LexalignError(f"{folder / 'scores.json'}: precision_at_k is not a mapping of k to scores")
    for k, value in precision.items():
        if str(k).isdigit() and (estimate := _estimate(value)) is not None and estimate.value is not None:
            result.precision[f"P@{int(k)}"] = estimate
    spearman = _estimate(scores.get("spearman"))
    if spearman is not None and spearman.value is not None:
        result.precision["Spearman"] = spearman
    measures = (scores.get("psycholinguistic") or {}).get("measures") or {}
    for measure in MEASURES:
        if isinstance(measures.get(measure), Mapping):
            result.profile[measure] = dict(measures[measure])
    per_cue = folder / "per_cue.parquet"
    if per_cue.is_file():
        result.per_cue = _canonical_per_cue(_read_parquet(per_cue))
    return result


def read_wvs(folder: Path) -> WvsResult:
    """metrics.json (required) and answers.parquet (optional) of one tier-2 result.

    metrics.json: ``target_country``; ``results.model.{us,china}.{overall, by_option_count.{2,3,4,>=5},
    high_tension}`` each ``{n, emd, emd_norm, js, ..., distance}``; ``high_tension.{n, closer_to_china,
    closer_to_us, ties, items: [{item_id, d_us, d_china}]}``. answers.parquet: one row per item with
    ``item_id``, ``high_tension``, ``distance_us``, ``distance_china``.
    """
    data = _read_json(folder / "metrics.json")
    result = WvsResult(target=data.get("target_country"))
    model = (data.get("results") or {}).get("model") or {}
    for key, country in COUNTRY_NAMES.items():
        block = model.get(key)
        if not isinstance(block, Mapping):
            continue
        groups = {"overall": block.get("overall"), **(block.get("by_option_count") or {}), "high tension": block.get("high_tension")}
        for group, values in groups.items():
            if isinstance(values, Mapping):
                result.metrics.setdefault(country, {})[group] = {k: v for k, v in values.items() if k != "n" and _number(v) is not None}
                if isinstance(values.get("n"), int):
                    result.n_items[group] = values["n"]
    tension = data.get("high_tension")
    if isinstance(tension, Mapping):
        result.closer_cn, result.closer_us = tension.get("closer_to_china"), tension.get("closer_to_us")
        result.ties, result.tension_items = tension.get("ties"), tension.get("n")
        listed = [r for r in tension.get("items") or [] if isinstance(r, Mapping)]
        if listed and {"d_us", "d_china"} <= set(listed[0]):
            result.items = pl.DataFrame(
                {"item": [str(r.get("item_id")) for r in listed], "dist_us": [_number(r["d_us"]) for r in listed], "dist_cn": [_number(r["d_china"]) for r in listed]},
                schema={"item": pl.String, "dist_us": pl.Float64, "dist_cn": pl.Float64},
            )
    answers = folder / "answers.parquet"
    if result.items is None and answers.is_file():
        frame = _read_parquet(answers)
        if {"item_id", "high_tension", "distance_us", "distance_china"} <= set(frame.columns):
            result.items = frame.filter(pl.col("high_tension")).select(
                pl.col("item_id").cast(pl.String).alias("item"), pl.col("distance_us").alias("dist_us"), pl.col("distance_china").alias("dist_cn")
            )
    if result.items is not None:
        result.items = result.items.drop_nulls()
    return result


def read_train(folder: Path) -> TrainResult:
    """metrics.json (required) and log_history.jsonl (optional) of one training run."""
    result = TrainResult(metrics=_read_json(folder / "metrics.json"))
    path = folder / "log_history.jsonl"
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    result.history.append(json.loads(line))
                except ValueError:
                    log.warning("%s:%d: not JSON, skipped", path, number)
    return result


def _key_of(path: str | os.PathLike) -> Key:
    """(model, lang, method) from ``.../{model}/{lang}/{method}/<file>``."""
    parts = Path(path).parts
    if len(parts) < 4:
        raise LexalignError(f"{path}: expected a path ending in <model>/<lang>/<method>/<file>")
    return parts[-4], parts[-3], parts[-2]


def expected_files(results_dir: str | os.PathLike, models: Sequence[str], languages: Sequence[str], methods: Sequence[str]) -> dict[str, list[str]]:
    """The result files a run grid produces (what rule ``report`` gets as input), for use without Snakemake."""
    from lexalign import methods as method_registry

    base = Path(results_dir)

    def grid(stage: str, file: str, wanted: Iterable[str]) -> list[str]:
        return [str(base / stage / m / lang / meth / file) for m in models for lang in languages for meth in wanted]

    return {
        "lexical": grid("lexical", "scores.json", [m for m in methods if m != "assoc_prompt"]),
        "wvs": grid("wvs", "metrics.json", methods),
        "train": grid("train", "metrics.json", method_registry.trained(methods)),
    }


def collect(
    models: Sequence[str],
    languages: Sequence[str],
    methods: Sequence[str],
    lexical: Iterable[str | os.PathLike] = (),
    wvs: Iterable[str | os.PathLike] = (),
    train: Iterable[str | os.PathLike] = (),
) -> Results:
    """Read every given result file (and its siblings); missing or unreadable ones become notes."""
    results = Results(list(models), list(languages), list(methods))
    stages = (("lexical", lexical, read_lexical, results.lexical), ("wvs", wvs, read_wvs, results.wvs), ("train", train, read_train, results.train))
    for stage, files, reader, store in stages:
        for file in files:
            key = _key_of(file)
            if not Path(file).is_file():
                results.note(f"{stage} {'/'.join(key)}: {file} is missing; left out")
                continue
            try:
                store[key] = reader(Path(file).parent)
            except LexalignError as exc:
                results.note(f"{stage} {'/'.join(key)}: {exc}; left out")
    return results


# ==================================================================================================
# Settings and reference numbers
# ==================================================================================================


def report_settings(settings: Mapping | None) -> dict:
    merged = {**DEFAULT_SETTINGS, **dict(settings or {})}
    merged["reference_models"] = dict(merged.get("reference_models") or {})
    merged["reference_languages"] = dict(merged.get("reference_languages") or {})
    return merged


def load_reference(path: str | os.PathLike = REFERENCE_FILE) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


class Reference:
    """The study's reported numbers, looked up by this run's (model, lang, method)."""

    def __init__(self, settings: Mapping, data: Mapping | None = None):
        self.data = data if data is not None else load_reference()
        known = list(self.data.get("models", []))
        self.models = dict(settings.get("reference_models") or {})
        for name, study in self.models.items():
            if study not in known:
                raise LexalignError(f"config report.reference_models.{name}: {study!r} is not a model the study reports (known: {', '.join(known)})")
        self.languages = dict(settings.get("reference_languages") or {})

    def study_key(self, model: str, lang: str) -> tuple[str | None, str | None]:
        study_model = self.models.get(model, model if model in self.data.get("models", []) else None)
        study_lang = self.languages.get(lang, lang if lang in ("en", "zh") else None)
        return study_model, study_lang

    def _rows(self, section: str, model: str, lang: str, method: str) -> list[dict]:
        study_model, study_lang = self.study_key(model, lang)
        if study_model is None or study_lang is None:
            return []
        return [r for r in self.data.get(section, []) if (r["model"], r["lang"], r["method"]) == (study_model, study_lang, method)]

    def lexical(self, model: str, lang: str, method: str, metric: str) -> float | None:
        return next((r["value"] for r in self._rows("lexical", model, lang, method) if r["metric"] == metric), None)

    def tension(self, model: str, lang: str, method: str) -> dict | None:
        rows = self._rows("tension", model, lang, method)
        return rows[0] if rows else None

    @property
    def active(self) -> bool:
        """Whether the config maps any model to the study's models (then reference columns always show)."""
        return bool(self.models)


# ==================================================================================================
# Statistics
# ==================================================================================================


def bootstrap_ci(values: np.ndarray, resamples: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaNs dropped)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    """Two-sided Wilcoxon signed-rank test of paired samples; (statistic, p). All-equal pairs: p = 1."""
    from scipy.stats import wilcoxon

    mask = ~(np.isnan(a) | np.isnan(b))
    a, b = a[mask], b[mask]
    if a.size == 0:
        return None, None
    if np.allclose(a, b):
        return 0.0, 1.0
    result = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None)."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    m = len(indexed)
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _seed_of(*parts: str, seed: int) -> int:
    import zlib

    return seed + zlib.crc32("/".join(parts).encode("utf-8"))


# ==================================================================================================
# Tables (each builder returns a long CSV frame and a display frame for Markdown/LaTeX)
# ==================================================================================================


def _ordered_keys(results: Results, store: Mapping[Key, Any]) -> list[Key]:
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    models = {m: i for i, m in enumerate(results.models)}
    langs = {m: i for i, m in enumerate(results.languages)}
    return sorted(store, key=lambda k: (models.get(k[0], 99), k[0], langs.get(k[1], 99), k[1], order.get(k[2], 99), k[2]))


def _method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def precision_estimates(results: Results, settings: Mapping, seed: int) -> dict[Key, dict[str, Estimate]]:
    """P@k and Spearman per result: the lexical stage's means and CIs; where scores.json lacks a value
    or its CI (e.g. lexical.bootstrap_samples: 0), computed from per_cue.parquet (percentile bootstrap)."""
    out: dict[Key, dict[str, Estimate]] = {}
    for key in _ordered_keys(results, results.lexical):
        result = results.lexical[key]
        estimates = dict(result.precision)
        frame = result.per_cue
        rng = np.random.default_rng(_seed_of(*key, seed=seed))
        for metric in [f"P@{k}" for k in K_VALUES] + ["Spearman"]:
            have = estimates.get(metric)
            if (have is not None and have.low is not None) or frame is None or metric not in frame.columns:
                continue
            values = frame[metric].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
            if values.size:
                low, high = bootstrap_ci(values, settings["bootstrap_resamples"], settings["confidence"], rng)
                estimates[metric] = Estimate(float(values.mean()), low, high, int(values.size))
        if not estimates:
            results.note(f"lexical {'/'.join(key)}: no P@k or Spearman in scores.json or per_cue.parquet; left out")
        out[key] = estimates
    return out


def precision_tables(results: Results, estimates: Mapping[Key, Mapping[str, Estimate]], reference: Reference) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Long CSV (P@k, Spearman, CI, gain over vanilla, study's reported value) and two displays."""
    rows = []
    for key, metrics in estimates.items():
        model, lang, method = key
        base = estimates.get((model, lang, "vanilla"), {})
        for metric in [f"P@{k}" for k in K_VALUES] + ["Spearman"]:
            est = metrics.get(metric)
            if est is None or est.value is None:
                continue
            ref = base.get(metric)
            gain = None if ref is None or ref.value is None or method == "vanilla" else est.value - ref.value
            rows.append({
                "model": model, "language": lang, "method": method, "metric": metric,
                "value": est.value, "ci_low": est.low, "ci_high": est.high, "n_cues": est.n,
                "gain_points": None if gain is None else 100 * gain,
                "gain_percent": None if gain is None or not ref.value else 100 * gain / ref.value,
                "reported_by_the_study": reference.lexical(model, lang, method, metric),
            })  # fmt: skip
    schema = {
        "model": pl.String, "language": pl.String, "method": pl.String, "metric": pl.String, "value": pl.Float64,
        "ci_low": pl.Float64, "ci_high": pl.Float64, "n_cues": pl.Int64, "gain_points": pl.Float64,
        "gain_percent": pl.Float64, "reported_by_the_study": pl.Float64,
    }  # fmt: skip
    long = pl.DataFrame(rows, schema=schema)
    metrics = [m for m in [f"P@{k}" for k in K_VALUES] + ["Spearman"] if m in set(long["metric"].to_list())]
    display_rows, gain_rows = [], []
    for key in estimates:
        part = long.filter((pl.col("model") == key[0]) & (pl.col("language") == key[1]) & (pl.col("method") == key[2]))
        if part.is_empty():
            continue
        by_metric = {r["metric"]: r for r in part.iter_rows(named=True)}
        row = {"model": key[0], "language": key[1], "method": _method_label(key[2])}
        gains = dict(row)
        for metric in metrics:
            r = by_metric.get(metric)
            row[f"{metric} [95% CI]"] = _fmt_ci(r["value"], r["ci_low"], r["ci_high"]) if r else "—"
            gains[f"Δ{metric} pts (%)"] = _fmt_gain(r["gain_points"], r["gain_percent"]) if r and key[2] != "vanilla" else "—"
        n = next((r["n_cues"] for r in by_metric.values() if r["n_cues"] is not None), None)
        row["cues"] = str(n) if n is not None else "—"
        if reference.active or any(r["reported_by_the_study"] is not None for r in by_metric.values()):
            reported = by_metric.get("P@5", {}).get("reported_by_the_study") if "P@5" in by_metric else None
            row[f"P@5 {REPORTED}"] = _fmt(reported) if reported is not None else "—"
        display_rows.append(row)
        if key[2] != "vanilla":
            gain_rows.append(gains)
    return long, _frame(display_rows), _frame(gain_rows)


def _profile_row(result: LexicalResult, measure: str) -> dict | None:
    """One measure of the profile: the stage's summary, or computed from per-cue medians."""
    summary = result.profile.get(measure) or {}
    if "skipped" in summary:
        return None
    model, human = summary.get("model") or {}, summary.get("human") or {}
    row = {
        "model_median": _number(model.get("mean")), "human_median": _number(human.get("mean")),
        "model_coverage": _number(model.get("coverage")), "human_coverage": _number(human.get("coverage")),
        "n_cues": (summary.get("wilcoxon") or {}).get("n_pairs"), "wilcoxon_p": _number((summary.get("wilcoxon") or {}).get("p_value")),
    }  # fmt: skip
    frame, model_col, human_col = result.per_cue, f"{measure}_model", f"{measure}_human"
    if row["model_median"] is None and frame is not None and {model_col, human_col} <= set(frame.columns):
        m = frame[model_col].cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
        h = frame[human_col].cast(pl.Float64).fill_nan(None).to_numpy().astype(float)
        both = ~(np.isnan(m) | np.isnan(h))
        if both.any():
            row.update(model_median=float(np.nanmean(m)), human_median=float(np.nanmean(h)), n_cues=int(both.sum()),
                       wilcoxon_p=wilcoxon_p(m[both], h[both])[1])  # fmt: skip
    if row["model_median"] is None and row["human_median"] is None:
        return None
    return row


def profile_table(results: Results) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Concreteness, valence, arousal: model vs human (mean of per-cue medians), coverage, Wilcoxon p."""
    rows = []
    for key in _ordered_keys(results, results.lexical):
        for measure in MEASURES:
            row = _profile_row(results.lexical[key], measure)
            if row is None:
                continue
            difference = None if row["model_median"] is None or row["human_median"] is None else row["model_median"] - row["human_median"]
            rows.append({"model": key[0], "language": key[1], "method": key[2], "measure": measure, **row, "difference": difference, "test": PROFILE_TEST})
    schema = {
        "model": pl.String, "language": pl.String, "method": pl.String, "measure": pl.String, "model_median": pl.Float64,
        "human_median": pl.Float64, "difference": pl.Float64, "model_coverage": pl.Float64, "human_coverage": pl.Float64,
        "n_cues": pl.Int64, "wilcoxon_p": pl.Float64, "test": pl.String,
    }  # fmt: skip
    long = pl.DataFrame([{c: r[c] for c in schema} for r in rows], schema=schema)
    display = _frame([
        {
            "model": r["model"], "language": r["language"], "method": _method_label(r["method"]), "measure": r["measure"],
            "model median": _fmt(r["model_median"], 2), "human median": _fmt(r["human_median"], 2),
            "Δ": _fmt_signed(r["difference"], 2), "coverage model / human": f"{_pct(r['model_coverage'])} / {_pct(r['human_coverage'])}",
            "cues": _fmt_int(r["n_cues"]), "Wilcoxon p": _fmt_p(r["wilcoxon_p"]),
        }
        for r in long.iter_rows(named=True)
    ])  # fmt: skip
    return long, display


def paired_tests_table(results: Results, settings: Mapping, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every pair of methods of one (model, lang) on the same cues: paired bootstrap CI and Wilcoxon p on P@5."""
    rows = []
    by_pair: dict[tuple[str, str], list[Key]] = {}
    for key in _ordered_keys(results, results.lexical):
        frame = results.lexical[key].per_cue
        if frame is not None and PAIRED_METRIC in frame.columns and "cue" in frame.columns:
            by_pair.setdefault(key[:2], []).append(key)
    for (model, lang), keys in by_pair.items():
        start = len(rows)
        for i, key_b in enumerate(keys):
            for key_a in keys[i + 1 :]:
                a = results.lexical[key_a].per_cue.select("cue", pl.col(PAIRED_METRIC).cast(pl.Float64).alias("a"))
                b = results.lexical[key_b].per_cue.select("cue", pl.col(PAIRED_METRIC).cast(pl.Float64).alias("b"))
                joined = a.join(b, on="cue", how="inner").drop_nulls()
                if joined.is_empty():
                    continue
                va, vb = joined["a"].to_numpy(), joined["b"].to_numpy()
                diff = va - vb
                rng = np.random.default_rng(_seed_of(model, lang, key_a[2], key_b[2], seed=seed))
                low, high = bootstrap_ci(diff, settings["bootstrap_resamples"], settings["confidence"], rng)
                statistic, p = wilcoxon_p(va, vb)
                rows.append({
                    "model": model, "language": lang, "method": key_a[2], "baseline": key_b[2], "metric": PAIRED_METRIC,
                    "n_cues": int(joined.height), "mean_method": float(va.mean()), "mean_baseline": float(vb.mean()),
                    "difference": float(diff.mean()), "ci_low": low, "ci_high": high, "ci": "paired bootstrap over cues (percentile)",
                    "test": PAIRED_TEST, "statistic": statistic, "p_value": p, "p_holm": None,
                })  # fmt: skip
        for row, adjusted in zip(rows[start:], holm([r["p_value"] for r in rows[start:]])):
            row["p_holm"] = adjusted
    schema = {
        "model": pl.String, "language": pl.String, "method": pl.String, "baseline": pl.String, "metric": pl.String,
        "n_cues": pl.Int64, "mean_method": pl.Float64, "mean_baseline": pl.Float64, "difference": pl.Float64,
        "ci_low": pl.Float64, "ci_high": pl.Float64, "ci": pl.String, "test": pl.String, "statistic": pl.Float64,
        "p_value": pl.Float64, "p_holm": pl.Float64,
    }  # fmt: skip
    long = pl.DataFrame(rows, schema=schema)
    display = _frame([
        {
            "model": r["model"], "language": r["language"], "comparison": f"{_method_label(r['method'])} − {_method_label(r['baseline'])}",
            "cues": str(r["n_cues"]), "ΔP@5 [95% CI]": _fmt_ci(r["difference"], r["ci_low"], r["ci_high"], signed=True),
            "test": "Wilcoxon signed-rank", "p": _fmt_p(r["p_value"]), "p (Holm)": _fmt_p(r["p_holm"]),
        }
        for r in long.iter_rows(named=True)
    ])  # fmt: skip
    return long, display


def _metric_sort_key(name: str) -> tuple[int, str]:
    return (WVS_METRICS.index(name) if name in WVS_METRICS else len(WVS_METRICS), name)


def _short_country(country: str | None) -> str:
    return {"United States": "US", "China": "China"}.get(country or "", country or "—")


def wvs_tables(results: Results, reference: Reference) -> dict[str, tuple]:
    """wvs_metrics (vs US and vs China humans, overall / by option count / high tension),
    wvs_distance (tension distance to US and to China), tension (high-tension items closer to CN / US)."""
    metric_rows, distance_rows, tension_rows = [], [], []
    ref_cn, ref_us = f"closer_to_china_{REPORTED_COLUMN}", f"closer_to_us_{REPORTED_COLUMN}"
    for key in _ordered_keys(results, results.wvs):
        model, lang, method = key
        result = results.wvs[key]
        for country in COUNTRY_NAMES.values():
            for group in ("overall", *OPTION_GROUPS, "high tension"):
                values = result.metrics.get(country, {}).get(group, {})
                for metric in sorted(values, key=_metric_sort_key):
                    metric_rows.append({"model": model, "language": lang, "method": method, "humans": country, "target": country == result.target,
                                        "options": group, "metric": metric, "value": _number(values[metric]), "n_items": result.n_items.get(group)})  # fmt: skip
        us, cn = result.distance("United States"), result.distance("China")
        if us is not None or cn is not None:
            closer = None if us is None or cn is None else "China" if cn < us else "United States" if us < cn else "tie"
            distance_rows.append({"model": model, "language": lang, "method": method, "distance_to_us": us, "distance_to_china": cn, "closer_to": closer,
                                  "distance_to_us_high_tension": result.distance("United States", "high tension"),
                                  "distance_to_china_high_tension": result.distance("China", "high tension"), "n_items": result.n_items.get("overall")})  # fmt: skip
        closer_cn, closer_us, ties, n_items = result.closer_cn, result.closer_us, result.ties, result.tension_items
        if (closer_cn is None or closer_us is None) and result.items is not None:
            closer_cn = int((result.items["dist_cn"] < result.items["dist_us"]).sum())
            closer_us = int((result.items["dist_us"] < result.items["dist_cn"]).sum())
            ties, n_items = result.items.height - closer_cn - closer_us, result.items.height
        if closer_cn is not None or closer_us is not None:
            ref = reference.tension(model, lang, method) or {}
            tension_rows.append({"model": model, "language": lang, "method": method, "closer_to_china": closer_cn, "closer_to_us": closer_us,
                                 "ties": ties, "high_tension_items": n_items, ref_cn: ref.get("closer_to_china"), ref_us: ref.get("closer_to_us")})  # fmt: skip
    metrics_long = pl.DataFrame(metric_rows, schema={"model": pl.String, "language": pl.String, "method": pl.String, "humans": pl.String, "target": pl.Boolean,
                                                     "options": pl.String, "metric": pl.String, "value": pl.Float64, "n_items": pl.Int64})  # fmt: skip
    metric_names = sorted(set(metrics_long["metric"].to_list()), key=_metric_sort_key)
    metrics_display = []
    for (model, lang, method, humans, target, group), part in _groups(metrics_long, ["model", "language", "method", "humans", "target", "options"]):
        values = dict(zip(part["metric"].to_list(), part["value"].to_list()))
        metrics_display.append({"model": model, "language": lang, "method": _method_label(method),
                                "vs humans": _short_country(humans) + (" (target)" if target else ""), "options": group,
                                "items": _fmt_int(part["n_items"][0]), **{m: _fmt(values.get(m)) for m in metric_names}})  # fmt: skip
    distance_schema = {"model": pl.String, "language": pl.String, "method": pl.String, "distance_to_us": pl.Float64, "distance_to_china": pl.Float64,
                       "closer_to": pl.String, "distance_to_us_high_tension": pl.Float64, "distance_to_china_high_tension": pl.Float64, "n_items": pl.Int64}  # fmt: skip
    distance_long = pl.DataFrame(distance_rows, schema=distance_schema)
    distance_display = _frame([{"model": r["model"], "language": r["language"], "method": _method_label(r["method"]),
                                "to US (all items)": _fmt(r["distance_to_us"]), "to China (all items)": _fmt(r["distance_to_china"]),
                                "closer to": _short_country(r["closer_to"]) if r["closer_to"] else "—",
                                "to US (high tension)": _fmt(r["distance_to_us_high_tension"]), "to China (high tension)": _fmt(r["distance_to_china_high_tension"]),
                                "items": _fmt_int(r["n_items"])} for r in distance_long.iter_rows(named=True)])  # fmt: skip
    tension_long = pl.DataFrame(tension_rows, schema={"model": pl.String, "language": pl.String, "method": pl.String, "closer_to_china": pl.Int64,
                                                      "closer_to_us": pl.Int64, "ties": pl.Int64, "high_tension_items": pl.Int64, ref_cn: pl.Int64, ref_us: pl.Int64})  # fmt: skip
    show_ref = reference.active or bool(tension_long.height and (tension_long[ref_cn].is_not_null().any() or tension_long[ref_us].is_not_null().any()))
    tension_display = []
    for r in tension_long.iter_rows(named=True):
        n = r["high_tension_items"]
        row = {"model": r["model"], "language": r["language"], "method": _method_label(r["method"]),
               "closer to China": _out_of(r["closer_to_china"], n), "closer to US": _out_of(r["closer_to_us"], n), "ties": _fmt_int(r["ties"])}  # fmt: skip
        if show_ref:
            row[f"closer to China, {REPORTED}"] = _out_of(r[ref_cn], 50)
            row[f"closer to US, {REPORTED}"] = _out_of(r[ref_us], 50)
        tension_display.append(row)
    target_rows = [r for r in metrics_display if r["vs humans"].endswith("(target)")]
    brief = (_frame(target_rows), "Rows against the target country's respondents only; the CSV and Markdown files also compare with the other country.")
    return {
        "wvs_metrics_brief": brief,
        "wvs_metrics": (metrics_long, _frame(metrics_display)),
        "wvs_distance": (distance_long, distance_display),
        "tension": (tension_long, _frame(tension_display)),
    }


def _curve_value(curve: Any, which: str) -> float | None:
    """train.py summarises a logged series as {first, last, min, max, mean, ...}."""
    return _number(curve.get(which)) if isinstance(curve, Mapping) else None


def training_table(results: Results) -> tuple[pl.DataFrame, pl.DataFrame]:
    """From train.py's metrics.json: global_step, epochs, train_loss / reward curves, eval_loss, runtime_s, device."""
    rows = []
    for key in _ordered_keys(results, results.train):
        m = results.train[key].metrics
        rows.append({
            "model": key[0], "language": key[1], "method": key[2],
            "steps": m.get("global_step"), "epochs": _number(m.get("epochs")),
            "train_loss_first": _curve_value(m.get("train_loss"), "first"), "train_loss_last": _curve_value(m.get("train_loss"), "last"),
            "eval_loss": _number(m.get("eval_loss")),
            "reward_first": _curve_value(m.get("reward"), "first"), "reward_last": _curve_value(m.get("reward"), "last"),
            "runtime_s": _number(m.get("runtime_s", m.get("wall_s"))), "device": m.get("device"),
        })  # fmt: skip
    long = pl.DataFrame(rows, schema={"model": pl.String, "language": pl.String, "method": pl.String, "steps": pl.Int64, "epochs": pl.Float64,
                                      "train_loss_first": pl.Float64, "train_loss_last": pl.Float64, "eval_loss": pl.Float64,
                                      "reward_first": pl.Float64, "reward_last": pl.Float64, "runtime_s": pl.Float64, "device": pl.String})  # fmt: skip
    display = _frame([{
        "model": r["model"], "language": r["language"], "method": _method_label(r["method"]), "steps": _fmt_int(r["steps"]),
        "train loss first → last": _arrow(r["train_loss_first"], r["train_loss_last"]), "eval loss": _fmt(r["eval_loss"]),
        "reward first → last": _arrow(r["reward_first"], r["reward_last"]), "runtime (s)": _fmt(r["runtime_s"], 0), "device": r["device"] or "—",
    } for r in long.iter_rows(named=True)])  # fmt: skip
    return long, display


# ==================================================================================================
# Formatting and writing tables
# ==================================================================================================


def _frame(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    columns = list(dict.fromkeys(c for row in rows for c in row))
    return pl.DataFrame({c: [str(row.get(c, "—")) for row in rows] for c in columns})


def _groups(frame: pl.DataFrame, by: list[str]):
    if frame.is_empty():
        return []
    keys = frame.select(by).unique(maintain_order=True).iter_rows()
    return [(key, frame.filter(pl.all_horizontal([pl.col(c) == v for c, v in zip(by, key)]))) for key in keys]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _fmt_signed(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.{digits}f}"


def _fmt_int(value: Any) -> str:
    return "—" if value is None else str(int(value))


def _fmt_ci(value, low, high, signed: bool = False) -> str:
    main = _fmt_signed(value) if signed else _fmt(value)
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return main
    return f"{main} [{_fmt(low)}, {_fmt(high)}]"


def _fmt_gain(points, percent) -> str:
    if points is None:
        return "—"
    return f"{points:+.1f} ({percent:+.1f}%)" if percent is not None else f"{points:+.1f}"


def _fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _out_of(value, n) -> str:
    if value is None:
        return "—"
    return f"{value} / {n}" if n is not None else str(value)


def _arrow(first, last) -> str:
    if first is None and last is None:
        return "—"
    return f"{_fmt(first)} → {_fmt(last)}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "_No results._\n"
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *body]) + "\n"


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "Δ": r"$\Delta$", "−": "$-$", "→": r"$\to$", "≥": r"$\geq$",
               "—": "---", "<": r"\textless{}", ">": r"\textgreater{}"}  # fmt: skip


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in str(text))


def to_latex(frame: pl.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); CJK text needs xeCJK or CJKutf8."""
    if frame.is_empty():
        return f"% {caption}: no results\n"
    spec = "l" * min(3, len(frame.columns)) + "r" * max(0, len(frame.columns) - 3)
    lines = [
        "\\begin{table}[ht]", "\\centering", "\\small", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
        " & ".join(_tex(c) for c in frame.columns) + " \\\\", "\\midrule",
        *(" & ".join(_tex(v) for v in row) + " \\\\" for row in frame.iter_rows()),
        "\\bottomrule", "\\end{tabular}", f"\\caption{{{_tex(caption)}}}", f"\\label{{tab:{label}}}", "\\end{table}",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


@dataclass
class Table:
    name: str
    title: str
    description: str
    long: pl.DataFrame
    display: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    #: A shorter display for index.md (the files keep every row), with a line saying what was cut.
    brief: tuple[pl.DataFrame, str] | None = None

    def markdown(self, heading: str = "###", brief: bool = False) -> str:
        display, cut = self.brief if brief and self.brief is not None else (self.display, None)
        parts = [f"{heading} {self.title}\n", f"{self.description}\n", to_markdown(display)]
        if cut:
            parts.append(f"\n_{cut}_\n")
        if self.notes:
            parts.append("\n" + "\n".join(f"> Note: {n}" for n in self.notes) + "\n")
        return "\n".join(parts)

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.long.write_csv(folder / f"{self.name}.csv")
        (folder / f"{self.name}.md").write_text(self.markdown("#"), encoding="utf-8")
        (folder / f"{self.name}.tex").write_text(to_latex(self.display, f"{self.title}. {self.description}", self.name), encoding="utf-8")


# ==================================================================================================
# The report
# ==================================================================================================


def _missing_grid_notes(results: Results) -> None:
    """Notes for what the tables cannot show because a baseline is absent."""
    if "vanilla" not in results.methods and results.lexical:
        results.note("lexical: vanilla is not in run.methods, so gains over vanilla are left out")
        return
    for model in results.models:
        for lang in results.languages:
            have = {k[2] for k in results.lexical if k[:2] == (model, lang)}
            if have and "vanilla" not in have:
                results.note(f"lexical {model}/{lang}: the vanilla result is missing, so gains over vanilla are left out")


def build_tables(results: Results, estimates: Mapping[Key, Mapping[str, Estimate]], settings: Mapping, seed: int) -> dict[str, list[Table]]:
    reference = Reference(settings)
    level = f"{round(100 * settings['confidence'])}%"
    precision_long, precision_display, gains_display = precision_tables(results, estimates, reference)
    profile_long, profile_display = profile_table(results)
    paired_long, paired_display = paired_tests_table(results, settings, seed)
    wvs = wvs_tables(results, reference)
    training_long, training_display = training_table(results)
    boot = "percentile bootstrap over cues, from the lexical stage (computed here from per_cue.parquet where scores.json has none)"
    ref_note = f"Columns marked '{REPORTED}' are the study's published numbers (resources/reference_numbers.yaml), not measured here."
    tables = {
        "tier1": [
            Table("precision", "Tier 1: P@k and rank agreement",
                  f"Mean over test cues of P@k (share of the first k generated words that humans gave for the cue) and of the Spearman rank agreement (cues with ≥2 overlapping words); {level} CI: {boot}. {ref_note}",
                  precision_long, precision_display),
            Table("gains", "Tier 1: gain over vanilla",
                  "Difference from the vanilla model of the same (model, language): percentage points (100 × difference) and percent of the vanilla value.",
                  precision_long.select("model", "language", "method", "metric", "value", "gain_points", "gain_percent"), gains_display),
            Table("profile", "Tier 1: psycholinguistic profile",
                  f"Concreteness (1–5), valence and arousal (1–9) of the first 10 model words vs the human top 10 per cue: mean over cues of the per-cue medians, word coverage by the norms; p: {PROFILE_TEST}.",
                  profile_long, profile_display),
            Table("paired_tests", "Tier 1: paired significance between methods",
                  f"Per-cue P@5 of two methods on the same test cues: mean difference with its {level} paired bootstrap CI; p: {PAIRED_TEST}; Holm-adjusted over the comparisons of one (model, language).",
                  paired_long, paired_display),
        ],  # fmt: skip
        "tier2": [
            Table("wvs_metrics", "Tier 2: WVS answer-distribution metrics",
                  "Per-item metrics between the model's answer distribution and that of US and of China respondents (target: the language's own country), "
                  "averaged over all items, by number of answer options and over the high-tension items. emd over option positions, emd_norm = emd/(N-1), "
                  "js = Jensen-Shannon distance, kl both ways, cosine similarity, acc = argmax matches the human majority, distance = 0.5 js + 0.5 emd_norm.",
                  *wvs["wvs_metrics"], brief=wvs["wvs_metrics_brief"]),
            Table("wvs_distance", "Tier 2: distance to US and China humans",
                  "Mean tension distance (0.5 JS + 0.5 EMD/(N-1), the wvs stage's 'distance') between the model's answer distributions and those of US and of Chinese respondents, over all items and over the high-tension items.",
                  *wvs["wvs_distance"]),
            Table("tension", "Tier 2: high-tension items",
                  f"Of the high-tension items (where US and China humans differ most), how many the model answers closer to China / closer to the US. {ref_note}",
                  *wvs["tension"]),
        ],  # fmt: skip
        "training": [
            Table("training", "Training runs", "From each trainer's metrics.json: steps, loss (first → last logged), eval loss, reward (RL), runtime.",
                  training_long, training_display),
        ],  # fmt: skip
    }
    if not results.lexical:
        tables["tier1"][0].notes.append("no tier-1 results")
    if precision_long.filter(pl.col("gain_points").is_not_null()).is_empty() and results.lexical:
        tables["tier1"][1].notes.append("no (model, language) has both vanilla and another method, so there are no gains to show")
    if results.lexical and paired_long.is_empty():
        tables["tier1"][3].notes.append("needs per_cue.parquet with P@5 for at least two methods of one (model, language)")
    skipped = {}
    for (model, lang, method), result in results.lexical.items():
        for measure, summary in result.profile.items():
            if "skipped" in summary:
                skipped.setdefault((lang, str(summary["skipped"])), []).append(measure)
    for (lang, why), measures in skipped.items():
        tables["tier1"][2].notes.append(f"{lang}: {', '.join(dict.fromkeys(measures))} not profiled: {why}")
    if results.lexical and profile_long.is_empty() and not skipped:
        tables["tier1"][2].notes.append("no psycholinguistic profile in the tier-1 results")
    if results.wvs and wvs["tension"][0].is_empty():
        tables["tier2"][2].notes.append("no high-tension counts or per-item distances in the tier-2 results")
    for notes_of, stage in ((tables["tier1"], "lexical"), (tables["tier2"], "wvs"), (tables["training"], "train")):
        left_out = [n for n in results.notes if n.startswith(stage + " ")]
        for table in notes_of:
            table.notes.extend(left_out)
    return tables


def _figure_inputs(results: Results, estimates: Mapping[Key, Mapping[str, Estimate]]):
    """Data for each figure, from the canonical records."""
    precision: dict[str, dict[str, dict[str, list[Estimate | None]]]] = {}
    for (model, lang, method), metrics in estimates.items():
        series = [metrics.get(f"P@{k}") for k in K_VALUES]
        if any(e is not None and e.value is not None for e in series):
            precision.setdefault(lang, {}).setdefault(model, {})[method] = series
    profile: dict[str, dict[str, Any]] = {}
    for (model, lang, method), result in results.lexical.items():
        frame = result.per_cue
        if frame is None:
            continue
        cols = [m for m in MEASURES if f"{m}_model" in frame.columns]
        if not cols:
            continue
        entry = profile.setdefault(lang, {"human": {}, "models": {}})
        for measure in cols:
            values = frame[f"{measure}_model"].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
            entry["models"].setdefault(f"{model}\n{_method_label(method)}", {})[measure] = values
            if f"{measure}_human" in frame.columns and measure not in entry["human"]:
                entry["human"][measure] = frame[f"{measure}_human"].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    tension: dict[tuple[str, str], dict[str, pl.DataFrame]] = {}
    for (model, lang, method), result in results.wvs.items():
        if result.items is not None and result.items.height:
            tension.setdefault((model, lang), {})[method] = result.items
    training: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for (model, lang, method), result in results.train.items():
        if result.history:
            training.setdefault((model, lang), {})[method] = result.history
    return precision, profile, tension, training


def _sort_methods(mapping: Mapping[str, Any]) -> dict[str, Any]:
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return {k: mapping[k] for k in sorted(mapping, key=lambda m: (order.get(m, 99), m))}


def build_figures(results: Results, estimates, out: Path, settings: Mapping) -> dict[str, list[Path]]:
    from lexalign import figures

    figures.configure_fonts(settings.get("cjk_fonts") or (), force=True)
    save = {"dpi": int(settings["dpi"]), "formats": list(settings["figure_formats"])}
    precision, profile, tension, training = _figure_inputs(results, estimates)
    made: dict[str, list[Path]] = {name: [] for name in ("fig_precision", "fig_profile", "fig_tension", "fig_training")}
    for name in made:
        (out / LAYOUT[name]).mkdir(parents=True, exist_ok=True)
    for lang in [x for x in results.languages if x in precision] + [x for x in precision if x not in results.languages]:
        models = {m: _sort_methods(precision[lang][m]) for m in results.models if m in precision[lang]}
        made["fig_precision"].append(figures.precision_at_k(lang, K_VALUES, models, out / LAYOUT["fig_precision"] / lang, **save))
    for lang, entry in profile.items():
        made["fig_profile"].append(figures.profile(lang, entry["human"], entry["models"], MEASURES, out / LAYOUT["fig_profile"] / lang, **save))
    for (model, lang), panels in tension.items():
        made["fig_tension"].append(figures.tension(model, lang, _sort_methods(panels), out / LAYOUT["fig_tension"] / f"{model}.{lang}", **save))
    for (model, lang), histories in training.items():
        made["fig_training"].append(figures.training_curves(model, lang, _sort_methods(histories), out / LAYOUT["fig_training"] / f"{model}.{lang}", **save))
    if results.lexical and not precision:
        results.note("figures: no P@k values, so no P@k curves")
    if results.lexical and not profile:
        results.note("figures: no per-cue concreteness/valence/arousal in per_cue.parquet, so no profile plots")
    if results.wvs and not tension:
        results.note("figures: no per-item distances to US and China (metrics.json high_tension.items or answers.parquet), so no tension scatter")
    if results.train and not training:
        results.note("figures: no trainer log history (log_history.jsonl), so no training curves")
    return made


FIGURE_TEXT = {
    "fig_precision": ("P@k curves", "P@k for k = 5..50, one line per method, shaded band = 95% bootstrap CI over cues."),
    "fig_profile": ("Psycholinguistic profile", "Per-cue medians of concreteness, valence and arousal: humans vs each model and method."),
    "fig_tension": ("Tension scatter", "High-tension WVS items: distance to US humans (x) vs distance to China humans (y); points below the diagonal are closer to China. Colour = bias (distance to China − distance to US)."),
    "fig_training": ("Training curves", "Loss (train and eval) and reward per logged step, from each trainer's log history."),
}  # fmt: skip


def write_index(path: Path, results: Results, tables: Mapping[str, list[Table]], figures_made: Mapping[str, list[Path]], config: Mapping | None) -> None:
    out = path.parent
    lines = [
        "# lexalign report",
        "",
        "Reproduction of the ALIGN study: language models fine-tuned on word-association norms, evaluated on",
        "lexical alignment with human associations (tier 1) and on World Values Survey answer distributions (tier 2).",
        "",
        f"- models: {', '.join(results.models)}",
        f"- languages: {', '.join(results.languages)}",
        f"- methods: {', '.join(results.methods)}",
        f"- results read: {len(results.lexical)} tier-1, {len(results.wvs)} tier-2, {len(results.train)} training",
        "",
    ]
    if results.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in results.notes), ""]
    sections = (("tier1", "Tier 1: lexical alignment"), ("tier2", "Tier 2: World Values Survey"), ("training", "Training"))
    for group, heading in sections:
        lines += [f"## {heading}", ""]
        for table in tables[group]:
            rel = Path(LAYOUT[group]) / table.name
            lines += [table.markdown("###", brief=True), f"Files: [CSV]({rel}.csv) · [Markdown]({rel}.md) · [LaTeX]({rel}.tex)", ""]
    lines += ["## Figures", ""]
    for name, (title, text) in FIGURE_TEXT.items():
        lines += [f"### {title}", "", text, ""]
        paths = figures_made.get(name, [])
        if not paths:
            lines += ["_No figure: the results it needs are absent (see Notes)._", ""]
        for png in paths:
            rel = png.relative_to(out)
            others = " · ".join(f"[{p.suffix[1:].upper()}]({p.relative_to(out)})" for p in sorted(png.parent.glob(png.stem + ".*")) if p != png)
            lines += [f"![{title}: {png.stem}]({rel})", others, ""]
    if config is not None:
        lines += ["## Configuration of this run", "", "```yaml", yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True).rstrip(), "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _plain(value: Any) -> Any:
    """Snakemake config objects as plain dicts/lists for YAML."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_report(
    results: Results,
    index_path: str | os.PathLike,
    settings: Mapping | None = None,
    seed: int = 42,
    config: Mapping | None = None,
) -> Path:
    """Write index.md, tables/ and figures/ next to ``index_path``; returns the index path.

    Everything is built in a temporary directory beside the outputs and moved into place only when
    all of it worked, so a failure leaves no half-written report.
    """
    import tempfile

    settings = report_settings(settings)
    index_path = Path(index_path)
    out = index_path.parent
    out.mkdir(parents=True, exist_ok=True)
    _missing_grid_notes(results)
    tmp = Path(tempfile.mkdtemp(prefix=".report-build.", dir=out))
    try:
        estimates = precision_estimates(results, settings, seed)
        tables = build_tables(results, estimates, settings, seed)
        for group, group_tables in tables.items():
            for table in group_tables:
                table.write(tmp / LAYOUT[group])
        made = build_figures(results, estimates, tmp, settings)
        write_index(tmp / index_path.name, results, tables, made, config)
        for relative in LAYOUT.values():
            (tmp / relative).mkdir(parents=True, exist_ok=True)
        for top in sorted({Path(p).parts[0] for p in LAYOUT.values()}):
            if (out / top).exists():
                shutil.rmtree(out / top)
            os.replace(tmp / top, out / top)
        os.replace(tmp / index_path.name, index_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("report: %s (%d notes)", index_path, len(results.notes))
    return index_path


def report(
    index_out: str | os.PathLike,
    lexical: Iterable[str | os.PathLike],
    wvs: Iterable[str | os.PathLike],
    train: Iterable[str | os.PathLike],
    grid: Mapping[str, Sequence[str]],
    settings: Mapping | None = None,
    seed: int = 42,
    config: Mapping | None = None,
) -> Path:
    """Rule ``report``: read the run grid's result files (``grid``: models, languages, methods) and
    write index.md, tables/ and figures/ beside ``index_out``."""
    def files(value) -> list:  # Snakemake gives a lone named input as a plain string
        return [value] if isinstance(value, (str, os.PathLike)) else list(value or [])

    results = collect(grid["models"], grid["languages"], grid["methods"], lexical=files(lexical), wvs=files(wvs), train=files(train))
    return build_report(results, index_out, settings=settings, seed=seed, config=config)


def main(argv: list[str] | None = None) -> int:
    """``python -m lexalign.aggregate``: build the report from whatever results exist (e.g. after some
    jobs failed), without Snakemake; missing results are left out with a note."""
    import argparse
    import sys

    from lexalign.config import load_config
    from lexalign.snake import setup_logging

    parser = argparse.ArgumentParser(prog="python -m lexalign.aggregate", description=main.__doc__)
    parser.add_argument("--config", default="config/config.yaml", help="workflow config (its run grid and report settings)")
    parser.add_argument("--schema", default="config/schema.yaml")
    parser.add_argument("--results", default="results", help="results directory of the run")
    parser.add_argument("--out", default=None, help="report directory (default: <results>/report)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config, args.schema)
        run = config["run"]
        files = expected_files(args.results, run["models"], run["languages"], run["methods"])
        out = Path(args.out) if args.out else Path(args.results) / "report"
        index = report(out / "index.md", **files, grid=run, settings=config.get("report"), seed=config.get("seed", 42), config=config)
    except LexalignError as exc:
        print(f"lexalign error: {exc}", file=sys.stderr)
        return 1
    print(index)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
