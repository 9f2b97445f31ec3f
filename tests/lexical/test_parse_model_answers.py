"""parse_associations on answers shaped like those of RL-trained 7-8B models (issue 23): a hand-written corpus
(fixtures/model_answers.yaml) and properties over generated mixed-script answers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lexalign.lexical.parse import parse_associations
from lexalign.lexical.parse_scripts import LATIN, has_script, target_scripts

ANSWERS = yaml.safe_load((Path(__file__).parent / "fixtures" / "model_answers.yaml").read_text(encoding="utf-8"))
CLASSES = {
    "glued_script",
    "latin_in_comma_list",
    "latin_in_numbered_list",
    "template_tokens",
    "gloss",
    "preamble_refusal",
}


def _answer_id(entry: dict) -> str:
    return f"{entry['class']}-{entry['lang']}-{entry['raw'][:24]!r}"


@pytest.mark.parametrize("entry", ANSWERS, ids=[_answer_id(e) for e in ANSWERS])
def test_model_answer_parses_to_its_list(entry):
    assert parse_associations(entry["raw"], entry["lang"], cue=entry["cue"]) == entry["expected"]


def test_corpus_covers_every_class():
    counts = Counter(entry["class"] for entry in ANSWERS)
    assert set(counts) == CLASSES
    assert min(counts.values()) >= 25
    assert {entry["lang"] for entry in ANSWERS} == {"en", "zh"}
    assert all(set(entry) == {"class", "lang", "cue", "raw", "expected"} for entry in ANSWERS)


# ------------------------------------------------------------------------------ generated mixed-script answers
ZH_WORDS = ["苹果", "森林", "老师", "电脑", "月亮", "春节", "大海", "音乐", "朋友", "骨头", "红色", "火车", "长城"]
ZH_WORDS += ["熊猫", "饺子", "书包", "雨伞", "医生", "咖啡", "足球", "天空", "花朵", "眼睛", "幸福", "星星", "茶"]
EN_WORDS = ["apple", "forest", "teacher", "computer", "moon", "ocean", "music", "friend", "bone", "red", "train"]
EN_WORDS += ["panda", "umbrella", "doctor", "coffee", "football", "sky", "flower", "eye", "happiness", "star"]
FRAGMENTS = ["жение", "ائف", "ทะเล", "שלום", "भारत", "폼", "김치", "ения", "ستان", "ский", "ottle", "dma"]
SPECIAL_TOKENS = ["<|eot_id|>", "<|reserved_special_token_7|>", "<end_of_turn>", "<|im_end|>", "</s>"]
SPECIAL_TOKENS += ["<|start_header_id|>assistant<|end_header_id|>\n\n", "<|im_start|>assistant\n"]
PREAMBLES = ["", "好的，我的联想词是：\n", "让我试试看：\n", "Sure! Here are my associations:\n", "以下是联想词：\n"]
CLOSINGS = ["", "\n希望这些联想词能帮到你！", "\nI hope this helps!", "\n这些词都与它有关。"]
LAYOUTS = ["numbered", "inline_numbered", "bullets", "，", "、", ", ", "\n", "；"]

# Any string of these pieces: characters, fragments, special tokens, markup.
mixed_text = st.lists(
    st.sampled_from(
        list("苹果森林 ,，、。.:：;\n-*()（）1234567890abcXYZ")
        + FRAGMENTS
        + SPECIAL_TOKENS
        + ["**", "...", "……", "\u200d", "🐶"]
    ),
    max_size=40,
).map("".join)


def _join(items: list[str], layout: str) -> str:
    if layout == "numbered":
        return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))
    if layout == "inline_numbered":
        return " ".join(f"{i}. {item}" for i, item in enumerate(items, 1))
    if layout == "bullets":
        return "\n".join(f"- {item}" for item in items)
    return layout.join(items)


@st.composite
def list_answers(draw, lang: str) -> tuple[str, list[str]]:
    """An answer holding at least three separated words of ``lang`` (returned too), with other-script
    fragments glued on or as items, Latin words, a special token, a preamble and a closing sentence. (In
    an English answer a Latin fragment glued onto a word makes one longer word, so only other scripts
    are glued there.)"""
    own = draw(st.lists(st.sampled_from(ZH_WORDS if lang == "zh" else EN_WORDS), min_size=3, max_size=8))
    glue = FRAGMENTS if lang == "zh" else [f for f in FRAGMENTS if not f.isascii()]
    items = []
    for word in own:
        glued = draw(st.sampled_from(["", "", *glue]))
        items.append(word + glued if draw(st.booleans()) else glued + word)
        extra = draw(st.sampled_from(["", "", "", *FRAGMENTS, *EN_WORDS[:4], "KTV"]))
        if extra:
            items.append(extra)
    token = draw(st.sampled_from(["", *SPECIAL_TOKENS]))
    if token:
        at = draw(st.integers(0, len(items) - 1))
        items[at] += token
    text = _join(items, draw(st.sampled_from(LAYOUTS)))
    return draw(st.sampled_from(PREAMBLES)) + text + draw(st.sampled_from(CLOSINGS)), own


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=80), mixed_text), lang=st.sampled_from(["en", "zh"]))
def test_never_raises_on_mixed_scripts(text, lang):
    assert isinstance(parse_associations(text, lang, cue="森林" if lang == "zh" else "forest"), list)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(mixed_text, list_answers("zh").map(lambda a: a[0]), list_answers("en").map(lambda a: a[0])),
    lang=st.sampled_from(["en", "zh"]),
)
def test_every_item_has_a_letter_of_the_target_script_or_latin(text, lang):
    """Numbers ("7", "520") have no letters at all and stay answers in both languages."""
    allowed = target_scripts(lang) | {LATIN}
    for word in parse_associations(text, lang):
        assert has_script(word, allowed) or not any(char.isalpha() for char in word), word


@settings(max_examples=200, deadline=None)
@given(answer=st.one_of(list_answers("zh").map(lambda a: ("zh", *a)), list_answers("en").map(lambda a: ("en", *a))))
def test_three_separated_words_are_all_kept(answer):
    """Never an empty list where three or more words of the language are separated: every one of them is kept."""
    lang, raw, own = answer
    words = parse_associations(raw, lang)
    assert words
    assert set(own) <= set(words)
