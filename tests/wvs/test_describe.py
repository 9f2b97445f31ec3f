"""Describe mode's number parser: every form a stated distribution comes in, and what is no distribution."""

from __future__ import annotations

import pytest

from lexalign.wvs.describe import (
    BY_POSITION,
    BY_REFERENCE,
    NO_NUMBERS,
    REFUSAL,
    STATED,
    chinese_number,
    classify_stated,
    normalise,
    parse_stated,
)

EN = ["Very important", "Rather important", "Not very important", "Not at all important"]
ZH = ["非常重要", "比较重要", "不太重要", "一点也不重要"]
AGREE = ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]
SHARES = (30.0, 40.0, 20.0, 10.0)


def raw(text: str, labels=EN) -> tuple[float, ...] | None:
    return parse_stated(text, labels).raw


@pytest.mark.parametrize(
    "text",
    [
        "30%, 40%, 20%, 10%",
        "30 %, 40 %, 20 %, 10 %",
        "３０％，４０％，２０％，１０％",
        "30 percent, 40 percent, 20 per cent, 10 pct",
        "0.3, 0.4, 0.2, 0.1",
        "3/10, 4/10, 2/10, 1/10",
        "3 out of 10, 4 out of 10, 2 out of 10, 1 out of 10",
    ],
)
def test_number_forms_in_option_order(text):
    stated = parse_stated(text, EN)
    assert stated.outcome == STATED and stated.assigned_by == BY_POSITION
    assert stated.raw == pytest.approx(SHARES)
    assert stated.raw_sum == pytest.approx(100.0)
    assert stated.shares == pytest.approx((0.3, 0.4, 0.2, 0.1))


@pytest.mark.parametrize(
    "text",
    [
        "非常重要：三成\n比较重要：四成\n不太重要：两成\n一点也不重要：一成",
        "非常重要：百分之三十；比较重要：百分之四十；不太重要：百分之二十；一点也不重要：百分之十",
        "1. 三十%\n2. 四十%\n3. 二十%\n4. 十%",
        "1. 三十％\n2. 四十％\n3. 二十％\n4. 十％",
        "非常重要：十分之三，比较重要：十分之四，不太重要：十分之二，一点也不重要：十分之一",
        "选项一：30%，选项二：40%，选项三：20%，选项四：10%",
        "第一项30%，第二项40%，第三项20%，第四项10%",
        "约30%的人会选择非常重要，40%选择比较重要，20%选择不太重要，10%选择一点也不重要。",
    ],
)
def test_chinese_forms(text):
    stated = parse_stated(text, ZH)
    assert stated.outcome == STATED and stated.assigned_by == BY_REFERENCE
    assert stated.raw == pytest.approx(SHARES)


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三", 3), ("十", 10), ("十五", 15), ("三十", 30), ("三十五", 35), ("一百", 100), ("一百零五", 105), ("两", 2)],
)
def test_chinese_numerals(numeral, value):
    assert chinese_number(numeral) == value


def test_chinese_numerals_decimal_and_digit_by_digit_and_not_a_numeral():
    assert chinese_number("二点五") == 2.5
    assert chinese_number("二〇") == 20
    assert chinese_number("重要") is None
    assert chinese_number("") is None


def test_chinese_tenths_with_a_half():
    assert normalise("两成半") == "25%"


def test_lists_by_option_number():
    text = "1. Very important: 30%\n2. Rather important: 40%\n3. Not very important: 20%\n4. Not at all important: 10%"
    assert raw(text) == SHARES
    assert raw("4: 10%, 3: 20%, 1: 30%, 2: 40%") == SHARES  # the order given does not matter
    assert raw("(1) 30%\n(2) 40%\n(3) 20%\n(4) 10%") == SHARES
    assert raw("Option 1 - 30%; option 2 - 40%; option 3 - 20%; option 4 - 10%") == SHARES
    assert raw("- **1. Very important**: 30%\n- **2. Rather important**: 40%\n- **3.** 20%\n- **4.** 10%") == SHARES


