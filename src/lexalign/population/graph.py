"""The pooled cue-response graph of model and human norms (networkx), for ``population_compare``.

Edges run cue -> response, weighted by strength (count / the cue's responses). Measures: the in-strength
distribution, its continuous power-law fit (maximum-likelihood exponent with x_min = the smallest
in-strength, KS distance of the fit) and the two-sample KS distance between model and human in-strengths,
the average clustering coefficient (undirected), and the Spearman correlation of node in-strength and
PageRank between the model and the human graph (nodes in both). CIs: scipy's percentile bootstrap over
cues, both graphs rebuilt per resample; a cue drawn twice adds its strengths twice, which thickens the
in-strength tail, so a nonlinear statistic's interval (the exponent above all) need not contain the value
on all cues.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lexalign.core import stats
from lexalign.core.errors import LexalignError

Counts = Mapping[str, Mapping[str, int]]  # cue -> response -> count
MIN_SHARED = 3  # nodes both graphs have, for a rank correlation

GRAPH_MEASURES = {
    "model_clustering": "average clustering coefficient of the model's cue-response graph (undirected)",
    "human_clustering": "same for the human graph",
    "model_in_strength_alpha": "power-law exponent (continuous maximum likelihood) of the model's in-strengths",
    "human_in_strength_alpha": "same for the human in-strengths",
    "in_strength_ks": "two-sample KS distance between model and human in-strength distributions",
    "in_strength_rho": "Spearman of node in-strength, model vs human graph (nodes in both)",
    "pagerank_rho": "Spearman of node PageRank, model vs human graph (nodes in both)",
}


def build_graph(counts: Counts, cues: Sequence[str]):
    """Directed cue -> response graph, edge weight = strength (count / the cue's responses); a cue listed
    twice (a bootstrap resample) adds its strengths twice."""
    import networkx as nx

    graph = nx.DiGraph()
    for cue in cues:
        total = sum(counts[cue].values())
        graph.add_node(cue)
        for response, count in counts[cue].items():
            weight = count / total + (graph[cue][response]["weight"] if graph.has_edge(cue, response) else 0.0)
            graph.add_edge(cue, response, weight=weight)
    return graph


def power_law_fit(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Continuous power-law fit with x_min = the smallest value: (maximum-likelihood exponent, KS distance
    between the data and the fit); (None, None) with fewer than 2 distinct values."""
    data = np.sort(np.asarray([v for v in values if v > 0], dtype=float))
    if data.size < 2 or data[0] == data[-1]:
        return None, None
    logs = np.log(data / data[0])
    alpha = 1.0 + data.size / logs.sum()
    fitted = 1.0 - (data / data[0]) ** (1.0 - alpha)
    empirical = np.arange(1, data.size + 1) / data.size
    ks = float(np.max(np.maximum(np.abs(empirical - fitted), np.abs(empirical - 1 / data.size - fitted))))
    return float(alpha), ks


def _in_strengths(graph) -> dict[str, float]:
    return {node: float(s) for node, s in graph.in_degree(weight="weight") if graph.in_degree(node) > 0}


def _rank_correlation(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    from scipy.stats import spearmanr

    shared = sorted(set(a) & set(b))
    if len(shared) < MIN_SHARED:
        return math.nan
    x, y = [a[n] for n in shared], [b[n] for n in shared]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(spearmanr(x, y).statistic)


def graph_statistics(model: Counts, human: Counts, cues: Sequence[str]) -> dict[str, float]:
    """The :data:`GRAPH_MEASURES` of the graphs built from ``cues`` (NaN where undefined)."""
    import networkx as nx
    from scipy.stats import ks_2samp

    graphs = {"model": build_graph(model, cues), "human": build_graph(human, cues)}
    strengths = {side: _in_strengths(g) for side, g in graphs.items()}
    out: dict[str, float] = {}
    for side, graph in graphs.items():
        out[f"{side}_clustering"] = float(nx.average_clustering(graph.to_undirected()))
        alpha, _ = power_law_fit(list(strengths[side].values()))
        out[f"{side}_in_strength_alpha"] = math.nan if alpha is None else alpha
    if strengths["model"] and strengths["human"]:
        out["in_strength_ks"] = float(
            ks_2samp(list(strengths["model"].values()), list(strengths["human"].values())).statistic
        )
    else:
        out["in_strength_ks"] = math.nan
    out["in_strength_rho"] = _rank_correlation(strengths["model"], strengths["human"])
    ranks = {side: nx.pagerank(g, weight="weight") for side, g in graphs.items()}
    out["pagerank_rho"] = _rank_correlation(ranks["model"], ranks["human"])
    return out


def graph_measures(
    model: Counts, human: Counts, resamples: int, seed: int, confidence: float = stats.CONFIDENCE
) -> dict:
    """Each graph measure over the cues both sides answered, with a percentile bootstrap CI over cues
    (scipy.stats.bootstrap, ``resamples`` graphs rebuilt; 0 = no CIs), plus the in-strength fit's details."""
    cues = sorted(set(model) & set(human))
    if not cues:
        raise LexalignError("population_compare: the model and human norms share no cue")
    point = graph_statistics(model, human, cues)
    names = list(GRAPH_MEASURES)
    lows = highs = [math.nan] * len(names)
    if resamples > 0 and len(cues) > 1:
        import warnings

        from scipy.stats import bootstrap

        def statistic(index):
            values = graph_statistics(model, human, [cues[int(i)] for i in index])
            return np.array([values[n] for n in names])

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap(
                (np.arange(len(cues)),),
                statistic,
                vectorized=False,
                n_resamples=resamples,
                confidence_level=confidence,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
        lows, highs = list(result.confidence_interval.low), list(result.confidence_interval.high)
    measures = {}
    for name, low, high in zip(names, lows, highs):
        value = stats.round_or_none(point[name])
        ci = (
            None
            if value is None or math.isnan(low) or math.isnan(high)
            else [round(float(low), 6), round(float(high), 6)]
        )
        measures[name] = {"mean": value, "ci": ci, "confidence": confidence, "n": len(cues)}
    fits = {}
    for side, counts in (("model", model), ("human", human)):
        strengths = list(_in_strengths(build_graph(counts, cues)).values())
        alpha, ks = power_law_fit(strengths)
        fits[side] = {
            "nodes_with_in_edges": len(strengths),
            "alpha": stats.round_or_none(alpha),
            "ks_distance": stats.round_or_none(ks),
            "x_min": stats.round_or_none(min(strengths)) if strengths else None,
            "max": stats.round_or_none(max(strengths)) if strengths else None,
        }
    return {"measures": measures, "in_strength_fit": fits, "bootstrap": {"resamples": resamples, "over": "cues"}}
