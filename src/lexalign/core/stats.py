"""Statistics shared by every stage: bootstrap CIs, paired tests, multiple-comparison correction.

One implementation each; tier 1, tier 2, the psycholinguistic profile and the report call these.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import numpy as np

#: The CI level every stage writes unless told otherwise.
CONFIDENCE = 0.95


def clean(values: Iterable[float | None]) -> np.ndarray:
    """``values`` as a float array without None and NaN."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    return data[~np.isnan(data)]


def mean(values: Iterable[float | None]) -> float | None:
    data = clean(values)
    return float(data.mean()) if data.size else None


def bootstrap_ci(
    values: Iterable[float | None], resamples: int, seed: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean (None/NaN dropped); None without data or resamples.

    ``scipy.stats.bootstrap`` with the percentile method: it never fails on constant data, unlike BCa.
    """
    data = clean(values)
    if data.size == 0 or resamples < 1:
        return None
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    from scipy import stats as scipy_stats  # here, not at import: the DAG parse imports this module

    result = scipy_stats.bootstrap(
        (data,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=max(1, 2_000_000 // data.size),  # bound the resample matrix's memory
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(
    values: Iterable[float | None], resamples: int, seed: int, confidence: float = CONFIDENCE, digits: int = 6
) -> dict:
    """Mean, bootstrap CI and count of ``values`` (None/NaN dropped), rounded for a results file."""
    data = clean(values)
    ci = bootstrap_ci(data, resamples, seed, confidence)
    return {
        "mean": round_or_none(data.mean() if data.size else None, digits),
        "ci": None if ci is None else [round_or_none(ci[0], digits), round_or_none(ci[1], digits)],
        "confidence": confidence,
        "n": int(data.size),
    }


def wilcoxon(
    a: Sequence[float | None], b: Sequence[float | None], alternative: str = "two-sided", min_pairs: int = 2
) -> dict:
    """Paired Wilcoxon signed-rank test of ``a`` against ``b`` (pairs with a missing side dropped).

    Returns ``{"n_pairs", "statistic", "p_value", "alternative", "note"}``; statistic and p are None
    with a note when there are fewer than ``min_pairs`` pairs or every difference is zero.
    """
    pairs = [(x, y) for x, y in zip(a, b) if _present(x) and _present(y)]
    result: dict = {"n_pairs": len(pairs), "statistic": None, "p_value": None, "alternative": alternative, "note": None}
    if len(pairs) < min_pairs:
        result["note"] = f"fewer than {min_pairs} pairs"
    elif all(x == y for x, y in pairs):
        result["note"] = "every pair is equal"
    else:
        from scipy import stats as scipy_stats

        test = scipy_stats.wilcoxon([x for x, _ in pairs], [y for _, y in pairs], alternative=alternative)
        result["statistic"] = float(test.statistic)
        result["p_value"] = round_or_none(test.pvalue, 6)
    return result


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None); scipy has Benjamini-Hochberg only."""
    present = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    order = sorted(present, key=lambda item: item[1])
    running = 0.0
    for rank, (i, p) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def derived_seed(seed: int, *parts: str) -> int:
    """A seed for one named sub-computation, stable across processes (not Python's salted hash)."""
    return (seed + zlib.crc32("/".join(parts).encode("utf-8"))) % 2**32


def round_or_none(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)
