"""Tier 1, lexical alignment: generate association lists for the test cues and score them against
the human norms.

Public, stable API (documented in the README's tier-1 section):

- :func:`parse_associations` turns what a chat model wrote into a clean list of words;
- :func:`precision_at_k` is P@k for one cue;
- :func:`rank_agreement` is the Spearman rank agreement for one cue;
- :func:`score_table` scores many cues at once (the rule and the CLI use it);
- :func:`evaluate` is the ``lexical`` rule; :func:`score_associations_command` is
  ``lexalign score-associations``.

Words on both sides go through :func:`lexalign.text.normalise_text`, the ingest stage's own
normalisation, so a model word and a human response match exactly when they are the same word.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from lexalign import methods
from lexalign.errors import LexalignError
from lexalign.ingest import load_associations
from lexalign.text import normalise_expr, normalise_text
from lexalign.io import atomic_path, read_parquet_table, write_json

log = logging.getLogger(__name__)

DEFAULT_K = (5, 10, 20, 30, 40, 50)
MIN_OVERLAP = 2  # Spearman needs at least two overlapping words
PERSONA_METHOD = "prompt"
EVAL_METHODS = ("vanilla", "prompt", "sft", "rl", "sft_rl", "dpo")
DEFAULTS = {
    "backend": "hf",
    "batch_size": 32,
    "max_new_tokens": 256,
    "do_sample": False,
    "temperature": 0.7,
    "top_p": 0.9,
    "max_test_cues": None,
    "k": list(DEFAULT_K),
    "bootstrap_samples": 1000,
    "profile_words": 10,
    "vllm": {},
    "resources": {},
    "psycholinguistic": {},
}

# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_HAS_CJK = re.compile(f"[{_CJK}]")
_HAS_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")

# Reasoning blocks, and the special tokens chat models leave in raw text. Text after an end-of-turn
# token belongs to another turn, so parsing stops at the first special token after the answer began.
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_SPECIAL = re.compile(
    r"<\|[^<>|\s]{1,40}\|>|</?s>|\[/?INST\]|<<\s*/?SYS\s*>>"
    r"|<(?:eos|bos|pad|unk|mask|end_of_turn|start_of_turn|end_of_text|eot|endoftext|end)>",
    re.I,
)
# ①..⑳ (NFKC would turn them into bare digits) become bullets before normalisation.
_CIRCLED = re.compile("[\u2460-\u2473\u2776-\u277f\u2780-\u2793]")

# A list marker at the start of a line: bullets, "1.", "1)", "(1)", "1、", "#1", "[1]", "一、", "a)".
_MARKER = re.compile(
    r"^\s*(?:[-*+–—]+\s+|[•◦▪▫■□●○►▶➤✓✔☐]\s*|#?\(?\d{1,3}(?:[.)、:]|\s+[-–])(?!\d)\s*|#\d{1,3}\s+|\(\d{1,3}\)\s*"
    r"|[\[【]\d{1,3}[\]】]\s*|第?[一二三四五六七八九十]{1,3}[、.)]\s*|[a-z]\)\s*)"
)
# Numbered items run together on one line: "1. dog 2. cat 3. bone".
_INLINE_NUMBER = re.compile(f"(?:^|(?<=\\s)|(?<=[,;、{_CJK}]))(\\d{{1,3}})[.)、](?!\\d)\\s*")
_BARE_NUMBER = re.compile(r"^(\d{1,3})\s+(?=[^\d\s])")  # "1 puppy" lines, trusted only in a 1, 2, 3 run
_HEADING = re.compile(r"^\s*#{1,6}\s|^\s*(?:[-*_=~]\s*){3,}$|^\s*```")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)[^*_]+(?:\*\*|__)\s*:?\s*$")
_BOLD = re.compile(r"\*\*|__|~~|`+")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])|(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
# Where a line holds several sentences ("... leash. Note: ...", "好的！以下是..."): split there.
_SENTENCE_END = re.compile(r"(?<=[A-Za-z]{4}[.!?])\s+(?=\S)|(?<=[!?])\s+(?=\S)|(?<=[。!?])(?=\S)")
_LABEL = re.compile(r"(?<!\d):|:(?!\d)")  # a colon, but not the one in 10:30
_LIST_SEP = re.compile(r"[,;、|\t。]|\s*(?:→|->|=>|⇒|➜|•)\s*")
_ELLIPSIS = re.compile(r"\s*\.{3,}\s*")
_SPACED_SEP = re.compile(r"\s+(?:-|–|/|·)\s+")  # "puppy - bark - leash": a list when every part is short
_ZH_AND = re.compile(f"(?<=[{_CJK}]{{2}})(?:以及|和|及|与)(?=[{_CJK}]{{2}})")
_CJK_SPACE = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_EXPLANATION = re.compile(r"\s+[-–—=]+\s+|\s*[–—]{1,2}\s*")
_PAREN = re.compile(r"\s*[(【〔][^()【】〔〕]*[)】〕]")
_OPEN_PAREN = re.compile(r"\s*[(【〔][^)】〕]*$")  # a gloss cut off by a separator or the token cap
_QUOTES = "\"'“”‘’«»「」『』《》〈〉`"
_TRAILING_ETC = re.compile(
    r"(?:(?:^|[\s,])(?:etc\.?|and so on|and so forth|and (?:many )?more|and (?:many )?others|among others|and the like)|等等)$", re.I
)
_STOPWORDS = {"the", "a", "an", "of", "is", "are", "was", "to", "i", "me", "my", "you", "it", "this", "that", "with", "for", "makes", "think", "word"}
_LEADING_CONJ = re.compile(r"^(?:and|or|also|plus)\s+", re.I)

# The start of a line (or of the text before a colon) that is chat, not words.
_CHATTER = re.compile(
    r"(?:sure|certainly|of course|absolutely|okay|ok|alright|great(?=!| question)|happy to|i'?d be happy|here'?s"
    r"|here (?:is|are)|below (?:is|are)|the following|following (?:is|are)|as requested|these (?:are|words|associations)"
    r"|this (?:is|list)|i (?:hope|have|would|will|can|am|tried|included|think)|i'(?:ve|d|ll|m)|let me|feel free"
    r"|hope (?:this|that|these)|please (?:note|let)|note|notes|nb|keep in mind|in (?:summary|conclusion)|as an ai"
    r"|some (?:words|associations|common|of the)|(?:words|terms) (?:that|associated|related)|(?:associated|related) (?:words|terms)"
    r"|word associations?|associations? (?:for|with|of)|when i (?:read|see|hear|think))(?![\w'])"
    r"|好的|好吧|当然|没问题|可以的|以下|下面(?:是|列出)|这是|这些(?:词|是)|以上|希望|注意|请|备注|说明|总结|总之"
    r"|与.{1,12}(?:相关|有关)|关于|看到|联想(?:到的)?词",
    re.I,
)
# Labels that introduce the list or echo the task ("Cue: dog", "Associations: ...", "联想词：").
_LABEL_WORDS = {
    "cue", "word", "words", "target", "target word", "stimulus", "prompt", "input", "output", "answer", "answers",
    "response", "responses", "association", "associations", "associated words", "related words", "list", "result",
    "results", "final answer", "my answer", "my associations", "assistant", "model",
    "词", "词语", "提示词", "线索词", "目标词", "刺激词", "联想", "联想词", "联想词语", "回答", "答案", "答", "结果", "列表", "输出",
}
_NOTE_WORDS = {"note", "notes", "nb", "ps", "p.s", "remark", "disclaimer", "注", "注意", "备注", "说明", "提示"}
_FILLER = {"etc", "etc.", "and so on", "and more", "and many more", "many more", "others", "more", "等", "等等", "其他", "其它"}
_MAX_WORDS = 5  # longer "items" are sentences, not associations
_MAX_CJK_CHARS = 10


def _is_cjk_language(lang: str) -> bool:
    return str(lang).lower().replace("_", "-").split("-")[0] in {"zh", "cmn", "yue", "wuu", "ja", "ko"}


def _cut_special_tokens(text: str) -> str:
    text = _THINK.sub(" ", text)
    while True:
        match = _SPECIAL.search(text)
        if match is None:
            return text
        if text[: match.start()].strip():
            return text[: match.start()]
        text = text[match.end() :]


def _drop_incomplete_tail(text: str) -> str:
    """A generation cut by the token cap ends inside a word: drop what follows the last separator."""
    stripped = text.rstrip()
    cut = max(stripped.rfind(sep) for sep in (",", ";", "、", "\n", "|", "。"))
    return stripped[:cut] if cut > 0 else text


def _pseudo_lines(text: str) -> list[str]:
    """Lines of text that may hold words: headings, rules and code fences dropped, inline numbered
    lists and run-on sentences split apart."""
    raw_lines = text.splitlines()
    bare = [int(m.group(1)) for m in map(_BARE_NUMBER.match, raw_lines) if m]
    strip_bare = len(bare) >= 2 and _consecutive(bare)
    lines = []
    for line in raw_lines:
        if _HEADING.match(line) or _BOLD_LINE.match(line):  # "## Animals", "---", "**Animals:**", "```"
            continue
        if strip_bare:
            line = _BARE_NUMBER.sub("", line)
        line = _BOLD.sub("", line).strip().lstrip("> ").strip()
        numbers = list(_INLINE_NUMBER.finditer(line))
        if len(numbers) >= 2 and _consecutive([int(m.group(1)) for m in numbers]):
            starts = [m.start() for m in numbers]
            lines.extend(_SENTENCE_END.split(line[: starts[0]]))
            lines.extend(line[a:b] for a, b in zip(starts, [*starts[1:], len(line)]))
        else:
            lines.extend(_SENTENCE_END.split(line))
    return [line.strip() for line in lines if line.strip()]


def _consecutive(numbers: list[int]) -> bool:
    return all(b == a + 1 for a, b in zip(numbers, numbers[1:]))


def _is_short(piece: str) -> bool:
    piece = piece.strip()
    if _HAS_CJK.search(piece):
        return len(re.sub(r"\s", "", piece)) <= 8
    return 0 < len(piece.split()) <= 4


def _norm_label(text: str) -> str:
    return normalise_text(_EMPHASIS.sub(r"\1\2", text)).strip(_QUOTES + " ")


def _split_list(text: str, cjk: bool) -> list[str]:
    pieces = []
    for piece in _LIST_SEP.split(text):
        parts = _SPACED_SEP.split(piece)
        pieces.extend(parts if len(parts) >= 3 and all(_is_short(p) for p in parts) else [piece])
    if cjk:
        pieces = [p for piece in pieces for p in _CJK_SPACE.split(piece)]
        if len(pieces) >= 2:  # "宠物、忠诚和骨头": the last two joined by "and"
            last = _ZH_AND.split(pieces[-1].strip())
            if len(last) == 2 and all(len(p) <= 4 for p in last):
                pieces[-1:] = last
    return [p for p in pieces if p.strip()]


def _is_chatter(text: str) -> bool:
    """Chat rather than words: starts like a preamble or note and is more than a lone word."""
    text = text.strip()
    lowered = text.lower().lstrip(_QUOTES + "(*- ")
    if not _CHATTER.match(lowered):
        return False
    if re.search(r"[!.:,;?。]$", text):
        return True
    pieces = _LIST_SEP.split(text)
    if len(pieces) >= 3 and all(_is_short(p) for p in pieces):  # "看到，眼睛，视觉" is a list
        return False
    return len(lowered.split()) >= 3 or (bool(_HAS_CJK.search(lowered)) and len(lowered) > 4)


def _is_sentence(text: str) -> bool:
    """Ends like a sentence and its comma-separated pieces are long: prose, not a list."""
    text = text.strip()
    if not re.search(r"[.!?。]$", text):
        return False
    pieces = [p.strip() for p in re.split(r"[,、;]", text) if p.strip()]
    if _HAS_CJK.search(text):
        return sum(len(p) for p in pieces) / len(pieces) > 6
    words = [len(p.split()) for p in pieces]
    return sum(words) >= 6 and sum(words) / len(words) >= 3


def _introduces_list(head: str, cue: str | None) -> bool:
    """Whether the text before a colon is a preamble or a label ("Here are ...", "Cue", the cue itself)."""
    label = _norm_label(head)
    if label in _LABEL_WORDS or _CHATTER.match(label) or (cue is not None and label == cue):
        return True
    if cue is not None and re.search(f"[{re.escape(_QUOTES)}]\\s*{re.escape(cue)}\\s*[{re.escape(_QUOTES)}]", head.lower()):
        return True
    return not _is_short(head)


def _line_items(line: str, cue: str | None, cjk: bool) -> list[str]:
    """The candidate items of one line, not yet cleaned."""
    marker = _MARKER.match(line)
    listed = marker is not None and bool(line[marker.end() :].strip())
    body = _drop_parentheses(_EMPHASIS.sub(r"\1\2", line[marker.end() :] if listed else line)).strip()
    label = _LABEL.search(body)
    if label is not None:
        head, tail = body[: label.start()].strip(), body[label.end() :].strip()
        if _norm_label(head) in _NOTE_WORDS or not tail:  # "Note: ...", "Here are some words:"
            return []
        tail_items = _split_list(tail, cjk)
        if not head or _introduces_list(head, cue):
            return tail_items
        head_items = _split_list(head, cjk)
        if len(head_items) >= 2:  # "puppy, bark, leash: a strap ..." -- the colon explains the last word
            return head_items + (tail_items if all(_is_short(p) for p in tail_items) else [])
        if len(tail_items) >= 2 and all(_is_short(p) for p in tail_items):
            return tail_items  # "Pets: cat, hamster": a category label, then words
        return [head]  # "Leash: used to walk a dog": a word, then an explanation
    if not listed and (_is_chatter(body) or _is_sentence(body)):
        return []
    return _split_list(body, cjk)


def _clean_item(item: str, cjk: bool) -> str:
    item = _EMPHASIS.sub(r"\1\2", item).strip()
    marker = _MARKER.match(item)
    if marker is not None and item[marker.end() :].strip():
        item = item[marker.end() :]
    item = _drop_parentheses(item, unclosed=True)
    item = _EXPLANATION.split(item, maxsplit=1)[0]
    item = _TRAILING_ETC.sub("", item.strip().rstrip(".!?。 ")).strip()
    item = _strip_symbols(item).strip(_QUOTES + " ")
    if not cjk:
        item = _LEADING_CONJ.sub("", item)
    return normalise_text(_drop_gloss(item, cjk))


def _strip_symbols(text: str) -> str:
    """Emoji and other symbols at either end ("🐶 puppy", "✅ walk"); letters, digits and
    punctuation stay for normalise_text."""
    start, end = 0, len(text)
    while start < end and (unicodedata.category(text[start]).startswith(("S", "C")) or text[start] in "\u200d\ufe0f "):
        start += 1
    while end > start and (unicodedata.category(text[end - 1]).startswith(("S", "C")) or text[end - 1] in "\u200d\ufe0f "):
        end -= 1
    return text[start:end]


def _drop_parentheses(text: str, unclosed: bool = False) -> str:
    """"pizza（比萨）" -> "pizza" (NFKC already made the brackets ASCII); "(dog)" alone keeps "dog".
    ``unclosed`` also drops a gloss whose closing bracket was lost ("bark (young dog")."""
    without = _PAREN.sub("", text)
    without = (_OPEN_PAREN.sub("", without) if unclosed else without).strip()
    return without if re.search(r"\w", without) else text


def _drop_gloss(item: str, lang_cjk: bool) -> str:
    """"冰淇淋 ice cream" (zh) -> "冰淇淋"; "ice cream / 冰淇淋" (en) -> "ice cream": keep the prompt
    language's script where an item pairs a word with its translation in another script."""
    parts = [p.strip() for p in re.split(r"\s*/\s*|\s+", item) if p.strip()]
    if len(parts) < 2:
        return item
    cjk_parts = [bool(_HAS_CJK.search(p)) and not _HAS_LATIN.search(p) for p in parts]
    latin_parts = [bool(_HAS_LATIN.search(p)) and not _HAS_CJK.search(p) for p in parts]
    if not all(c or lat for c, lat in zip(cjk_parts, latin_parts)) or all(cjk_parts) or all(latin_parts):
        return item
    keep = cjk_parts if lang_cjk else latin_parts
    # Only a clean split: one run in each script ("狗 dog", "hot dog 热狗"), not interleaved.
    runs = sum(1 for a, b in zip(keep, keep[1:]) if a != b) + 1
    if runs != 2:
        return item
    joiner = "" if lang_cjk else " "
    return joiner.join(p for p, k in zip(parts, keep) if k)


