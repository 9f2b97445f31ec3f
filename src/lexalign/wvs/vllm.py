"""Tier-2 option scoring on vLLM (config ``wvs.backend: vllm``): the same per-option probabilities as
:func:`lexalign.wvs.scoring.score_options`, from vLLM's ``prompt_logprobs``.

Same prompts, same answer tokens (:func:`lexalign.wvs.scoring.answer_tokens`), same distributions
(:func:`lexalign.wvs.scoring.distributions`): every option becomes one request, the prompt's tokens
followed by the option's, and the option's log-likelihood is the sum of the ``prompt_logprobs`` of its
tokens (vLLM always returns the logprob of the prompt's own token at each position, besides the top
ones). A number that is a prefix of another option's ("1" beside "10") is scored as "the number, then no
further digit": its request also asks for the full next-token distribution after it (``logprobs`` = the
tokenizer's size; the engine is started with that ``max_logprobs``), and the probability of a token
starting with a digit is taken off. All requests go to vLLM in one ``generate`` call (it batches and
schedules them), with the LoRA adapter as a ``LoRARequest``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

from lexalign.wvs.scoring import answer_tokens, digit_token_mask, distributions

log = logging.getLogger(__name__)


def _digit_ids(tokenizer) -> set[int]:
    mask = digit_token_mask(tokenizer, len(tokenizer))
    return {int(i) for i in mask.nonzero().flatten().tolist()}


def score_options_vllm(
    llm,
    tokenizer,
    prompt_texts: Sequence[str],
    answers: Sequence[Sequence[str]],
    sampling_params,
    lora_request=None,
) -> list[dict]:
    """Per item {logprobs, probs, probs_norm, valid_mass}, as :func:`lexalign.wvs.scoring.score_options`.

    ``llm`` is a ``vllm.LLM`` (started with ``max_logprobs`` >= ``len(tokenizer)`` when a number option
    is a prefix of another), ``sampling_params`` the ``vllm.SamplingParams`` class, ``lora_request`` the
    adapter's ``LoRARequest`` or None.
    """
    requests, params, owners = [], [], []
    plain = sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
    full = None
    for item, (text, strings) in enumerate(zip(prompt_texts, answers)):
        prompt_ids, planned = answer_tokens(tokenizer, text, strings)
        for index, (tokens, terminated) in enumerate(planned):
            if terminated and full is None:
                full = sampling_params(
                    max_tokens=1, temperature=0.0, prompt_logprobs=1, logprobs=len(tokenizer), detokenize=False
                )
            requests.append({"prompt_token_ids": list(prompt_ids) + list(tokens)})
            params.append(full if terminated else plain)
            owners.append((item, index, len(prompt_ids), tokens, terminated))
    log.info("scoring %d option sequences of %d items on vLLM", len(requests), len(prompt_texts))
    outputs = llm.generate(requests, params, use_tqdm=False, lora_request=lora_request) if requests else []
    digits = _digit_ids(tokenizer) if full is not None else set()
    scores = [[math.nan] * len(strings) for strings in answers]
    for output, (item, index, start, tokens, terminated) in zip(outputs, owners):
        positions = output.prompt_logprobs
        total = sum(float(positions[start + j][token].logprob) for j, token in enumerate(tokens))
        if terminated:
            after = output.outputs[0].logprobs[0]  # the full next-token distribution after the number
            digit_mass = sum(math.exp(entry.logprob) for token, entry in after.items() if token in digits)
            total += math.log(max(1.0 - digit_mass, 1e-30))
        scores[item][index] = total
    return distributions(scores, answers)


class VllmScorer:
    """A vLLM engine for one WVS job: :meth:`score` has :func:`lexalign.wvs.scoring.score_options`'s
    results; ``tokenizer`` is the prepared model's (the prompts are rendered with it)."""

    def __init__(
        self,
        model_dir: str | os.PathLike,
        adapter_dir: str | os.PathLike | None,
        dtype: str,
        options: Mapping,
        seed: int = 42,
    ):
        from lexalign.models.generation import vllm_engine
        from lexalign.models.loading import load_tokenizer

        vocab = len(load_tokenizer(model_dir))
        self.engine = vllm_engine(model_dir, adapter_dir, dtype, seed, options, "wvs", max_logprobs=vocab)
        self.tokenizer = self.engine.tokenizer

    def score(self, prompt_texts: Sequence[str], answers: Sequence[Sequence[str]]) -> list[dict]:
        vllm = self.engine.vllm
        return score_options_vllm(
            self.engine.llm, self.tokenizer, prompt_texts, answers, vllm.SamplingParams, self.engine.lora
        )
