"""Sample mode's aggregation: N classified answers of an item -> its distribution and invalid shares."""

from __future__ import annotations

import pytest

from lexalign.wvs.refusal import NO_OPTION, OPTION, REFUSAL, TextAnswer, classify
from lexalign.wvs.sampling import aggregate, item_seed, mean_shares

LABELS = ["Very important", "Rather important", "Not very important", "Not at all important"]


def test_the_distribution_is_the_share_of_valid_answers_per_option():
    texts = ["1", "1", "2", "1", "I'm sorry, I can't answer that.", "banana", "4", "2"]
    sampled = aggregate([classify(text, LABELS, "en") for text in texts], len(LABELS))
    assert sampled.counts == (3, 2, 0, 1)
    assert (sampled.n_samples, sampled.n_valid, sampled.n_refusal, sampled.n_no_option) == (8, 6, 1, 1)
    assert sampled.probs == pytest.approx([0.5, 1 / 3, 0.0, 1 / 6])
    assert sampled.refusal_share == pytest.approx(1 / 8)
    assert sampled.no_option_share == pytest.approx(1 / 8)
    assert sampled.invalid_share == pytest.approx(2 / 8)


def test_no_valid_answer_is_no_distribution():
    sampled = aggregate([TextAnswer(REFUSAL), TextAnswer(NO_OPTION)], 3)
    assert sampled.probs is None and sampled.invalid_share == 1.0
    empty = aggregate([], 3)
    assert empty.probs is None and empty.n_samples == 0 and empty.invalid_share is None


def test_an_answer_outside_the_options_is_an_error():
    with pytest.raises(ValueError, match="option 3"):
        aggregate([TextAnswer(OPTION, 3)], 3)
    with pytest.raises(ValueError, match="'maybe'"):
        aggregate([TextAnswer("maybe")], 3)


def test_mean_shares_weigh_every_answer_once():
    items = [
        aggregate([TextAnswer(OPTION, 0), TextAnswer(REFUSAL)], 2),
        aggregate([TextAnswer(OPTION, 1), TextAnswer(OPTION, 1), TextAnswer(NO_OPTION), TextAnswer(NO_OPTION)], 2),
    ]
    assert mean_shares(items) == pytest.approx({"refusal": 1 / 6, "no_valid_option": 2 / 6, "invalid": 3 / 6})
    assert mean_shares([]) == {"refusal": None, "no_valid_option": None, "invalid": None}


def test_item_seeds_are_stable_and_differ_between_items():
    assert item_seed(7, "Q1") == item_seed(7, "Q1")
    assert item_seed(7, "Q1") != item_seed(7, "Q2")
    assert item_seed(7, "Q1") != item_seed(8, "Q1")
    assert 0 <= item_seed(2**32 - 1, "Q290") < 2**32