def _remove_echo(text: str, echo: Iterable[str]) -> str:
    """Remove repeats of the prompt: whole messages, then their clauses of at least three words
    (or four Chinese characters), which catches partial repeats."""
    clauses = []
    for prompt_text in echo:
        if not prompt_text or not prompt_text.strip():
            continue
        text = text.replace(prompt_text.strip(), "\n")
        for clause in re.split(r"[,，。.!?！？;；:：\n]", prompt_text):
            clause = clause.strip()
            if len(clause.split()) >= 3 or len(_HAS_CJK.findall(clause)) >= 4:
                clauses.append(clause)
    for clause in sorted(set(clauses), key=len, reverse=True):
        text = text.replace(clause, "\n")
    return text


def _acceptable(word: str, cue: str | None) -> bool:
    if not word or word in _FILLER or (cue is not None and word == cue):
        return False
    if not re.search(r"\w", word):
        return False
    if _HAS_CJK.search(word) and len(re.sub(r"[^" + _CJK + "]", "", word)) > _MAX_CJK_CHARS:
        return False
    return len(word.split()) <= _MAX_WORDS


def parse_associations(
    text: str, lang: str, *, cue: str | None = None, truncated: bool = False, echo: Iterable[str] = ()
) -> list[str]:
    """Parse a model's answer into its list of associated words.

    Handles what chat models write: preambles ("Sure! Here are ...:"), numbered and bulleted lists,
    lists separated by commas, full-width commas, 、, semicolons (or spaces between Chinese words),
    quotes, markdown, category labels ("**Pets:** cat, hamster"), explanations after a dash or colon,
    parenthesised glosses ("pizza（比萨）" -> "pizza"), translations in another script, trailing
    notes, "etc.", and special tokens such as ``<end_of_turn>`` (parsing stops there).

    Every word is normalised like the ingest stage's responses (:func:`lexalign.text.normalise_text`:
    NFKC, lower case, single spaces, no edge punctuation); the list is deduplicated keeping the
    first occurrence. ``lang`` is the prompt language ("en", "zh", ...); Chinese-like languages also
    split on spaces between words and prefer Chinese over glosses. ``cue`` (optional) drops echoes of
    the cue, as the norms never count the cue as its own response. ``truncated`` (the generation hit
    the token cap) drops the unfinished last item. ``echo`` (optional) holds the prompt's texts,
    removed wherever the answer repeats them (small base models do). Never raises on any string;
    returns [] when nothing parses.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    cjk = _is_cjk_language(lang)
    cue_norm = normalise_text(cue) if cue else None
    text = _cut_special_tokens(text)
    text = _remove_echo(text, echo)
    text = _CIRCLED.sub("\n- ", text)
    text = unicodedata.normalize("NFKC", text)
    text = _ELLIPSIS.sub(", ", text)  # "宠物……忠诚……", "puppy... bark...": ellipses separate words
    if truncated:
        text = _drop_incomplete_tail(text)
    candidates: list[str] = []
    for line in _pseudo_lines(text):
        candidates.extend(_line_items(line, cue_norm, cjk))
    if not cjk and len(candidates) == 1 and len(candidates[0].split()) > _MAX_WORDS:
        # "puppy bark leash bone fetch": a list separated by spaces only.
        single = candidates[0].strip()
        tokens = single.split()
        if not re.search(r"[.!?]$", single) and not _CHATTER.match(single.lower()) and not _STOPWORDS & {t.lower() for t in tokens}:
            candidates = tokens
    words: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        word = _clean_item(candidate, cjk)
        if _acceptable(word, cue_norm) and word not in seen:
            seen.add(word)
            words.append(word)
    return words


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def precision_at_k(predicted: Sequence[str], human: set[str] | Collection[str], k: int) -> float:
    """P@k = |first k predicted words ∩ all human responses| / k.

    A list shorter than k counts its missing slots as misses. Words are compared exactly, so both
    sides should already be normalised (:func:`parse_associations` output vs ingested responses).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    human_set = human if isinstance(human, (set, frozenset)) else set(human)
    return len(set(predicted[:k]) & human_set) / k


