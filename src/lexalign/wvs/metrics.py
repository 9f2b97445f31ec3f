"""Tier 2 metrics: distances between a model's and humans' answer distributions over one item's options.

Every function takes two probability vectors over the same options in questionnaire order (both are
renormalised to sum to 1 first). Where the study's code computes a metric differently from lexalign,
the function takes ``definition``:

- ``"corrected"`` (lexalign's, the default):
  EMD over the option positions 0..N-1 (:func:`scipy.stats.wasserstein_distance` with the
  probabilities as weights), ``emd_norm = EMD / (N-1)`` in [0, 1]; Jensen-Shannon *distance*
  base 2 (in [0, 1], comparable across papers); KL in nats with the configured ``wvs.kl_epsilon``;
  tension distance ``0.5 * JS + 0.5 * emd_norm``.
- ``"study"`` (the study's code, bugs included; kabir-manandhar/Cultural-Lexis):
  JS distance with the natural log (``wvs_eval/src/evaluate.py`` calls ``jensenshannon(p, q)``:
  every value is the base-2 value times sqrt(ln 2)); KL with epsilon 1e-10; the tension distance of
  ``model_analysis/post/tension.py``: ``0.5 * JS (base 2) + 0.5 * wasserstein_distance(p, q) / (N-1)``
  with p and q passed as *values* (samples), not as weights over option positions, so where the
  probability mass sits is ignored (p = [.9, .1, 0] and q = [0, .1, .9] have EMD 0).
  :func:`emd` with ``definition="study"`` is that values-based form; the study's per-item EMD metric
  (evaluate.py) is over positions 1..N, identical to the corrected one, so the study block of
  metrics.json uses the positional EMD.

Also: cosine similarity; hard accuracy (argmax == human majority, first option on ties); the peers'
headline forms GlobalOpinionQA similarity ``1 - JS`` and WorldValuesBench ``emd_norm < 0.2``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

from lexalign.config.definitions import DEFINITIONS

#: The study's KL smoothing (wvs_eval/src/evaluate.py); the corrected form takes ``wvs.kl_epsilon``.
STUDY_KL_EPSILON = 1e-10
WVB_THRESHOLD = 0.2
OPTION_BUCKETS = ("2", "3", "4", ">=5")

METRICS = (
    "emd",
    "emd_norm",
    "js",
    "kl_model_human",
    "kl_human_model",
    "cosine",
    "acc",
    "goqa_similarity",
    "wvb_emd_below_0_2",
    "distance",
)
#: The metrics the study's evaluate.py computes (plus its tension distance): the study block's columns.
STUDY_METRICS = ("emd", "emd_norm", "js", "kl_model_human", "kl_human_model", "cosine", "acc", "distance")


def _check(definition: str) -> str:
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    return definition


def definitions(kl_epsilon: float, definition: str = "corrected") -> dict[str, str]:
    """One line per metric saying exactly how it is computed (written into metrics.json)."""
    if _check(definition) == "study":
        return {
            "emd": "earth mover's distance over option positions 1..N (the study's evaluate.py; equals the corrected "
            "one)",
            "emd_norm": "emd / (N - 1)",
            "js": "Jensen-Shannon distance with the natural log (the study's evaluate.py: jensenshannon(p, q)); "
            "= corrected js * sqrt(ln 2)",
            "kl_model_human": f"KL(model || human) in nats, epsilon {STUDY_KL_EPSILON:g} added to both, renormalised",
            "kl_human_model": f"KL(human || model) in nats, epsilon {STUDY_KL_EPSILON:g} added to both, renormalised",
            "cosine": "cosine similarity of the two probability vectors",
            "acc": "hard accuracy: argmax of the model distribution == human majority option",
            "distance": "the study's tension distance (model_analysis/post/tension.py): 0.5 * JS distance (base 2) + "
            "0.5 * scipy.stats.wasserstein_distance(p, q) / (N - 1) with p and q passed as values, not as weights "
            "over option positions (the study's bug: where the mass sits is ignored)",
        }
    return {
        "emd": "earth mover's distance over option positions 0..N-1 (scipy.stats.wasserstein_distance)",
        "emd_norm": "emd / (N - 1), in [0, 1]",
        "js": "Jensen-Shannon distance = sqrt(JS divergence), base 2, in [0, 1] "
        "(scipy.spatial.distance.jensenshannon(p, q, base=2))",
        "kl_model_human": f"KL(model || human) in nats, epsilon {kl_epsilon:g} added to every option of both "
        "distributions, then renormalised",
        "kl_human_model": f"KL(human || model) in nats, epsilon {kl_epsilon:g} added to every option of both "
        "distributions, then renormalised",
        "cosine": "cosine similarity of the two probability vectors",
        "acc": "hard accuracy: argmax of the model distribution == human majority option (first option on ties)",
        "goqa_similarity": "GlobalOpinionQA similarity: 1 - Jensen-Shannon distance (base 2)",
        "wvb_emd_below_0_2": "WorldValuesBench: share of items with emd_norm < 0.2",
        "distance": "tension distance 0.5 * js + 0.5 * emd_norm (EMD over option positions)",
    }


def _pair(p: Sequence[float], q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or p.size < 2:
        raise ValueError(f"distributions must be 1-D of the same length >= 2, got {p.shape} and {q.shape}")
    return p / p.sum(), q / q.sum()


def emd(p: Sequence[float], q: Sequence[float], definition: str = "corrected") -> float:
    """Earth mover's distance: over option positions (corrected), or over the values (the study's tension.py)."""
    p, q = _pair(p, q)
    if _check(definition) == "study":
        return float(wasserstein_distance(p, q))
    positions = np.arange(p.size, dtype=float)
    return float(wasserstein_distance(positions, positions, u_weights=p, v_weights=q))


def emd_norm(p: Sequence[float], q: Sequence[float], definition: str = "corrected") -> float:
    return emd(p, q, definition) / (len(p) - 1)


def js_distance(p: Sequence[float], q: Sequence[float], definition: str = "corrected") -> float:
    """Jensen-Shannon distance: base 2 (corrected, in [0, 1]) or natural log (the study's evaluate.py)."""
    p, q = _pair(p, q)
    base = 2 if _check(definition) == "corrected" else None
    value = float(jensenshannon(p, q, base=base))
    return 0.0 if np.isnan(value) else max(value, 0.0)


def kl(p: Sequence[float], q: Sequence[float], epsilon: float | None = None, definition: str = "corrected") -> float:
    """KL(p || q) in nats, ``epsilon`` added to every entry of both, then renormalised.

    corrected: ``epsilon`` is the configured ``wvs.kl_epsilon`` (required); study: 1e-10.
    """
    if _check(definition) == "study":
        epsilon = STUDY_KL_EPSILON
    elif epsilon is None:
        raise ValueError("kl: the corrected form needs epsilon (config wvs.kl_epsilon)")
    p, q = _pair(p, q)
    p, q = p + epsilon, q + epsilon
    return float(entropy(p / p.sum(), q / q.sum()))


def cosine(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = _pair(p, q)
    return float(p @ q / (np.linalg.norm(p) * np.linalg.norm(q)))


def hard_accuracy(model: Sequence[float], human: Sequence[float]) -> float:
    return float(int(np.argmax(model)) == int(np.argmax(human)))


def tension_distance(p: Sequence[float], q: Sequence[float], definition: str = "corrected") -> float:
    """0.5 * JS distance (base 2) + 0.5 * EMD / (N - 1); the EMD over positions (corrected) or values (study)."""
    return 0.5 * js_distance(p, q, "corrected") + 0.5 * emd_norm(p, q, definition)


def item_metrics(
    model: Sequence[float], human: Sequence[float], kl_epsilon: float | None = None, definition: str = "corrected"
) -> dict[str, float]:
    """Every per-item metric of a model distribution against a human one (:data:`METRICS` or :data:`STUDY_METRICS`)."""
    js = js_distance(model, human, definition)
    emdn = emd_norm(model, human)
    row = {
        "emd": emd(model, human),
        "emd_norm": emdn,
        "js": js,
        "kl_model_human": kl(model, human, kl_epsilon, definition),
        "kl_human_model": kl(human, model, kl_epsilon, definition),
        "cosine": cosine(model, human),
        "acc": hard_accuracy(model, human),
    }
    if definition == "study":
        return {**row, "distance": tension_distance(model, human, "study")}
    return {
        **row,
        "goqa_similarity": 1.0 - js,
        "wvb_emd_below_0_2": float(emdn < WVB_THRESHOLD),
        "distance": 0.5 * js + 0.5 * emdn,
    }


def option_bucket(n_options: int) -> str:
    return str(n_options) if n_options < 5 else ">=5"


def summarise(
    per_item: Sequence[Mapping[str, float]],
    n_options: Sequence[int],
    subset: Sequence[bool] | None = None,
    names: Sequence[str] = METRICS,
) -> dict:
    """Means over items: overall, by option count (2, 3, 4, >=5) and on a subset (e.g. high tension)."""

    def mean(rows: list[Mapping[str, float]]) -> dict:
        out: dict = {"n": len(rows)}
        for name in names:
            out[name] = float(np.mean([r[name] for r in rows])) if rows else None
        return out

    rows = list(per_item)
    summary = {"overall": mean(rows), "by_option_count": {}}
    for bucket in OPTION_BUCKETS:
        summary["by_option_count"][bucket] = mean([r for r, n in zip(rows, n_options) if option_bucket(n) == bucket])
    if subset is not None:
        summary["high_tension"] = mean([r for r, keep in zip(rows, subset) if keep])
    return summary


def closer_counts(distances: Mapping[str, Sequence[float | None]]) -> dict:
    """How many items an answerer is closer to each of two countries' humans (``distances``: country key ->
    per-item distance), and the ties; an item with a None distance (unanswered) counts in neither."""
    (first, d_first), (second, d_second) = distances.items()
    pairs = [(a, b) for a, b in zip(d_first, d_second) if a is not None and b is not None]
    return {
        "closer_to": {first: sum(a < b for a, b in pairs), second: sum(b < a for a, b in pairs)},
        "ties": sum(a == b for a, b in pairs),
    }


def uniform(n: int) -> list[float]:
    return [1.0 / n] * n


def one_hot_majority(human: Sequence[float]) -> list[float]:
    """The majority answer of a human distribution as a distribution (first option on ties)."""
    out = [0.0] * len(human)
    out[int(np.argmax(human))] = 1.0
    return out
