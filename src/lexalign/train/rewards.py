"""The ranking reward of the RL stage: Spearman rho between a model's "Final ranking" and the human order.

A ranking task shows K associates of a cue in random order; the model ranks them by how often people
gave them and ends with one line "<label>: w1, w2, ..." (the label is the prompt language's
``final_ranking_label``, e.g. "Final ranking" or "最终排序"). The list after the last label is read by
the tier-1 parser (:func:`lexalign.lexical.parse.parse_associations`: commas, 、, numbered or bulleted lines,
markdown), so words are normalised exactly like the norms (:func:`lexalign.core.text.normalise_text`).
Predicted words that are not in the gold list are dropped; output without a parsable ranking, or one
naming no gold word at all, scores -1 (the worst a ranking can do).

Two definitions of the padding for gold words the model left out (``definition``):

- ``corrected`` (default): each gold word's predicted rank (left-out words: K+1) against its human
  rank 1..K. Naming only the least frequent word scores -0.52 for K = 10: it is the worst-placed
  word, and every better one is missing.
- ``study``: the study's PPO reward function (Cultural-Lexis ``reward_func.py``): the human rank of
  each *predicted* word, in predicted order, padded with K+1 up to K entries, against 1..K. The
  padding goes on the predicted-position side, so the padded tail always looks "worst", and naming
  only the least frequent word scores +0.52 for K = 10 (a bug of the study's code, kept for exact
  reproduction: it rewards short lists of rare words).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

from lexalign.config.definitions import DEFINITIONS
from lexalign.core.text import normalise_text
from lexalign.lexical.parse import parse_associations

UNPARSABLE = -1.0


def _unique(words: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for word in words:
        word = normalise_text(word)
        if word and word not in seen:
            seen.add(word)
            out.append(word)
    return out


def parse_final_ranking(text: str, label: str, lang: str = "en") -> list[str] | None:
    """The words listed after the last "<label>" (case-insensitive), parsed by the tier-1 parser in
    the prompt language ``lang``; None if there is no label or no word after it."""
    if not isinstance(text, str) or not text or not label:
        return None
    text = unicodedata.normalize("NFKC", text)
    label = unicodedata.normalize("NFKC", label)
    found = list(re.finditer(re.escape(label), text, flags=re.IGNORECASE))
    if not found:
        return None
    rest = text[found[-1].end() :].lstrip(" *_:-—\t")
    words = _unique(parse_associations(rest, lang))
    return words or None


def spearman_reward(predicted: Sequence[str] | None, gold: Sequence[str], definition: str = "corrected") -> float:
    """Spearman rho between the model's order and the human order of the gold words.

    ``predicted`` is the model's order (None = unparsable); ``gold`` the human order, most frequent
    first. Words not in ``gold`` are dropped first; left-out gold words are padded with rank K+1 on
    the side that ``definition`` names (module docstring). No gold word named, or fewer than 2 gold
    words, gives -1.
    """
    from scipy.stats import spearmanr

    if definition not in DEFINITIONS:
        raise ValueError(f"reward definition {definition!r} is not one of {', '.join(DEFINITIONS)}")
    gold_words = _unique(gold)
    if predicted is None or len(gold_words) < 2:
        return UNPARSABLE
    gold_rank = {word: rank for rank, word in enumerate(gold_words, start=1)}
    kept = [word for word in _unique(predicted) if word in gold_rank]
    if not kept:
        return UNPARSABLE
    k = len(gold_words)
    if definition == "study":
        ranks = [gold_rank[word] for word in kept] + [k + 1] * (k - len(kept))
    else:
        position = {word: rank for rank, word in enumerate(kept, start=1)}
        ranks = [position.get(word, k + 1) for word in gold_words]
    if len(set(ranks)) < 2:  # constant ranks: Spearman is undefined
        return UNPARSABLE
    rho = spearmanr(list(range(1, k + 1)), ranks).statistic
    return float(rho) if rho == rho else UNPARSABLE


def ranking_reward(
    text: str, gold: Sequence[str], label: str, lang: str = "en", definition: str = "corrected"
) -> float:
    """Reward of one completion: parse its final ranking, then Spearman against the gold order."""
    return spearman_reward(parse_final_ranking(text, label, lang), gold, definition)


def _completion_text(completion) -> str:
    """A TRL completion: a string (standard format) or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    return "".join(
        str(message.get("content", "")) for message in completion if message.get("role", "assistant") == "assistant"
    )


def make_ranking_reward(label: str, lang: str = "en", definition: str = "corrected") -> Callable[..., list[float]]:
    """A TRL reward function (GRPO/RLOO) scoring each completion against its row's ``gold`` column."""
    if definition not in DEFINITIONS:
        raise ValueError(f"reward definition {definition!r} is not one of {', '.join(DEFINITIONS)}")

    def spearman_ranking(prompts=None, completions=(), gold=(), **_) -> list[float]:
        return [
            ranking_reward(_completion_text(c), g, label, lang, definition)
            for c, g in zip(completions, gold, strict=True)
        ]

    return spearman_ranking


def final_ranking_label(prompt_language: str, overrides: Mapping | None = None) -> str:
    """The "Final ranking" label the prompt language's ranking instruction asks for."""
    from lexalign.norms.templates import prompt_templates

    return prompt_templates(prompt_language, overrides)["final_ranking_label"]