def test_lists_by_label_either_side_of_the_number():
    assert (
        raw("Very important: 30%, Rather important: 40%, Not very important: 20%, Not at all important: 10%") == SHARES
    )
    share_first = "About 30% would say very important, 40% rather important, 20% not very important and 10% not at all"
    assert raw(share_first + " important.") == SHARES
    # the longest label wins where one contains another ("Agree" in "Disagree" and "Strongly agree")
    assert raw("Strongly disagree 10%, disagree 20%, agree 40%, strongly agree 30%", AGREE) == (30.0, 40.0, 20.0, 10.0)


def test_option_numbers_before_labels_when_an_explanation_names_another_option():
    text = (
        "1. Very important: 30% (family matters more than rather important things)\n"
        "2. Rather important: 40%\n3. Not very important: 20%\n4. Not at all important: 10%"
    )
    assert raw(text) == SHARES


def test_bare_numbers_with_option_numbers_are_percent_points():
    stated = parse_stated("1: 30\n2: 40\n3: 20\n4: 10", EN)
    assert stated.raw == SHARES and stated.assigned_by == BY_REFERENCE
    assert raw("1. 0.3\n2. 0.4\n3. 0.2\n4. 0.1.") == pytest.approx(SHARES)  # proportions, one at a sentence's end


def test_ten_point_scale_by_option_number():
    labels = ["Never justifiable", *[""] * 8, "Always justifiable"]
    text = "\n".join(f"{i}: {share}%" for i, share in enumerate([40, 10, 10, 5, 5, 10, 5, 5, 5, 5], start=1))
    assert raw(text, labels) == (40.0, 10.0, 10.0, 5.0, 5.0, 10.0, 5.0, 5.0, 5.0, 5.0)


def test_sums_not_100_are_normalised_and_the_raw_sum_kept():
    stated = parse_stated(
        "Very important 60%, rather important 30%, not very important 20%, not at all important 10%", EN
    )
    assert stated.raw_sum == pytest.approx(120.0)
    assert stated.shares == pytest.approx((0.5, 0.25, 1 / 6, 1 / 12))
    short = parse_stated("1. 50%\n2. 30%\n3. 10%", EN)  # an option left out states 0
    assert short.raw == (50.0, 30.0, 10.0, 0.0) and short.raw_sum == pytest.approx(90.0)
    assert sum(short.shares) == pytest.approx(1.0)


def test_ranges_count_their_midpoint():
    text = "1. 40-50%\n2. 30%\n3. 15%\n4. 5%"
    assert raw(text) == (45.0, 30.0, 15.0, 5.0)
    assert raw("1. 40% to 50%\n2. 30%\n3. 15%\n4. 5%") == (45.0, 30.0, 15.0, 5.0)


def test_a_total_and_other_numbers_are_no_shares():
    text = (
        "Based on World Values Survey wave 7 data (2017-2022):\n"
        "Very important: 50%, Rather important: 30%, Not very important: 10%, Not at all important: 10%.\n"
        "Total: 100%"
    )
    stated = parse_stated(text, EN)
    assert stated.raw == (50.0, 30.0, 10.0, 10.0) and stated.raw_sum == pytest.approx(100.0)
    assert raw("30%, 40%, 20%, 10% (these add up to 100%)") == SHARES


def test_think_block_is_removed():
    assert raw("<think>maybe 90% say 1</think>30%, 40%, 20%, 10%") == SHARES


def test_the_first_number_an_option_gets_wins():
    assert raw("1: 30%\n2: 40%\n3: 20%\n4: 10%\n1: 99%") == SHARES


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Most people think family is very important.",
        "30%, 70%",  # two numbers for four options, none named
        "1: 0%, 2: 0%, 3: 0%, 4: 0%",  # nothing to normalise
        "大多数人认为非常重要。",
    ],
)
def test_no_usable_numbers_is_invalid(text):
    stated = parse_stated(text, EN if text.isascii() else ZH)
    assert stated.outcome == NO_NUMBERS
    assert stated.shares is None and stated.raw is None and stated.raw_sum is None