def rank_agreement(predicted: Sequence[str], human_counts: Mapping[str, float]) -> float | None:
    """Spearman rho between the human frequency rank and the generated position of the words that
    occur on both lists; positive when the model lists frequent associations first.

    None when fewer than two words overlap or when the overlapping words tie in human frequency.
    """
    from scipy.stats import spearmanr

    overlap = [(position, human_counts[word]) for position, word in enumerate(dict.fromkeys(predicted)) if word in human_counts]
    if len(overlap) < MIN_OVERLAP:
        return None
    positions, counts = zip(*overlap)
    if len(set(counts)) < 2:
        return None
    rho = spearmanr(positions, [-c for c in counts]).statistic
    return None if math.isnan(rho) else float(rho)


def bootstrap_ci(values: Iterable[float], samples: int, seed: int, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap CI of the mean over cues (NaN values dropped); None without data."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    data = data[~np.isnan(data)]
    if data.size == 0 or samples < 1:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // data.size)  # bound the index matrix's memory
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = data[rng.integers(0, data.size, size=(stop - start, data.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return [_round(low), _round(high)]


def summarise(values: Iterable[float | None], samples: int, seed: int) -> dict:
    """Mean over cues, its bootstrap 95% CI and the number of cues it averages."""
    data = [float(v) for v in values if v is not None and not math.isnan(v)]
    return {
        "mean": _round(sum(data) / len(data)) if data else None,
        "ci95": bootstrap_ci(data, samples, seed),
        "n_cues": len(data),
    }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


def pk_column(k: int) -> str:
    return f"p_at_{k}"


def score_table(
    generations: pl.DataFrame,
    human: pl.DataFrame,
    ks: Sequence[int] = DEFAULT_K,
    bootstrap_samples: int = 1000,
    seed: int = 42,
) -> tuple[pl.DataFrame, dict]:
    """Score parsed lists against the norms.

    ``generations`` has one row per cue with ``cue`` and ``parsed`` (list of normalised words);
    ``human`` has ``cue, response, count`` rows (other cues are ignored). Returns the per-cue table
    (P@k columns, overlap, Spearman, list length, ``unparsable``) and the summary: means with
    bootstrap CIs over cues, counts of unparsable lists and of cues without norms.
    """
    ks = sorted(set(int(k) for k in ks))
    gens = generations.select(
        pl.col("cue").cast(pl.String),
        pl.col("parsed").cast(pl.List(pl.String)).list.drop_nulls().list.unique(maintain_order=True),
    )
    human = human.select(pl.col("cue"), pl.col("response").alias("word"), pl.col("count").cast(pl.Int64))
    human = human.join(gens.select("cue"), on="cue", how="semi")
    normed = gens.join(human.select("cue").unique(), on="cue", how="semi")
    without_norms = gens.join(normed.select("cue"), on="cue", how="anti")["cue"].to_list()
    hit = pl.col("count").is_not_null()
    long = (
        normed.select("cue", pl.col("parsed").alias("word"))
        .explode("word")
        .drop_nulls("word")
        .with_columns(pl.int_range(pl.len()).over("cue").alias("position"))
        .join(human, on=["cue", "word"], how="left")
    )
    per_word = long.group_by("cue").agg(
        *[(hit & (pl.col("position") < k)).sum().truediv(k).alias(pk_column(k)) for k in ks],
        hit.sum().cast(pl.UInt32).alias("n_overlap"),
        pl.corr(-pl.col("count").filter(hit), pl.col("position").filter(hit), method="spearman").alias("spearman"),
    )
    per_cue = (
        normed.with_columns(pl.col("parsed").list.len().cast(pl.UInt32).alias("n_words"))
        .join(human.group_by("cue").agg(pl.len().cast(pl.UInt32).alias("n_human_types")), on="cue", how="left")
        .join(per_word, on="cue", how="left")
        .with_columns(
            *[pl.col(pk_column(k)).fill_null(0.0) for k in ks],
            pl.col("n_overlap").fill_null(0),
            pl.when((pl.col("n_overlap") >= MIN_OVERLAP) & pl.col("spearman").is_not_nan())
            .then(pl.col("spearman"))
            .otherwise(None)
            .alias("spearman"),
            (pl.col("n_words") == 0).alias("unparsable"),
        )
        .select("cue", "n_words", "n_human_types", *[pk_column(k) for k in ks], "n_overlap", "spearman", "unparsable")
        .sort("cue")
    )
    unparsable = per_cue.filter(pl.col("unparsable"))["cue"].to_list()
    tied = per_cue.filter((pl.col("n_overlap") >= MIN_OVERLAP) & pl.col("spearman").is_null()).height
    summary = {
        "n_cues": per_cue.height,
        "n_unparsable": len(unparsable),
        "unparsable_cues": unparsable[:50],
        "n_cues_without_norms": len(without_norms),
        "cues_without_norms": without_norms[:50],
        "mean_words_per_cue": _round(per_cue["n_words"].mean()) if per_cue.height else None,
        "precision_at_k": {str(k): summarise(per_cue[pk_column(k)].to_list(), bootstrap_samples, seed) for k in ks},
        "spearman": {
            **summarise(per_cue["spearman"].to_list(), bootstrap_samples, seed),
            "min_overlap": MIN_OVERLAP,
            "n_cues_tied": tied,
        },
        "bootstrap": {"samples": bootstrap_samples, "seed": seed, "level": 0.95, "over": "cues"},
    }
    return per_cue, summary


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------


@dataclass
class Generation:
    """One model answer: the raw text (up to, not including, the stop token), its length in tokens,
    and whether it ended on a stop token (False: it hit ``max_new_tokens``)."""

    raw: str
    n_tokens: int
    finished: bool


def prompt_token_ids(tokenizer, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Render a conversation with the model's chat template, ready for the assistant's turn."""
    text = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def generate(
    model_dir: str | os.PathLike,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    settings: Mapping,
    adapter_dir: str | os.PathLike | None = None,
    dtype: str = "auto",
    seed: int = 42,
) -> list[Generation]:
    """Generate one answer per conversation with the configured backend (``hf`` or ``vllm``)."""
    settings = {**DEFAULTS, **settings}
    backend = settings["backend"]
    if backend == "hf":
        return _generate_hf(model_dir, conversations, settings, adapter_dir, dtype, seed)
    if backend == "vllm":
        return _generate_vllm(model_dir, conversations, settings, adapter_dir, dtype, seed)
    raise LexalignError(f"config lexical.backend: {backend!r} is not one of hf, vllm")


def _generate_hf(model_dir, conversations, settings, adapter_dir, dtype, seed) -> list[Generation]:
    import copy

    import torch
    from tqdm.auto import tqdm

    from lexalign.models import load_model

    device_map = "auto" if torch.cuda.is_available() else None
    loaded = load_model(model_dir, adapter_dir, dtype=dtype, padding_side="left", device_map=device_map)
    model, tokenizer, stop = loaded.model, loaded.tokenizer, set(loaded.stop_token_ids)
    model.eval()
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = int(settings["max_new_tokens"])
    config.do_sample = bool(settings["do_sample"])
    if config.do_sample:
        config.temperature, config.top_p, config.top_k = float(settings["temperature"]), float(settings["top_p"]), None
    else:  # greedy: the model's sampling defaults would only raise warnings
        config.temperature = config.top_p = config.top_k = None
    prompts = [prompt_token_ids(tokenizer, conversation) for conversation in conversations]
    # Longest first: similar lengths share a batch (little padding), and memory trouble shows at once.
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    # As many batches as batch_size needs, of near-equal size (34 prompts at 32 -> 17 + 17, not 32 + 2).
    n_batches = max(1, math.ceil(len(order) / int(settings["batch_size"])))
    size = math.ceil(len(order) / n_batches) if order else 1
    batches = [order[start : start + size] for start in range(0, len(order), size)]
    results: list[Generation | None] = [None] * len(prompts)
    torch.manual_seed(seed)
    for batch in tqdm(batches, desc="generating", unit="batch", file=sys.stderr, mininterval=5):
        encoded = tokenizer.pad({"input_ids": [prompts[i] for i in batch]}, padding=True, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            output = model.generate(**encoded, generation_config=config)
        for i, row in zip(batch, output[:, encoded["input_ids"].shape[1] :].tolist()):
            end = next((j for j, token in enumerate(row) if token in stop), None)
            tokens = row if end is None else row[:end]
            results[i] = Generation(tokenizer.decode(tokens, skip_special_tokens=False), len(tokens), end is not None)
        log.info("generated %d of %d answers", sum(r is not None for r in results), len(results))
    return results  # type: ignore[return-value]


_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def _generate_vllm(model_dir, conversations, settings, adapter_dir, dtype, seed) -> list[Generation]:
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise LexalignError(
            f"config lexical.backend: 'vllm' is selected but vllm cannot be imported ({exc}); "
            "install it on a GPU machine (pip install 'lexalign[vllm]') or set lexical.backend: hf"
        ) from None
    from lexalign.models import load_tokenizer, read_manifest

    manifest = read_manifest(model_dir)
    tokenizer = load_tokenizer(model_dir)
    prompts = [{"prompt_token_ids": prompt_token_ids(tokenizer, conversation)} for conversation in conversations]
    options = dict(settings.get("vllm") or {})
    lora = None
    if adapter_dir is not None:
        rank = _adapter_rank(adapter_dir)
        options.update(enable_lora=True, max_lora_rank=next((r for r in _VLLM_LORA_RANKS if r >= rank), rank))
        lora = LoRARequest("lexalign-adapter", 1, str(adapter_dir))
    llm = vllm.LLM(
        model=manifest["weights_path"],
        tokenizer=manifest["weights_path"],
        dtype=dtype,
        seed=seed,
        trust_remote_code=bool(manifest.get("trust_remote_code", False)),
        **options,
    )
    sampling = vllm.SamplingParams(
        max_tokens=int(settings["max_new_tokens"]),
        temperature=float(settings["temperature"]) if settings["do_sample"] else 0.0,
        top_p=float(settings["top_p"]) if settings["do_sample"] else 1.0,
        stop_token_ids=list(manifest["stop_token_ids"]),
        seed=seed,
        skip_special_tokens=False,
    )
    outputs = llm.generate(prompts, sampling, use_tqdm=True, lora_request=lora)
    return [
        Generation(out.outputs[0].text, len(out.outputs[0].token_ids), out.outputs[0].finish_reason == "stop")
        for out in outputs
    ]


def _adapter_rank(adapter_dir: str | os.PathLike) -> int:
    path = Path(adapter_dir) / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexalignError(f"{adapter_dir}: no adapter_config.json (not a LoRA adapter directory)") from None
    ranks = [int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


# --------------------------------------------------------------------------------------------------
# The lexical rule
# --------------------------------------------------------------------------------------------------

MESSAGES = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
GENERATIONS_SCHEMA = {
    "cue": pl.String,
    "prompt": MESSAGES,
    "raw": pl.String,
    "parsed": pl.List(pl.String),
    "n_tokens": pl.UInt32,
    "finished": pl.Boolean,
}


def load_eval_table(path: str | os.PathLike, prompt_column: str) -> pl.DataFrame:
    """The templates stage's eval.parquet: one row per test cue with its chat prompts."""
    table = read_parquet_table(path, ("cue", prompt_column), "the templates stage's eval table")
    duplicated = table.filter(pl.col("cue").is_duplicated())["cue"].unique().to_list()
    if duplicated:
        raise LexalignError(f"{path}: cue {duplicated[0]!r} appears more than once")
    if table.height == 0:
        raise LexalignError(f"{path}: no test cues")
    return table.select("cue", pl.col(prompt_column).alias("prompt"))


def select_cues(table: pl.DataFrame, max_cues: int | None, seed: int) -> pl.DataFrame:
    """All cues, or a seeded random sample of ``max_cues`` of them; sorted by cue either way."""
    if max_cues is not None and table.height > max_cues:
        table = table.sort("cue").sample(n=max_cues, seed=seed)
    return table.sort("cue")


def evaluate(
    model_dir: str | os.PathLike,
    eval_path: str | os.PathLike,
    associations_path: str | os.PathLike,
    outputs: Mapping[str, str | os.PathLike],
    method: str,
    prompt_language: str,
    settings: Mapping,
    adapter_dir: str | os.PathLike | None = None,
    seed: int = 42,
    dtype: str = "auto",
    threads: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict:
    """The ``lexical`` rule: generate for the test cues, parse, score, profile; write ``outputs``
    (``scores``: JSON, ``generations`` and ``per_cue``: Parquet). Returns the scores."""
    from lexalign.psycholinguistic import profile  # it uses this module's bootstrap helpers

    settings = {**DEFAULTS, **settings}
    if method not in EVAL_METHODS:
        raise LexalignError(f"lexical: method {method!r} has no tier-1 evaluation (known: {', '.join(EVAL_METHODS)})")
    if methods.get(method).trained and not adapter_dir:
        raise LexalignError(f"lexical: method {method!r} is a trained method but no adapter directory was given")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    column = "prompt_persona" if method == PERSONA_METHOD else "prompt"
    table = select_cues(load_eval_table(eval_path, column), settings["max_test_cues"], seed)
    human = load_associations(associations_path).join(table.select("cue"), on="cue", how="semi")
    log.info("lexical %s: %d test cues, %s backend, prompts from %r", method, table.height, settings["backend"], column)

    answers = generate(model_dir, table["prompt"].to_list(), settings, adapter_dir=adapter_dir, dtype=dtype, seed=seed)
    parsed = [
        parse_associations(answer.raw, prompt_language, cue=cue, truncated=not answer.finished, echo=_message_texts(prompt))
        for cue, answer, prompt in zip(table["cue"].to_list(), answers, table["prompt"].to_list())
    ]
    generations = pl.DataFrame(
        {
            "cue": table["cue"],
            "prompt": table["prompt"],
            "raw": [a.raw for a in answers],
            "parsed": parsed,
            "n_tokens": [a.n_tokens for a in answers],
            "finished": [a.finished for a in answers],
        },
        schema=GENERATIONS_SCHEMA,
    )
    per_cue, summary = score_table(generations, human, settings["k"], settings["bootstrap_samples"], seed)
    if summary["n_unparsable"]:
        log.warning("%d of %d generations gave no parsable word; they score zero", summary["n_unparsable"], summary["n_cues"])
    psycho, psycho_per_cue = profile(
        generations.select("cue", "parsed"), human, prompt_language, settings["psycholinguistic"],
        n_words=settings["profile_words"], bootstrap_samples=settings["bootstrap_samples"], seed=seed,
    )
    per_cue = per_cue.join(psycho_per_cue, on="cue", how="left")
    scores = {
        **dict(labels or {}),
        "method": method,
        "prompt_language": prompt_language,
        "prompt_column": column,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "generation": {
            key: settings[key] for key in ("backend", "batch_size", "max_new_tokens", "do_sample", "temperature", "top_p", "max_test_cues")
        }
        | {"seed": seed, "n_hit_token_cap": int((~generations["finished"]).sum())},
        **summary,
        "psycholinguistic": psycho,
        "notes": _notes(summary, psycho, generations),
    }
    with atomic_path(outputs["generations"]) as tmp:
        generations.write_parquet(tmp)
    with atomic_path(outputs["per_cue"]) as tmp:
        per_cue.write_parquet(tmp)
    write_json(outputs["scores"], scores)
    log.info("lexical %s: %s", method, format_scores(scores).replace("\n", " | "))
    return scores


def _message_texts(messages: Iterable[Mapping[str, str]] | None) -> list[str]:
    return [m["content"] for m in messages or [] if m and m.get("content")]


def _notes(summary: Mapping, psycho: Mapping, generations: pl.DataFrame) -> list[str]:
    notes = []
    if summary["n_unparsable"]:
        notes.append(f"{summary['n_unparsable']} of {summary['n_cues']} generations gave no parsable word and score zero")
    if summary["n_cues_without_norms"]:
        notes.append(f"{summary['n_cues_without_norms']} cues have no human responses in the norms and are not scored")
    capped = int((~generations["finished"]).sum()) if "finished" in generations.columns else 0
    if capped:
        notes.append(f"{capped} generations hit max_new_tokens; their unfinished last item was dropped")
    notes.extend(psycho.get("notes", []))
    return notes


def format_scores(scores: Mapping) -> str:
    """A small plain-text table of the averaged numbers."""
    rows = [("metric", "mean", "95% CI", "cues")]
    for k, value in scores["precision_at_k"].items():
        rows.append((f"P@{k}", _fmt(value["mean"]), _fmt_ci(value["ci95"]), str(value["n_cues"])))
    rho = scores["spearman"]
    rows.append(("Spearman", _fmt(rho["mean"]), _fmt_ci(rho["ci95"]), str(rho["n_cues"])))
    for measure, result in scores.get("psycholinguistic", {}).get("measures", {}).items():
        if "skipped" in result:
            rows.append((measure, "skipped", "", ""))
            continue
        for side in ("model", "human"):
            rows.append((f"{measure} ({side})", _fmt(result[side]["mean"]), _fmt_ci(result[side]["ci95"]), str(result[side]["n_cues"])))
        test = result["wilcoxon"]
        if test.get("p_value") is not None:
            rows.append((f"{measure} Wilcoxon p", _fmt(test["p_value"]), "", str(test["n_pairs"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    head = f"{scores['n_cues']} cues scored, {scores['n_unparsable']} unparsable, {scores['n_cues_without_norms']} without norms"
    return "\n".join([head, *lines])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


# --------------------------------------------------------------------------------------------------
# lexalign score-associations
# --------------------------------------------------------------------------------------------------


def read_generations(path: str | os.PathLike, lang: str) -> pl.DataFrame:
    """A generations file (CSV/TSV, JSONL, JSON, Parquet) with ``cue`` and ``raw`` or ``parsed``,
    as one row per normalised cue with its parsed list."""
    path = Path(path)
    table = _read_table(path)
    columns = {name.strip().lower(): name for name in table.columns}
    if "cue" not in columns or not ({"raw", "parsed"} & set(columns)):
        found = ", ".join(table.columns) or "none"
        raise LexalignError(f"{path}: generations need a 'cue' column and a 'raw' or 'parsed' column (found: {found})")
    cues = table[columns["cue"]].cast(pl.String, strict=False)
    empty = [i for i, cue in enumerate(cues.to_list()) if cue is None or not normalise_text(cue)]
    if empty:
        raise LexalignError(f"{path}: {len(empty)} row(s) have an empty cue (first at data row {empty[0] + 1})")
    cue_list = [normalise_text(cue) for cue in cues.to_list()]
    finished = _booleans(table[columns["finished"]]) if "finished" in columns else [True] * table.height
    prompts = _prompt_texts(table[columns["prompt"]]) if "prompt" in columns else [[]] * table.height
    if "raw" in columns:
        texts = table[columns["raw"]].cast(pl.String, strict=False).to_list()
        parsed = [
            parse_associations(t or "", lang, cue=c, truncated=f is False, echo=e)
            for t, c, f, e in zip(texts, cue_list, finished, prompts)
        ]
    else:
        column = table[columns["parsed"]]
        if isinstance(column.dtype, pl.List):
            parsed = [_clean_list(words or [], cue) for words, cue in zip(column.cast(pl.List(pl.String)).to_list(), cue_list)]
        else:
            parsed = [parse_associations(t or "", lang, cue=c) for t, c in zip(column.cast(pl.String, strict=False).to_list(), cue_list)]
    frame = pl.DataFrame({"cue": cue_list, "parsed": parsed}, schema={"cue": pl.String, "parsed": pl.List(pl.String)})
    duplicated = frame.filter(pl.col("cue").is_duplicated())["cue"].unique().sort().to_list()
    if duplicated:
        raise LexalignError(f"{path}: cue {duplicated[0]!r} appears more than once; give one generation per cue")
    return frame


def _prompt_texts(column: pl.Series) -> list[list[str]]:
    """The prompt column of a generations file: chat messages (as the rule writes them) or plain text."""
    if isinstance(column.dtype, pl.List) and isinstance(column.dtype.inner, pl.Struct):
        return [_message_texts(messages) for messages in column.to_list()]
    return [[text] if text else [] for text in column.cast(pl.String, strict=False).to_list()]


def _booleans(column: pl.Series) -> list[bool | None]:
    """A ``finished`` column as booleans, from Parquet/JSON booleans or CSV text ("true", "False", "1")."""
    if column.dtype == pl.Boolean:
        return column.to_list()
    text = column.cast(pl.String, strict=False).str.strip_chars().str.to_lowercase()
    return text.replace_strict({"true": True, "1": True, "false": False, "0": False}, default=None, return_dtype=pl.Boolean).to_list()


def _clean_list(words: Iterable[str | None], cue: str) -> list[str]:
    cleaned = (normalise_text(w) for w in words if w)
    return list(dict.fromkeys(w for w in cleaned if w and w != cue))


def _read_table(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        if suffix == ".json":
            return pl.read_json(path)
        if suffix in (".csv", ".tsv", ".txt"):
            with open(path, encoding="utf-8-sig") as handle:
                header = handle.readline()
            separator = "\t" if suffix == ".tsv" or header.count("\t") > header.count(",") else ","
            return pl.read_csv(path, separator=separator, infer_schema=False, encoding="utf8-lossy")
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise LexalignError(f"{path}: cannot read as {suffix.lstrip('.')} ({str(exc).splitlines()[0]})") from None
    raise LexalignError(f"{path}: unknown file type {suffix or '(none)'}; use .csv, .tsv, .jsonl, .json or .parquet")


def read_norms(path: str | os.PathLike) -> pl.DataFrame:
    """Human responses as ``cue, response, count``: an ingested associations Parquet, or a SWOW
    pooled strength file / raw participant file read and cleaned exactly like the ingest stage."""
    from lexalign.ingest import pooled_counts

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        table = read_parquet_table(path, ("cue", "response", "count"), "an ingested associations table")
        return (
            table.select(normalise_expr("cue").alias("cue"), normalise_expr("response").alias("response"), pl.col("count").cast(pl.Int64))
            .filter((pl.col("response") != "") & (pl.col("response") != pl.col("cue")))
            .group_by("cue", "response")
            .agg(pl.col("count").sum())
        )
    pooled, _ = pooled_counts(path, {"format": "auto"})
    return pooled.select("cue", "response", pl.col("count").cast(pl.Int64))


def score_associations_command(argv: list[str] | None = None) -> int:
    """``lexalign score-associations``: score anyone's association lists against norms."""
    parser = argparse.ArgumentParser(
        prog="lexalign score-associations",
        description="Score generated association lists against human norms: P@k, Spearman rank agreement, "
        "bootstrap 95% CIs over cues, and the psycholinguistic profile where norms are available.",
    )
    parser.add_argument("--generations", required=True, metavar="FILE",
                        help="CSV/TSV/JSONL/JSON/Parquet with a 'cue' column and a 'raw' (model text) or 'parsed' (word list) column")
    parser.add_argument("--norms", required=True, metavar="FILE",
                        help="ingested associations.parquet, a SWOW pooled strength file (cue, response, R123, N, R123.Strength), "
                        "or a raw SWOW participant file (all participants: no culture filter)")
    parser.add_argument("--lang", required=True, help="prompt language of the generations: en or zh")
    parser.add_argument("--out", metavar="FILE", help="JSON to write (default: <generations>.scores.json)")
    parser.add_argument("--k", type=int, nargs="+", default=list(DEFAULT_K), metavar="K", help="P@k cut-offs (default: 5 10 20 30 40 50)")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap samples for the CIs (default 1000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-profile", action="store_true", help="skip the psycholinguistic profile")
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.k):
        parser.error("--k values must be at least 1")
    from lexalign.psycholinguistic import profile

    generations = read_generations(args.generations, args.lang)
    human = read_norms(args.norms).join(generations.select("cue"), on="cue", how="semi")
    if human.height == 0:
        raise LexalignError(f"{args.norms}: none of the {generations.height} cues in {args.generations} has responses in these norms")
    per_cue, summary = score_table(generations, human, args.k, args.bootstrap, args.seed)
    scores = {"generations": str(args.generations), "norms": str(args.norms), "prompt_language": args.lang, **summary}
    if not args.no_profile:
        psycho, _ = profile(generations, human, args.lang, {}, bootstrap_samples=args.bootstrap, seed=args.seed)
        scores["psycholinguistic"] = psycho
    scores["notes"] = _notes(summary, scores.get("psycholinguistic", {}), generations)
    scores["per_cue"] = per_cue.to_dicts()
    out = Path(args.out) if args.out else Path(args.generations).with_suffix(".scores.json")
    write_json(out, scores)
    print(format_scores(scores))
    for note in scores["notes"]:
        print(f"note: {note}")
    print(f"wrote {out}")
    return 0
