"""Tier-2 option scoring on vLLM (config ``wvs.backend: vllm``): the same per-option probabilities as
:func:`lexalign.wvs.scoring.score_options`, from vLLM's ``prompt_logprobs``.

Same prompts, same answer tokens (:func:`lexalign.wvs.scoring.answer_tokens`), same distributions
(:func:`lexalign.wvs.scoring.distributions`): every option becomes one request, the prompt's tokens
followed by the option's, and the option's log-likelihood is the sum of the ``prompt_logprobs`` of its
tokens (vLLM always returns the logprob of the prompt's own token at each position, besides the top
ones). A number that is a prefix of another option's ("1" beside "10") is scored as "the number, then no
further digit": its request also asks for the :data:`DIGIT_TOP_K` most likely next tokens, and the
probability of those starting with a digit is taken off. Where those tokens leave more than
:data:`DIGIT_MASS_TOLERANCE` of the probability unseen (a flat next-token distribution, where an unseen
token could be a digit), that request alone is asked again for the full next-token distribution (``logprobs``
= the tokenizer's size; the engine is started with that ``max_logprobs``), so the result is the full one's
within the tolerance: a full distribution is a Python object per vocabulary entry (128k for Llama 3) per
request, 20 are nothing. All requests go to vLLM in one ``generate`` call (the few asked again in a
second), with the LoRA adapter as a ``LoRARequest``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

from lexalign.wvs.scoring import answer_tokens, digit_token_mask, distributions

log = logging.getLogger(__name__)

#: Next-token log-probabilities asked after a number that is a prefix of another option's.
DIGIT_TOP_K = 20
#: Probability the top tokens may leave unseen after such a number; above it the full distribution is asked.
DIGIT_MASS_TOLERANCE = 1e-4


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
    digit_tolerance: float = DIGIT_MASS_TOLERANCE,
) -> list[dict]:
    """Per item {logprobs, probs, probs_norm, valid_mass}, as :func:`lexalign.wvs.scoring.score_options`.

    ``llm`` is a ``vllm.LLM`` (started with ``max_logprobs`` >= ``len(tokenizer)``: a flat distribution after
    a number that is a prefix of another option is asked for in full), ``sampling_params`` the
    ``vllm.SamplingParams`` class, ``lora_request`` the adapter's ``LoRARequest`` or None, ``digit_tolerance``
    the unseen probability after such a number that :data:`DIGIT_TOP_K` tokens may leave.
    """
    requests, params, owners = [], [], []
    plain = sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
    top = sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=1, logprobs=DIGIT_TOP_K, detokenize=False)
    for item, (text, strings) in enumerate(zip(prompt_texts, answers)):
        prompt_ids, planned = answer_tokens(tokenizer, text, strings)
        for index, (tokens, terminated) in enumerate(planned):
            requests.append({"prompt_token_ids": list(prompt_ids) + list(tokens)})
            params.append(top if terminated else plain)
            owners.append((item, index, len(prompt_ids), tokens, terminated))
    log.info("scoring %d option sequences of %d items on vLLM", len(requests), len(prompt_texts))
    outputs = llm.generate(requests, params, use_tqdm=False, lora_request=lora_request) if requests else []
    flat = [i for i, owner in enumerate(owners) if owner[4] and _unseen(outputs[i]) > digit_tolerance]
    if flat:
        log.info("%d number option(s) with a flat next-token distribution: asked again in full", len(flat))
        full = sampling_params(
            max_tokens=1, temperature=0.0, prompt_logprobs=1, logprobs=len(tokenizer), detokenize=False
        )
        again = llm.generate([requests[i] for i in flat], [full] * len(flat), use_tqdm=False, lora_request=lora_request)
        for i, output in zip(flat, again):
            outputs[i] = output
    digits = _digit_ids(tokenizer) if any(owner[4] for owner in owners) else set()
    scores = [[math.nan] * len(strings) for strings in answers]
    for output, (item, index, start, tokens, terminated) in zip(outputs, owners):
        positions = output.prompt_logprobs
        total = sum(float(positions[start + j][token].logprob) for j, token in enumerate(tokens))
        if terminated:
            after = output.outputs[0].logprobs[0]  # the next-token distribution after the number (top or full)
            digit_mass = sum(math.exp(entry.logprob) for token, entry in after.items() if token in digits)
            total += math.log(max(1.0 - digit_mass, 1e-30))
        scores[item][index] = total
    return distributions(scores, answers)


def _unseen(output) -> float:
    """The probability the returned next-token log-probabilities leave out."""
    return max(0.0, 1.0 - sum(math.exp(entry.logprob) for entry in output.outputs[0].logprobs[0].values()))


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
