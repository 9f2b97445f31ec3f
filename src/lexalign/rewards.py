"""The ranking reward of the RL stage: Spearman rho between a model's "Final ranking" and the human order.

A ranking task shows K associates of a cue in random order; the model ranks them by how often people
gave them and ends with one line "<label>: w1, w2, ..." (the label is the prompt language's
``final_ranking_label``, e.g. "Final ranking" or "最终排序"). The reward is Spearman's rho between
each gold word's predicted rank and its human rank (its position in the gold list, most frequent
first). Predicted words that are not in the gold list are dropped before ranking; gold words the
model left out get rank K+1. Output without a parsable ranking, or one naming no gold word at all,
scores -1 (the worst a ranking can do).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

UNPARSABLE = -1.0
SEPARATORS = re.compile(r"[,，、;；]")
LIST_ITEM = re.compile(r"^\s*(?:\(?\d+\s*[.)）、:：]|[-*•·])\s*(.*?)\s*$")
INLINE_NUMBER = re.compile(r"(?:^|\s)\d+\s*[.)）、]\s*")
STRIP = " \t\"'`*_“”‘’「」『』《》()（）[]【】.。!！?？:："


def normalize_word(word: str) -> str:
    """NFKC, lower case, single spaces, no surrounding quotes/brackets/punctuation or list numbering."""
    text = unicodedata.normalize("NFKC", word).lower()
    match = LIST_ITEM.match(text)
    if match:
        text = match.group(1)
    return " ".join(text.strip(STRIP).split()).strip(STRIP)


def _unique(words: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for word in words:
        word = normalize_word(word)
        if word and word not in seen:
            seen.add(word)
            out.append(word)
    return out


def parse_final_ranking(text: str, label: str) -> list[str] | None:
    """The words of the last "<label>:" line, normalised and de-duplicated; None if there is none.

    The list may follow on the label's line (separated by , ， 、 ; or ；, or numbered inline as
    "1. a 2. b") or as a numbered or bulleted list on the lines below it.
    """
    if not text or not label:
        return None
    text = unicodedata.normalize("NFKC", text)
    label = unicodedata.normalize("NFKC", label)
    found = list(re.finditer(re.escape(label), text, flags=re.IGNORECASE))
    if not found:
        return None
    rest = text[found[-1].end():]
    first, _, below = rest.partition("\n")
    first = first.strip().lstrip(" *_:：-—").strip()
    if first.strip(STRIP):
        if SEPARATORS.search(first):
            words = SEPARATORS.split(first)
        elif len(INLINE_NUMBER.findall(first)) >= 2:
            words = INLINE_NUMBER.split(first)
        else:
            words = [first]
    else:
        words = []
        for line in below.splitlines():
            if not line.strip():
                if words:
                    break
                continue
            item = LIST_ITEM.match(line)
            if not item:
                break
            words.append(item.group(1))
    words = _unique(words)
    return words or None


def spearman_reward(predicted: Sequence[str] | None, gold: Sequence[str]) -> float:
    """Spearman rho between predicted and human ranks of the gold words (rank K+1 for left-out words).

    ``predicted`` is the model's order (None = unparsable); ``gold`` the human order, most frequent
    first. Words not in ``gold`` are dropped first. No gold word named, or fewer than 2 gold words,
    gives -1.
    """
    from scipy.stats import spearmanr

    gold_words = _unique(gold)
    if predicted is None or len(gold_words) < 2:
        return UNPARSABLE
    gold_set = set(gold_words)
    kept = [word for word in _unique(predicted) if word in gold_set]
    if not kept:
        return UNPARSABLE
    k = len(gold_words)
    position = {word: rank for rank, word in enumerate(kept, start=1)}
    predicted_ranks = [position.get(word, k + 1) for word in gold_words]
    if len(set(predicted_ranks)) < 2:  # only possible with a single gold word named and K = 1
        return UNPARSABLE
    rho = spearmanr(list(range(1, k + 1)), predicted_ranks).statistic
    return float(rho) if rho == rho else UNPARSABLE


def ranking_reward(text: str, gold: Sequence[str], label: str) -> float:
    """Reward of one completion: parse its final ranking, then Spearman against the gold order."""
    return spearman_reward(parse_final_ranking(text, label), gold)


def _completion_text(completion) -> str:
    """A TRL completion: a string (standard format) or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    return "".join(str(message.get("content", "")) for message in completion if message.get("role", "assistant") == "assistant")


def make_ranking_reward(label: str) -> Callable[..., list[float]]:
    """A TRL reward function (GRPO/RLOO) scoring each completion against its row's ``gold`` column."""

    def spearman_ranking(prompts=None, completions=(), gold=(), **_) -> list[float]:
        return [ranking_reward(_completion_text(c), g, label) for c, g in zip(completions, gold, strict=True)]

    return spearman_ranking


def final_ranking_label(prompt_language: str, overrides: Mapping | None = None) -> str:
    """The "Final ranking" label the prompt language's ranking instruction asks for."""
    from lexalign.templates import prompt_templates

    return prompt_templates(prompt_language, overrides)["final_ranking_label"]