def test_refusals_are_told_apart_from_answers_without_numbers():
    assert classify_stated("I'm sorry, but I can't estimate that.", EN, "en").outcome == REFUSAL
    assert classify_stated("Most people think it is very important.", EN, "en").outcome == NO_NUMBERS
    # numbers make it an answer even when it hedges first
    hedged = classify_stated("I can't know exactly, but roughly: 30%, 40%, 20%, 10%", EN, "en")
    assert hedged.outcome == STATED and hedged.raw == SHARES


@pytest.mark.parametrize(
    "text",
    [
        "１．　３０％\n２．　４０％\n３．　２０％\n４．　１０％",  # full-width option numbers, digits and signs
        "４、１０％\n３、２０％\n２、４０％\n１、３０％",
        "（１）３０％；（２）４０％；（３）２０％；（４）１０％",
        "(4)10%; (1)30%; (3)20%; (2)40%",
        "第１项：３/１０，第２项：４/１０，第３项：２/１０，第４项：１/１０",  # full-width fractions
        "1. 30 percent\n2. 40 percent\n3. 20 percent\n4. 10 percent",
        "Option 1: 3 out of 10; option 2: 4 out of 10; option 3: 2 out of 10; option 4: 1 out of 10",
    ],
)
def test_forms_by_option_number(text):
    stated = parse_stated(text, EN)
    assert stated.outcome == STATED and stated.assigned_by == BY_REFERENCE
    assert stated.raw == pytest.approx(SHARES) and stated.raw_sum == pytest.approx(100.0)


def test_decimal_shares_keep_their_decimals():
    stated = parse_stated("1. 32.5%\n2. 37.5%\n3. ２０．５％\n4. 9.5%", EN)
    assert stated.raw == pytest.approx((32.5, 37.5, 20.5, 9.5)) and stated.raw_sum == pytest.approx(100.0)
    # a digit right after a leading "1." reads as a decimal number, not as option 1's share
    assert parse_stated("1.30%, 2.40%, 3.20%, 4.10%", EN).raw == pytest.approx((1.3, 2.4, 3.2, 4.1))


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("非常重要：五成，比较重要：三成，不太重要：两成，一点也不重要：一成", ZH, (50.0, 30.0, 20.0, 10.0)),
        ("１．　４０％\n２．　３０％\n３．　１０％\n４．　１０％", EN, (40.0, 30.0, 10.0, 10.0)),
        ("1/4, 1/4, 1/4, 1/2", EN, (25.0, 25.0, 25.0, 50.0)),
        ("0.2, 0.2, 0.2, 0.2", EN, (20.0, 20.0, 20.0, 20.0)),
    ],
)
def test_every_form_is_normalised_when_it_does_not_sum_to_100(text, labels, expected):
    stated = parse_stated(text, labels)
    assert stated.outcome == STATED and stated.raw == pytest.approx(expected)
    assert stated.raw_sum == pytest.approx(sum(expected)) and stated.raw_sum != pytest.approx(100.0)
    assert stated.shares == pytest.approx(tuple(v / sum(expected) for v in expected))


@pytest.mark.parametrize(
    ("text", "language", "outcome"),
    [
        ("抱歉，我无法估计这个比例。", "zh", REFUSAL),
        ("作为一个人工智能，我没有这方面的数据。", "zh", REFUSAL),
        ("这很难说，因人而异。", "zh", NO_NUMBERS),
        ("As an AI language model, I don't have access to survey data.", "en", REFUSAL),
        ("It depends on the region.", "en", NO_NUMBERS),
    ],
)
def test_an_answer_without_numbers_is_invalid_a_refusal_or_not(text, language, outcome):
    stated = classify_stated(text, ZH if language == "zh" else EN, language)
    assert stated.outcome == outcome and stated.shares is None and stated.raw_sum is None
