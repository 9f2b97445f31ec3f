"""Tier-2 answer scoring: each item's answer distribution from the model's logits, and answer-text parsing.

``score_options`` (``mode: logits``): the log-likelihood of every answer string as the continuation
of the chat prompt, renormalised over the item's options. The answer strings are the option numbers
"1".."N" or the option label texts (lm-evaluation-harness' multiple-choice convention). A number that
is a prefix of another one ("1" and "10") is scored as "1 and then no further digit", so "10" never
leaks into "1"; multi-token answers add up their tokens' log-probabilities. Both the raw renormalised
distribution (``probs``, like lm-evaluation-harness ``acc``) and the length-normalised one
(``probs_norm``: log-likelihood divided by the answer's characters, like ``acc_norm``) are returned.

``parse_answer`` (``mode: generate``) maps an answer text to an option.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lexalign.models.generation import cache_keyword

log = logging.getLogger(__name__)


@dataclass
class _Option:
    item: int
    index: int
    tokens: list[int]
    terminated: bool  # the number is a prefix of another option's number: score "k, then no digit"


@dataclass
class _Sequence:
    item: int
    tokens: list[int]
    prompt_len: int
    options: list[_Option] = field(default_factory=list)


def digit_token_mask(tokenizer, vocab_size: int):
    """Boolean tensor over the logits: tokens whose text starts with a digit (they would extend a number)."""
    import torch

    mask = torch.zeros(vocab_size, dtype=torch.bool)
    digits = set("0123456789０１２３４５６７８９")
    pieces = tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), vocab_size))))
    for i, piece in enumerate(pieces):
        if piece and piece[0] in digits:
            mask[i] = True
    return mask


def _continuation(tokenizer, prompt_text: str, prompt_ids: list[int], answer: str) -> list[int]:
    full = tokenizer(prompt_text + answer, add_special_tokens=False)["input_ids"]
    if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
        return full[len(prompt_ids) :]
    return tokenizer(answer, add_special_tokens=False)["input_ids"]


def answer_tokens(
    tokenizer, prompt_text: str, strings: Sequence[str]
) -> tuple[list[int], list[tuple[list[int], bool]]]:
    """The prompt's tokens, and per answer string its tokens after the prompt and whether it is scored
    as "the number, then no further digit" (a number that is a prefix of another option's)."""
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    out = []
    for answer in strings:
        terminated = answer.isdigit() and any(other != answer and other.startswith(answer) for other in strings)
        out.append((_continuation(tokenizer, prompt_text, prompt_ids, answer), terminated))
    return prompt_ids, out


def _plan(tokenizer, prompt_texts: Sequence[str], answers: Sequence[Sequence[str]]) -> list[_Sequence]:
    """The token sequences to run: per item the prompt, extended only where an option needs it."""
    sequences: list[_Sequence] = []
    for item, (text, strings) in enumerate(zip(prompt_texts, answers)):
        prompt_ids, planned = answer_tokens(tokenizer, text, strings)
        options = [_Option(item, index, tokens, terminated) for index, (tokens, terminated) in enumerate(planned)]
        # Each option needs the logits after prompt + its tokens[:-1] (+ the last token if terminated).
        needs = {tuple(o.tokens if o.terminated else o.tokens[:-1]): o for o in options}
        paths = sorted(needs, key=len, reverse=True)
        item_sequences: list[_Sequence] = []
        for path in paths:
            home = next(
                (s for s in item_sequences if tuple(s.tokens[s.prompt_len : s.prompt_len + len(path)]) == path), None
            )
            if home is None:
                home = _Sequence(item, prompt_ids + list(path), len(prompt_ids))
                item_sequences.append(home)
        for option in options:
            path = tuple(option.tokens if option.terminated else option.tokens[:-1])
            home = next(s for s in item_sequences if tuple(s.tokens[s.prompt_len : s.prompt_len + len(path)]) == path)
            home.options.append(option)
        sequences += item_sequences
    return sequences


def _shared_prefix(sequences: Sequence[_Sequence]) -> int:
    """Length of the token prefix all sequences share, leaving every sequence its answer positions."""
    if not sequences:
        return 0
    first = sequences[0].tokens
    limit = min(s.prompt_len for s in sequences) - 1
    n = 0
    while n < limit and all(s.tokens[n] == first[n] for s in sequences):
        n += 1
    return n


def score_options(
    model,
    tokenizer,
    prompt_texts: Sequence[str],
    answers: Sequence[Sequence[str]],
    batch_size: int,
    prefix_cache: bool = True,
) -> list[dict]:
    """Per item: answer log-likelihoods, raw and length-normalised distributions, valid mass.

    ``answers`` holds each item's answer strings (``option_numbers(n)`` or the option labels).
    Returns one dict per item with ``logprobs`` (log-likelihood of each answer string), ``probs``
    (softmax of logprobs), ``probs_norm`` (softmax of logprobs / characters of the answer string)
    and ``valid_mass`` (total probability the model puts on the item's answers).

    The token prefix every prompt shares (chat header, framing) is run once and its key/value cache
    reused by every batch (``prefix_cache``); the results are the same without it. (Running each
    item's own prompt once for all its label-text sequences was measured slower on CPU for the WVS
    prompts, about 100 tokens and 2-10 options: 35.6 vs 21.7 CPU-s on 10 items, Gemma 3 270M.)
    """

    sequences = _plan(tokenizer, prompt_texts, answers)
    vocab = model.get_output_embeddings().weight.shape[0]
    digit_mask = digit_token_mask(tokenizer, vocab).to(model.device)
    scores = [[math.nan] * len(strings) for strings in answers]
    keyword = cache_keyword(model) if prefix_cache else None
    shared = _shared_prefix(sequences) if keyword else 0
    cache = (
        _extend_cache(model, keyword, sequences[0].tokens if sequences else [], 0, shared, None)
        if shared >= 8
        else None
    )
    if cache is None:
        shared = 0
    log.info("scoring %d sequences in batches of %d (shared prefix: %d tokens)", len(sequences), batch_size, shared)
    order = sorted(sequences, key=lambda seq: -len(seq.tokens))  # similar lengths share a batch: less padding
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        logp, keep = _forward(model, tokenizer, batch, shared, keyword, cache)
        for row, seq in enumerate(batch):
            # kept position j predicts the token after prompt + extension[:offset + j]
            offset = (len(seq.tokens) - seq.prompt_len + 1) - keep
            for option in seq.options:
                total = 0.0
                for j, token in enumerate(option.tokens):
                    total += float(logp[row, j - offset, token])
                if option.terminated:
                    after = logp[row, len(option.tokens) - offset]
                    stop = 1.0 - float(after[digit_mask].exp().sum())
                    total += math.log(max(stop, 1e-30))
                scores[option.item][option.index] = total
    return distributions(scores, answers)


def distributions(scores: Sequence[Sequence[float]], answers: Sequence[Sequence[str]]) -> list[dict]:
    """Per item, from its answers' log-likelihoods: ``logprobs``, ``probs`` (renormalised over the answers),
    ``probs_norm`` (each divided by its answer's characters first) and ``valid_mass``."""
    out = []
    for item_scores, strings in zip(scores, answers):
        lp = np.asarray(item_scores, dtype=float)
        lengths = np.asarray([max(len(a), 1) for a in strings], dtype=float)
        out.append(
            {
                "logprobs": lp.tolist(),
                "probs": _softmax(lp).tolist(),
                "probs_norm": _softmax(lp / lengths).tolist(),
                "valid_mass": float(np.exp(lp).sum()),
            }
        )
    return out


def _extend_cache(model, keyword: str, tokens: Sequence[int], start: int, end: int, past):
    """The key/value cache of ``tokens[:end]``, computing ``tokens[start:end]`` on top of ``past``
    (the cache of ``tokens[:start]``, left untouched), passed and returned under ``keyword``
    (:func:`lexalign.models.generation.cache_keyword`); None for a model without a standard cache."""
    import copy

    import torch

    with torch.inference_mode():
        ids = torch.tensor([list(tokens[start:end])], device=model.device)
        extra = {}
        if past is not None:
            extra = {
                keyword: copy.deepcopy(past),
                "position_ids": torch.arange(start, end, device=model.device)[None],
            }
            extra["attention_mask"] = torch.ones((1, end), dtype=torch.long, device=model.device)
        # logits_to_keep=1: only the cache is wanted, never a full-vocabulary row per prefix token
        cache = getattr(model(input_ids=ids, use_cache=True, logits_to_keep=1, **extra), keyword, None)
    return cache if hasattr(cache, "batch_repeat_interleave") else None


def _forward(model, tokenizer, batch: Sequence[_Sequence], shared: int, keyword: str | None, cache):
    """Log-probabilities at each sequence's answer positions ([batch, keep, vocab]) and ``keep``."""
    import copy

    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(s.tokens) for s in batch) - shared
    keep = max(len(s.tokens) - s.prompt_len + 1 for s in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):  # left padding (after any cached prefix): every sequence ends in the last column
        tail = seq.tokens[shared:]
        ids[row, width - len(tail) :] = torch.tensor(tail)
        mask[row, width - len(tail) :] = 1
    positions = shared + (mask.cumsum(-1) - 1).clamp(min=0)
    extra: dict = {"use_cache": False}
    if cache is not None:
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(batch))
        mask = torch.cat([torch.ones((len(batch), shared), dtype=torch.long), mask], dim=1)
        extra = {keyword: past, "use_cache": True}
    with torch.inference_mode():
        logits = model(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            position_ids=positions.to(model.device),
            logits_to_keep=keep,
            **extra,
        ).logits
    return torch.log_softmax(logits.float(), dim=-1), keep


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x))
    return z / z.sum()


# --------------------------------------------------------------------------------------------------
# Generate mode: the answer text mapped to an option


_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)


def strip_think(text: str) -> str:
    """``text`` without a reasoning model's ``<think>...</think>`` block (closed or cut off)."""
    return _THINK.sub("", text)


def parse_answer(text: str, labels: Sequence[str]) -> int | None:
    """The 0-based option an answer text names: its first number if valid, else a quoted label.

    A reasoning model's ``<think>...</think>`` block (closed or cut off) is removed first.
    """
    text = unicodedata.normalize("NFKC", strip_think(text or ""))
    number = re.search(r"\d+", text)
    if number:
        value = int(number.group())
        return value - 1 if 1 <= value <= len(labels) else None
    lowered = text.lower()
    hits = [(len(label), i) for i, label in enumerate(labels) if label.strip() and label.strip().lower() in lowered]
    return max(hits)[1] if hits else None
