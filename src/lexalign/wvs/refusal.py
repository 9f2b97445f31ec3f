"""WVS generate mode: what an answer text says, as one of :data:`OUTCOMES`.

An answer that starts with an option number names that option; otherwise one that matches a refusal
pattern of its prompt language (``resources/refusals.yaml``; English ones are tried for every
language, since models often switch to English to refuse) is a ``refusal``; otherwise the option it
names (:func:`lexalign.wvs.scoring.parse_answer`: a number or a quoted label), or ``no valid option``.
A reasoning model's ``<think>`` block is removed first.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource
from lexalign.wvs.scoring import parse_answer, strip_think

REFUSALS_FILE = resource("refusals.yaml")
OPTION, REFUSAL, NO_OPTION = "option", "refusal", "no valid option"
OUTCOMES = (OPTION, REFUSAL, NO_OPTION)
_LEADING_NUMBER = re.compile(r"[\W_]*\d")


@dataclass(frozen=True)
class TextAnswer:
    """The outcome of one answer text and the 0-based option it names (None unless ``option``)."""

    outcome: str
    position: int | None = None


@functools.cache
def _patterns_file() -> dict[str, tuple[re.Pattern, ...]]:
    data = yaml.safe_load(REFUSALS_FILE.read_text(encoding="utf-8")) or {}
    compiled = {}
    for language, patterns in data.items():
        try:
            compiled[str(language)] = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        except re.error as exc:
            raise LexalignError(f"{REFUSALS_FILE}: {language}: bad pattern ({exc})") from None
    return compiled


def refusal_patterns(language: str) -> tuple[re.Pattern, ...]:
    """The language's refusal patterns, then the English ones (each once)."""
    patterns = _patterns_file()
    languages = [language] if language == "en" else [language, "en"]
    return tuple(p for code in languages for p in patterns.get(code, ()))


def is_refusal(text: str, language: str) -> bool:
    """Whether ``text`` (think block removed, NFKC) matches a refusal pattern of ``language`` or English."""
    clean = unicodedata.normalize("NFKC", strip_think(text or ""))
    return any(p.search(clean) for p in refusal_patterns(language))


def classify(text: str, labels: Sequence[str], language: str) -> TextAnswer:
    """The option an answer names, a refusal, or no valid option (see the module docstring for the order)."""
    clean = unicodedata.normalize("NFKC", strip_think(text or "")).strip()
    if _LEADING_NUMBER.match(clean):
        position = parse_answer(clean, labels)
        if position is not None:
            return TextAnswer(OPTION, position)
    if is_refusal(clean, language):
        return TextAnswer(REFUSAL)
    position = parse_answer(clean, labels)
    return TextAnswer(OPTION, position) if position is not None else TextAnswer(NO_OPTION)
