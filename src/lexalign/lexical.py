"""Tier 1, lexical alignment: generate association lists for the test cues and score them against
the human norms.

Public, stable API (documented in the README's tier-1 section):

- :func:`parse_associations` turns what a chat model wrote into a clean list of words;
- :func:`precision_at_k` is P@k for one cue;
- :func:`rank_agreement` is the Spearman rank agreement for one cue;
- :func:`score_table` scores many cues at once (the rule and the CLI use it);
- :func:`evaluate` is the ``lexical`` rule; :func:`score_associations_command` is
  ``lexalign score-associations``.

Words on both sides go through :func:`lexalign.ingest.normalise_text`, the ingest stage's own
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

from lexalign.errors import LexalignError
from lexalign.ingest import normalise_expr, normalise_text
from lexalign.io import atomic_path, write_json

log = logging.getLogger(__name__)

DEFAULT_K = (5, 10, 20, 30, 40, 50)
MIN_OVERLAP = 2  # Spearman needs at least two overlapping words
PERSONA_METHOD = "prompt"
EVAL_METHODS = ("vanilla", "prompt", "sft", "rl", "sft_rl", "dpo")
DEFAULTS = {
    "backend": "hf",
    "batch_size": 8,
    "max_new_tokens": 256,
    "do_sample": False,
    "temperature": 0.7,
    "top_p": 0.9,
    "max_test_cues": None,
    "k": list(DEFAULT_K),
    "bootstrap_samples": 1000,
    "profile_words": 10,
    "vllm": {},
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
_INLINE_NUMBER = re.compile(r"(?:^|(?<=\s)|(?<=[,;、]))(\d{1,3})[.)、](?!\d)\s*")
_HEADING = re.compile(r"^\s*#{1,6}\s|^\s*(?:[-*_=~]\s*){3,}$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)[^*_]+(?:\*\*|__)\s*:?\s*$")
_BOLD = re.compile(r"\*\*|__|~~|`+")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])|(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
# Where a line holds several sentences ("... leash. Note: ...", "好的！以下是..."): split there.
_SENTENCE_END = re.compile(r"(?<=[A-Za-z]{4}[.!?])\s+(?=[A-Z\"'“(*])|(?<=[!?])\s+(?=\S)|(?<=[。!?])(?=\S)")
_LABEL = re.compile(r"(?<!\d):|:(?!\d)")  # a colon, but not the one in 10:30
_LIST_SEP = re.compile(r"[,;、|\t。]|\s*(?:→|->|=>|⇒|➜|•)\s*")
_CJK_SPACE = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_EXPLANATION = re.compile(r"\s+[-–—=]+\s+|\s*[–—]{1,2}\s*")
_PAREN = re.compile(r"\s*[(\[【〔][^()\[\]【】〔〕]*[)\]】〕]")
_QUOTES = "\"'“”‘’«»「」『』《》〈〉`"
_TRAILING_ETC = re.compile(r"(?:(?:^|[\s,])(?:etc\.?|and so on|and more)|等等|(?:\.\.\.)+)$", re.I)
_LEADING_CONJ = re.compile(r"^(?:and|or|also|plus)\s+", re.I)

# The start of a line (or of the text before a colon) that is chat, not words.
_CHATTER = re.compile(
    r"(?:sure|certainly|of course|absolutely|okay|ok|alright|great(?=!| question)|happy to|i'?d be happy|here'?s"
    r"|here (?:is|are)|below (?:is|are)|the following|following (?:is|are)|as requested|these (?:are|words|associations)"
    r"|this (?:is|list)|i (?:hope|have|would|will|can|am|tried|included|think)|i'(?:ve|d|ll|m)|let me|feel free"
    r"|hope (?:this|that|these)|please (?:note|let)|note|notes|nb|keep in mind|in (?:summary|conclusion)|as an ai"
    r"|some (?:words|associations|common|of the)|(?:words|terms) (?:that|associated|related)|(?:associated|related) (?:words|terms)"
    r"|word associations?|associations? (?:for|with|of)|when i (?:read|see|hear|think))(?![\w'])"
    r"|好的|好吧|当然|没问题|可以的|以下|下面(?:是|列出)|这是|这些(?:词|是)|以上|希望|注意|请注意|备注|说明|总结|总之"
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
_FILLER = {"etc", "etc.", "and so on", "and more", "others", "more", "等", "等等", "其他", "其它"}
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
    """Lines of text that may hold words: headings and rules dropped, inline numbered lists and run-on
    sentences split apart."""
    lines = []
    for line in text.splitlines():
        if _HEADING.match(line) or _BOLD_LINE.match(line):  # "## Animals", "---", "**Animals:**"
            continue
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
    pieces = _LIST_SEP.split(text)
    if cjk:
        pieces = [p for piece in pieces for p in _CJK_SPACE.split(piece)]
    return [p for p in pieces if p.strip()]


def _is_chatter(text: str) -> bool:
    """Chat rather than words: starts like a preamble or note and is more than a lone word."""
    text = text.strip()
    lowered = text.lower().lstrip(_QUOTES + "(*- ")
    if not _CHATTER.match(lowered):
        return False
    if re.search(r"[!.:,;?。]$", text):
        return True
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
    item = _drop_parentheses(item)
    item = _EXPLANATION.split(item, maxsplit=1)[0]
    item = _TRAILING_ETC.sub("", item.strip()).strip().strip(_QUOTES + " ")
    if not cjk:
        item = _LEADING_CONJ.sub("", item)
    return normalise_text(_drop_gloss(item, cjk))


def _drop_parentheses(text: str) -> str:
    """"pizza（比萨）" -> "pizza" (NFKC already made the brackets ASCII); "(dog)" alone keeps "dog"."""
    without = _PAREN.sub("", text).strip()
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


def _acceptable(word: str, cue: str | None) -> bool:
    if not word or word in _FILLER or (cue is not None and word == cue):
        return False
    if not re.search(r"\w", word):
        return False
    if _HAS_CJK.search(word) and len(re.sub(r"[^" + _CJK + "]", "", word)) > _MAX_CJK_CHARS:
        return False
    return len(word.split()) <= _MAX_WORDS


def parse_associations(text: str, lang: str, *, cue: str | None = None, truncated: bool = False) -> list[str]:
    """Parse a model's answer into its list of associated words.

    Handles what chat models write: preambles ("Sure! Here are ...:"), numbered and bulleted lists,
    lists separated by commas, full-width commas, 、, semicolons (or spaces between Chinese words),
    quotes, markdown, category labels ("**Pets:** cat, hamster"), explanations after a dash or colon,
    parenthesised glosses ("pizza（比萨）" -> "pizza"), translations in another script, trailing
    notes, "etc.", and special tokens such as ``<end_of_turn>`` (parsing stops there).

    Every word is normalised like the ingest stage's responses (:func:`lexalign.ingest.normalise_text`:
    NFKC, lower case, single spaces, no edge punctuation); the list is deduplicated keeping the
    first occurrence. ``lang`` is the prompt language ("en", "zh", ...); Chinese-like languages also
    split on spaces between words and prefer Chinese over glosses. ``cue`` (optional) drops echoes of
    the cue, as the norms never count the cue as its own response. ``truncated`` (the generation hit
    the token cap) drops the unfinished last item. Never raises on any string; returns [] when
    nothing parses.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    cjk = _is_cjk_language(lang)
    cue_norm = normalise_text(cue) if cue else None
    text = _cut_special_tokens(text)
    text = _CIRCLED.sub("\n- ", text)
    text = unicodedata.normalize("NFKC", text)
    if truncated:
        text = _drop_incomplete_tail(text)
    candidates: list[str] = []
    for line in _pseudo_lines(text):
        candidates.extend(_line_items(line, cue_norm, cjk))
    if not cjk and len(candidates) == 1 and len(candidates[0].split()) > _MAX_WORDS:
        # "puppy bark leash bone fetch": a list separated by spaces only.
        single = candidates[0].strip()
        if not re.search(r"[.!?]$", single) and not _CHATTER.match(single.lower()):
            candidates = single.split()
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
    gens = generations.select(pl.col("cue").cast(pl.String), pl.col("parsed").cast(pl.List(pl.String)))
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
    if unparsable:
        log.warning("%d of %d generations gave no parsable word; they score zero", len(unparsable), per_cue.height)
    return per_cue, summary
