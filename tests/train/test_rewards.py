"""The Spearman ranking reward on hand-made completions: parsing, padding, and the TRL reward wrapper."""

from __future__ import annotations

import pytest
from scipy.stats import spearmanr

from lexalign.train.rewards import (
    final_ranking_label,
    make_ranking_reward,
    parse_final_ranking,
    ranking_reward,
    spearman_reward,
)

GOLD = ["dog", "cat", "bone", "leash"]
EN = "Final ranking"
ZH = "最终排序"


def test_perfect_ranking_scores_one():
    assert ranking_reward("Dogs bark a lot.\nFinal ranking: dog, cat, bone, leash", GOLD, EN) == pytest.approx(1.0)


def test_reversed_ranking_scores_minus_one():
    assert ranking_reward("Final ranking: leash, bone, cat, dog", GOLD, EN) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I cannot rank these words.",
        "dog, cat, bone, leash",
        "Final ranking:",
        "Final ranking: \n\nno list here",
        "Final ranking: zebra, moon",
    ],
)
def test_garbage_scores_minus_one(text):
    assert ranking_reward(text, GOLD, EN) == -1.0


def test_partial_list_pads_missing_words_with_k_plus_one():
    # dog, cat ranked 1, 2; bone and leash missing -> both rank K+1 = 5 (tied).
    # Spearman of (1,2,3,4) vs ranks of (1,2,5,5) = (1,2,3.5,3.5): rho = 0.9487.
    assert ranking_reward("Final ranking: dog, cat", GOLD, EN) == pytest.approx(0.9486833, abs=1e-6)
    # Padding by hand agrees with scipy on the padded vectors.
    from scipy.stats import spearmanr

    assert spearman_reward(["cat", "dog"], GOLD) == pytest.approx(spearmanr([1, 2, 3, 4], [2, 1, 5, 5]).statistic)


def test_words_not_in_gold_are_dropped_before_ranking():
    assert ranking_reward("Final ranking: puppy, dog, walk, cat, bone, leash", GOLD, EN) == pytest.approx(1.0)


def test_duplicates_keep_their_first_position():
    assert ranking_reward("Final ranking: dog, cat, dog, bone, leash, cat", GOLD, EN) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "text",
    [
        "最终排序：dog，cat，bone，leash",
        "最终排序: dog、cat、bone、leash",
        "最终排序：dog；cat；bone；leash",
        "最终排序：dog, cat; bone，leash。",
    ],
)
def test_chinese_label_and_separators(text):
    assert ranking_reward(text, GOLD, ZH, "zh") == pytest.approx(1.0)


def test_chinese_words():
    gold = ["狗", "猫", "骨头"]
    assert ranking_reward("我认为：\n最终排序：狗，猫，骨头", gold, ZH, "zh") == pytest.approx(1.0)
    assert ranking_reward("最终排序：骨头、猫、狗", gold, ZH, "zh") == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "text",
    [
        "Final ranking:\n1. dog\n2. cat\n3. bone\n4. leash",
        "**Final ranking:**\n1) Dog\n2) Cat\n3) Bone\n4) Leash\n\nThanks!",
        "Final ranking: 1. dog 2. cat 3. bone 4. leash",
        "Final ranking:\n- dog\n- cat\n- bone\n- leash",
        'FINAL RANKING: "Dog", "Cat", "Bone", "Leash".',
    ],
)
def test_numbered_lists_and_formatting(text):
    assert ranking_reward(text, GOLD, EN) == pytest.approx(1.0)


def test_the_last_label_counts():
    text = 'End with "Final ranking: word, word". Final ranking: leash, bone, cat, dog'
    assert parse_final_ranking(text, EN) == ["leash", "bone", "cat", "dog"]


def test_wrong_language_label_is_unparsable():
    assert ranking_reward("Final ranking: dog, cat, bone, leash", GOLD, ZH, "zh") == -1.0


def test_words_are_normalised_like_the_norms():
    from lexalign.core.text import normalise_text

    assert parse_final_ranking("Final ranking: ＤＯＧ., 3) Ice  Cream", EN) == ["dog", "ice cream"]
    assert parse_final_ranking("最终排序：“狗”，猫", ZH, "zh") == ["狗", "猫"]
    assert ranking_reward(
        "Final ranking: ＤＯＧ, CAT, bone, leash", [" Dog", "cat.", "BONE", "leash"], EN
    ) == pytest.approx(1.0)
    assert normalise_text(" Dog") == "dog"


# ---- the study's definition ----------------------------------------------------------------------

TEN = [f"w{i}" for i in range(1, 11)]


def test_study_definition_pads_on_the_predicted_position_side():
    """The study's reward_func: ranks = human rank of each predicted word in predicted order, padded
    with K+1 to K entries, against 1..K. Naming only the least frequent word scores +0.52 (K = 10)."""
    assert spearman_reward(["w10"], TEN, "study") == pytest.approx(spearmanr(range(1, 11), [10] + [11] * 9).statistic)
    assert spearman_reward(["w10"], TEN, "study") == pytest.approx(0.5222330, abs=1e-6)
    assert spearman_reward(["w10"], TEN, "corrected") == pytest.approx(-0.5222330, abs=1e-6)
    # K = 4, the model names bone, dog: study ranks (3, 1, 5, 5) vs (1, 2, 3, 4)
    assert spearman_reward(["bone", "dog"], GOLD, "study") == pytest.approx(
        spearmanr([1, 2, 3, 4], [3, 1, 5, 5]).statistic
    )
    # corrected: dog at 2, cat missing, bone at 1, leash missing -> (2, 5, 1, 5)
    assert spearman_reward(["bone", "dog"], GOLD, "corrected") == pytest.approx(
        spearmanr([1, 2, 3, 4], [2, 5, 1, 5]).statistic
    )


@pytest.mark.parametrize("definition", ["corrected", "study"])
def test_both_definitions_agree_on_complete_rankings(definition):
    assert ranking_reward("Final ranking: dog, cat, bone, leash", GOLD, EN, definition=definition) == pytest.approx(1.0)
    assert ranking_reward("Final ranking: cat, dog, leash, bone", GOLD, EN, definition=definition) == pytest.approx(0.6)
    assert ranking_reward("Final ranking: zebra", GOLD, EN, definition=definition) == -1.0
    assert ranking_reward("no ranking", GOLD, EN, definition=definition) == -1.0


def test_unknown_definition_is_refused():
    with pytest.raises(ValueError, match="reward definition 'paper'"):
        make_ranking_reward(EN, "en", "paper")


def test_trl_reward_function_reads_conversational_and_plain_completions():
    reward = make_ranking_reward(EN, "en")
    completions = [
        [{"role": "assistant", "content": "Final ranking: dog, cat, bone, leash"}],
        [{"role": "assistant", "content": "no idea"}],
        "Final ranking: leash, bone, cat, dog",
    ]
    scores = reward(
        prompts=[[], [], []], completions=completions, gold=[GOLD, GOLD, GOLD], completion_ids=[[1], [2], [3]]
    )
    assert scores == pytest.approx([1.0, -1.0, -1.0])
    assert reward.__name__ == "spearman_ranking"


def test_label_comes_from_the_prompt_templates():
    assert final_ranking_label("en") == "Final ranking"
    assert final_ranking_label("zh") == "最终排序"
    assert final_ranking_label("en", {"en": {"final_ranking_label": "Ranking"}}) == "Ranking"
