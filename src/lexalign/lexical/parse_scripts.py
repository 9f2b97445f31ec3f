"""Scripts in the tier-1 parser: which script each letter is in, and what a list in one language keeps
of an item written in several.

A model that drifts between scripts glues fragments of other scripts onto its words ("市场жение",
"热水ottle") or writes items of fragments only ("жение", "폼dma"). A list keeps the letters of its own
language's script and whole Latin words: SWOW-ZH participants answer "KTV", "DNA", "T恤" too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

HAN, KANA, HANGUL, LATIN, OTHER = "han", "kana", "hangul", "latin", "other"
MARK = "mark"  # a combining mark: part of the letter before it
# The scripts a list in each language is written in; every other language counts as Latin-script.
_TARGET_SCRIPTS = {
    "zh": frozenset({HAN}),
    "cmn": frozenset({HAN}),
    "yue": frozenset({HAN}),
    "wuu": frozenset({HAN}),
    "ja": frozenset({HAN, KANA}),
    "ko": frozenset({HANGUL, HAN}),
}
_LATIN_SCRIPT = frozenset({LATIN})
_HAN_MARKS = "々〆〇"
# Lower-case Latin glued onto a Chinese word is a subword fragment ("热水ottle", "树木assistant"); capitals and
# one or two letters are part of a real word ("T恤", "卡拉OK", "iPhone手机", "k歌").
_MIN_GLUED_FRAGMENT = 3
# "Football (足球)": a gloss is a translation, a short word; a longer text in brackets explains.
_MAX_GLOSS_CHARS = {HAN: 6, LATIN: 40}
_BEFORE_GLOSS = re.compile(r"([^\W\d_][\w'’\-. ]*?)[*_\"'“”‘’]*\s*\(([^()\n]{1,60})\)")
_GLOSS_PARTS = re.compile(r"\s*[,;/:，、；：]\s*")


def target_scripts(lang: str) -> frozenset[str]:
    return _TARGET_SCRIPTS.get(str(lang).lower().replace("_", "-").split("-")[0], _LATIN_SCRIPT)


def script(char: str) -> str | None:
    """The script of a letter (a combining mark: MARK); None for digits, punctuation, spaces, symbols."""
    category = unicodedata.category(char)
    if category[0] == "M":
        return MARK
    if category[0] != "L" and char not in _HAN_MARKS:
        return None
    name = unicodedata.name(char, "")
    if name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH")) or char in _HAN_MARKS:
        return HAN
    if name.startswith("LATIN"):
        return LATIN
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return KANA
    if name.startswith("HANGUL"):
        return HANGUL
    return OTHER


def has_script(text: str, scripts: Collection[str]) -> bool:
    return any(script(char) in scripts for char in text)


def _runs(text: str) -> list[tuple[str, int, int]]:
    """Maximal runs of letters of one script as (script, start, end); a combining mark extends its run."""
    runs: list[tuple[str, int, int]] = []
    for i, char in enumerate(text):
        kind = script(char)
        if kind is None:
            continue
        if runs and runs[-1][2] == i and kind in (runs[-1][0], MARK):
            runs[-1] = (runs[-1][0], runs[-1][1], i + 1)
        else:
            runs.append((OTHER if kind == MARK else kind, i, i + 1))
    return runs


def keep_target_script(item: str, targets: frozenset[str]) -> str:
    """The item as a word of a list written in ``targets``: fragments of other scripts cut off ("精神ائف" ->
    "精神", "barkение" -> "bark"); "" where only fragments are left ("жение", "폼dma", "3ائف"). Latin words
    stay in every list; an item without letters (a number) is left as it is."""
    runs = _runs(item)
    allowed = targets | _LATIN_SCRIPT
    fragments = [run for run in runs if run[0] not in allowed]
    if LATIN not in targets:
        fragments += [run for i, run in enumerate(runs) if _glued_latin_fragment(item, runs, i, targets)]
    if not fragments:
        return item
    cuts = sorted((start, end) for _, start, end in fragments)
    bounds = [0, *(edge for cut in cuts for edge in cut), len(item)]
    for start, end in zip(bounds[::2], bounds[1::2]):
        if has_script(item[start:end], targets):
            return item[start:end]
    return ""


def _glued_latin_fragment(item: str, runs: list[tuple[str, int, int]], i: int, targets: frozenset[str]) -> bool:
    kind, start, end = runs[i]
    if kind != LATIN or end - start < _MIN_GLUED_FRAGMENT or not item[start:end].islower():
        return False
    glued = [run for run in (runs[i - 1] if i else None, runs[i + 1] if i + 1 < len(runs) else None) if run]
    return any(run[0] in targets and (run[2] == start or run[1] == end) for run in glued)


def prefer_target_gloss(text: str, targets: frozenset[str]) -> str:
    """ "Football (足球)" in a Chinese list -> "足球", "足球 (football)" in an English one -> "football": where
    a word outside the list's script carries a short gloss in it, the gloss is the answer."""
    gloss_script = HAN if HAN in targets else LATIN

    def swap(match: re.Match) -> str:
        word, gloss = match.group(1), _gloss_word(match.group(2), targets, gloss_script)
        last_target = max((i for i, char in enumerate(word) if script(char) in targets), default=-1)
        foreign = re.search(r"[^\W\d_]", word[last_target + 1 :])
        # "长城ение（中国古代建筑）": a fragment glued onto a word of the list's script is no foreign word.
        if gloss is None or foreign is None or (last_target >= 0 and foreign.start() == 0):
            return match.group(0)
        return word[: last_target + 1 + foreign.start()] + gloss

    return _BEFORE_GLOSS.sub(swap, text)


def _gloss_word(bracketed: str, targets: frozenset[str], gloss_script: str) -> str | None:
    """The first part of a bracket in the list's script ("足球, zúqiú" -> "足球"; "zúqiú, football" ->
    "football"), if it is short enough to be a translation."""
    parts = [part for part in _GLOSS_PARTS.split(bracketed.strip()) if part]
    if gloss_script == HAN:
        parts = [run for part in parts for run in part.split()]
    for part in parts:
        if has_script(part, targets) and (gloss_script == HAN or part.isascii()):
            size = sum(script(char) == HAN for char in part) if gloss_script == HAN else len(part)
            return part if size <= _MAX_GLOSS_CHARS[gloss_script] else None
    return None
