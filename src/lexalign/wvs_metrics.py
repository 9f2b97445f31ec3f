"""Tier 2 metrics: distances between a model's and humans' answer distributions over one item's options.

Every function takes two probability vectors over the same options in questionnaire order. The
forms are fixed and stated in :data:`DEFINITIONS` (written into every metrics.json):

- EMD: :func:`scipy.stats.wasserstein_distance` over the option positions 0..N-1;
  ``emd_norm`` divides it by N-1 so that it lies in [0, 1] whatever the option count;
- JS: the Jensen-Shannon *distance* (square root of the divergence), base 2, in [0, 1]
  (:func:`scipy.spatial.distance.jensenshannon` with ``base=2``);
- KL both ways in nats, after adding ``epsilon`` to every option of both vectors and renormalising;
- cosine similarity; hard accuracy (argmax == human majority, first option on ties);
- the peers' headline forms: GlobalOpinionQA's similarity ``1 - JS`` and WorldValuesBench's
  ``emd_norm < 0.2``;
- the tension distance ``0.5 * JS + 0.5 * emd_norm`` (the study's high-tension ranking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, wasserstein_distance

DEFAULT_KL_EPSILON = 1e-6
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


def definitions(kl_epsilon: float) -> dict[str, str]:
    return {
        "emd": "earth mover's distance over option positions 0..N-1 (scipy.stats.wasserstein_distance)",
        "emd_norm": "emd / (N - 1), in [0, 1]",
        "js": "Jensen-Shannon distance = sqrt(JS divergence), base 2, in [0, 1] (scipy.spatial.distance.jensenshannon(p, q, base=2))",
        "kl_model_human": f"KL(model || human) in nats, epsilon {kl_epsilon:g} added to every option of both distributions, then renormalised",
        "kl_human_model": f"KL(human || model) in nats, epsilon {kl_epsilon:g} added to every option of both distributions, then renormalised",
        "cosine": "cosine similarity of the two probability vectors",
        "acc": "hard accuracy: argmax of the model distribution == human majority option (first option on ties)",
        "goqa_similarity": "GlobalOpinionQA similarity: 1 - Jensen-Shannon distance (base 2)",
        "wvb_emd_below_0_2": "WorldValuesBench: share of items with emd_norm < 0.2",
        "distance": "tension distance 0.5 * js + 0.5 * emd_norm (the study's high-tension measure)",
    }


def _pair(p: Sequence[float], q: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or p.size < 2:
        raise ValueError(f"distributions must be 1-D of the same length >= 2, got {p.shape} and {q.shape}")
    return p / p.sum(), q / q.sum()


def emd(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = _pair(p, q)
    positions = np.arange(p.size, dtype=float)
    return float(wasserstein_distance(positions, positions, u_weights=p, v_weights=q))


def emd_norm(p: Sequence[float], q: Sequence[float]) -> float:
    return emd(p, q) / (len(p) - 1)


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = _pair(p, q)
    value = float(jensenshannon(p, q, base=2))
    return 0.0 if np.isnan(value) else min(max(value, 0.0), 1.0)


def kl(p: Sequence[float], q: Sequence[float], epsilon: float = DEFAULT_KL_EPSILON) -> float:
    """KL(p || q) in nats with ``epsilon`` added to every entry of both, then renormalised."""
    p, q = _pair(p, q)
    p, q = p + epsilon, q + epsilon
    return float(entropy(p / p.sum(), q / q.sum()))


def cosine(p: Sequence[float], q: Sequence[float]) -> float:
    p, q = _pair(p, q)
    return float(p @ q / (np.linalg.norm(p) * np.linalg.norm(q)))


def hard_accuracy(model: Sequence[float], human: Sequence[float]) -> float:
    return float(int(np.argmax(model)) == int(np.argmax(human)))


def tension_distance(p: Sequence[float], q: Sequence[float]) -> float:
    return 0.5 * js_distance(p, q) + 0.5 * emd_norm(p, q)


def item_metrics(model: Sequence[float], human: Sequence[float], kl_epsilon: float = DEFAULT_KL_EPSILON) -> dict[str, float]:
    """All per-item metrics of a model distribution against a human distribution."""
    js = js_distance(model, human)
    emdn = emd_norm(model, human)
    return {
        "emd": emd(model, human),
        "emd_norm": emdn,
        "js": js,
        "kl_model_human": kl(model, human, kl_epsilon),
        "kl_human_model": kl(human, model, kl_epsilon),
        "cosine": cosine(model, human),
        "acc": hard_accuracy(model, human),
        "goqa_similarity": 1.0 - js,
        "wvb_emd_below_0_2": float(emdn < WVB_THRESHOLD),
        "distance": 0.5 * js + 0.5 * emdn,
    }


def option_bucket(n_options: int) -> str:
    return str(n_options) if n_options < 5 else ">=5"


def summarise(per_item: Sequence[Mapping[str, float]], n_options: Sequence[int], subset: Sequence[bool] | None = None) -> dict:
    """Means over items: overall, by option count (2, 3, 4, >=5) and on a subset (e.g. high tension)."""

    def mean(rows: list[Mapping[str, float]]) -> dict:
        out: dict = {"n": len(rows)}
        for name in METRICS:
            out[name] = float(np.mean([r[name] for r in rows])) if rows else None
        return out

    rows = list(per_item)
    summary = {"overall": mean(rows), "by_option_count": {}}
    for bucket in OPTION_BUCKETS:
        summary["by_option_count"][bucket] = mean([r for r, n in zip(rows, n_options) if option_bucket(n) == bucket])
    if subset is not None:
        summary["high_tension"] = mean([r for r, keep in zip(rows, subset) if keep])
    return summary


def closer_counts(d_us: Sequence[float], d_china: Sequence[float]) -> dict[str, int]:
    """How many items are closer to China than to the US (by the tension distance), and vice versa."""
    us, cn = np.asarray(d_us, dtype=float), np.asarray(d_china, dtype=float)
    return {
        "closer_to_china": int(np.sum(cn < us)),
        "closer_to_us": int(np.sum(us < cn)),
        "ties": int(np.sum(us == cn)),
    }


def uniform(n: int) -> list[float]:
    return [1.0 / n] * n


def one_hot_majority(human: Sequence[float]) -> list[float]:
    """The majority answer of a human distribution as a distribution (first option on ties)."""
    out = [0.0] * len(human)
    out[int(np.argmax(human))] = 1.0
    return out
