"""Tier-2 metrics checked against scipy and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from lexalign.wvs import metrics as m


def test_emd_by_hand_and_scipy():
    assert m.emd([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(3.0)
    assert m.emd_norm([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(1.0)
    # cumulative differences |0.5 - 0| + |1 - 0.5| = 1
    assert m.emd([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(1.0)
    assert m.emd_norm([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    for n in (2, 4, 10):
        p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
        expected = wasserstein_distance(np.arange(n), np.arange(n), p, q)
        assert m.emd(p, q) == pytest.approx(expected)
        assert m.emd(p, q) == pytest.approx(np.abs(np.cumsum(p) - np.cumsum(q)).sum())
        assert m.emd_norm(p, q) == pytest.approx(expected / (n - 1))


def test_js_distance_base2():
    assert m.js_distance([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-12)
    assert m.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.5, 0.25, 0.25])
    mid = (p + q) / 2
    divergence = 0.5 * np.sum(p * np.log2(p / mid)) + 0.5 * np.sum(q * np.log2(q / mid))
    assert m.js_distance(p, q) == pytest.approx(math.sqrt(divergence))
    assert m.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))


def test_kl_with_epsilon_both_ways():
    p, q = np.array([0.2, 0.8, 0.0]), np.array([0.5, 0.25, 0.25])
    eps = 1e-3
    pe, qe = (p + eps) / (p + eps).sum(), (q + eps) / (q + eps).sum()
    assert m.kl(p, q, eps) == pytest.approx(np.sum(pe * np.log(pe / qe)))
    assert m.kl(q, p, eps) == pytest.approx(np.sum(qe * np.log(qe / pe)))
    assert m.kl(q, p, eps) != pytest.approx(m.kl(p, q, eps))
    assert math.isfinite(m.kl([1, 0], [0, 1], 1e-6))
    assert m.kl([0.4, 0.6], [0.4, 0.6], 1e-6) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="needs epsilon"):
        m.kl(p, q)


def test_cosine_and_accuracy():
    assert m.cosine([1, 0], [0.5, 0.5]) == pytest.approx(1 / math.sqrt(2))
    assert m.cosine([0.2, 0.8], [0.2, 0.8]) == pytest.approx(1.0)
    assert m.hard_accuracy([0.1, 0.6, 0.3], [0.2, 0.5, 0.3]) == 1.0
    assert m.hard_accuracy([0.6, 0.1, 0.3], [0.2, 0.5, 0.3]) == 0.0
    assert m.hard_accuracy([0.5, 0.5], [0.5, 0.5]) == 1.0  # ties: first option on both sides


def test_item_metrics_peer_forms_and_tension():
    model, human = [0.7, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]
    row = m.item_metrics(model, human, 1e-6)
    assert set(row) == set(m.METRICS)
    js = jensenshannon(model, human, base=2)
    emdn = wasserstein_distance(range(4), range(4), model, human) / 3
    assert row["goqa_similarity"] == pytest.approx(1 - js)
    assert row["distance"] == pytest.approx(0.5 * js + 0.5 * emdn)
    assert row["wvb_emd_below_0_2"] == float(emdn < 0.2)
    assert m.item_metrics(human, human, 1e-6)["wvb_emd_below_0_2"] == 1.0
    assert m.tension_distance(model, human) == pytest.approx(row["distance"])


def test_summaries_by_option_count_and_subset():
    rows = [
        m.item_metrics(p, q, 1e-6)
        for p, q in [
            ([1, 0], [0, 1]),
            ([1, 0, 0], [1, 0, 0]),
            ([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]),
            ([0.2] * 5, [0.2] * 5),
            ([1] + [0] * 9, [0] * 9 + [1]),
        ]
    ]
    counts = [2, 3, 4, 5, 10]
    summary = m.summarise(rows, counts, subset=[True, False, False, False, True])
    assert summary["overall"]["n"] == 5
    assert summary["overall"]["acc"] == pytest.approx(2 / 5)
    assert {k: v["n"] for k, v in summary["by_option_count"].items()} == {"2": 1, "3": 1, "4": 1, ">=5": 2}
    assert summary["by_option_count"]["2"]["js"] == pytest.approx(1.0)
    assert summary["by_option_count"][">=5"]["emd_norm"] == pytest.approx(0.5)
    assert summary["high_tension"]["n"] == 2
    assert summary["high_tension"]["emd_norm"] == pytest.approx(1.0)
    empty = m.summarise([], [])
    assert empty["overall"]["n"] == 0 and empty["overall"]["js"] is None


def test_closer_counts_and_reference_answerers():
    closer = m.closer_counts({"usa": [0.1, 0.5, 0.3], "chn": [0.2, 0.4, 0.3]})
    assert closer == {"closer_to": {"usa": 1, "chn": 1}, "ties": 1}
    # an unanswered item (None) counts in neither
    assert m.closer_counts({"usa": [0.1, None], "deu": [0.2, 0.4]}) == {"closer_to": {"usa": 1, "deu": 0}, "ties": 0}
    assert m.uniform(4) == [0.25] * 4
    assert m.one_hot_majority([0.2, 0.5, 0.3]) == [0.0, 1.0, 0.0]
    assert m.one_hot_majority([0.4, 0.4, 0.2]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        m.emd([1.0], [1.0])


# --------------------------------------------------------------------------------------------------
# The study's definitions (kabir-manandhar/Cultural-Lexis), pinned to their formulas on fixed inputs


def test_tension_distance_both_definitions_on_fixed_input():
    p, q = [0.9, 0.1, 0.0], [0.0, 0.1, 0.9]
    # JS divergence base 2 by hand: M = [.45, .1, .45]; each side .9 * log2(.9 / .45) = .9 bits
    js = math.sqrt(0.5 * 0.9 + 0.5 * 0.9)
    # study: the values {.9, .1, 0} and {0, .1, .9} are the same multiset -> EMD 0; tension = JS / 2
    assert m.tension_distance(p, q, definition="study") == pytest.approx(0.5 * js, abs=1e-12)
    # corrected: cumulative shares [.9, 1, 1] vs [0, .1, 1] -> EMD .9 + .9 = 1.8 over 2 steps
    assert m.tension_distance(p, q, definition="corrected") == pytest.approx(0.5 * js + 0.5 * 1.8 / 2, abs=1e-12)
    assert m.tension_distance(p, q) == m.tension_distance(p, q, definition="corrected")
    with pytest.raises(ValueError, match="definition"):
        m.tension_distance(p, q, definition="paper")


def test_study_emd_ignores_where_the_mass_sits():
    # the study passes the probabilities as sample values: any permutation of q gives the same distance
    p, q = [0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4]
    assert m.emd(p, q, "study") == pytest.approx(m.emd(p, list(reversed(q)), "study"))
    # mean absolute difference of the sorted values (equal sample counts)
    expected = np.mean(np.abs(np.sort(p) - np.sort(q)))
    assert m.emd(p, q, "study") == pytest.approx(expected)
    assert m.emd_norm(p, q, "study") == pytest.approx(expected / 3)
    # the corrected EMD is scipy's over option positions
    assert m.emd(p, q) == pytest.approx(wasserstein_distance(range(4), range(4), p, q))


def test_study_js_is_natural_log_and_kl_epsilon_1e_10():
    p, q = np.array([0.1, 0.6, 0.3]), np.array([0.5, 0.25, 0.25])
    mid = (p + q) / 2
    nats = 0.5 * np.sum(p * np.log(p / mid)) + 0.5 * np.sum(q * np.log(q / mid))
    assert m.js_distance(p, q, "study") == pytest.approx(math.sqrt(nats))
    assert m.js_distance(p, q, "study") == pytest.approx(m.js_distance(p, q) * math.sqrt(math.log(2)))
    zero = np.array([0.2, 0.8, 0.0])
    pe, qe = (zero + 1e-10) / (zero + 1e-10).sum(), (q + 1e-10) / (q + 1e-10).sum()
    assert m.kl(zero, q, definition="study") == pytest.approx(np.sum(pe * np.log(pe / qe)))
    assert m.kl(q, zero, definition="study") == pytest.approx(np.sum(qe * np.log(qe / pe)))
    assert m.kl(q, zero, definition="study") > m.kl(q, zero, 1e-6)  # a smaller epsilon: a larger penalty


def test_item_metrics_study_block():
    model, human = [0.7, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]
    study = m.item_metrics(model, human, definition="study")
    assert set(study) == set(m.STUDY_METRICS)
    assert study["js"] == pytest.approx(jensenshannon(model, human))
    assert study["emd"] == pytest.approx(m.emd(model, human))  # evaluate.py's EMD is positional
    assert study["distance"] == pytest.approx(m.tension_distance(model, human, "study"))
    assert "values" in m.definitions(1e-6, "study")["distance"] and "base 2" in m.definitions(1e-6)["js"]
