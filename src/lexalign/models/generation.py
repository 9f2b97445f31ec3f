"""Text generation for chat prompts, shared by tier 1 (association lists) and WVS generate mode.

- :func:`generate` loads a prepared model (and a LoRA adapter) and answers every conversation with the
  configured backend: ``hf`` (transformers ``generate``, CPU or GPU) or ``vllm`` (GPU, optional extra).
- :func:`generate_on_model` answers conversations with a model and tokenizer already in memory.

Both stop at the model's stop tokens (end of turn, end of text), return the text before the first
stop token, and say whether the answer finished or hit ``max_new_tokens``. On the hf backend a caller's
``complete`` test (e.g. "the list has enough words") also ends a row early.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.settings import field_names, from_section
from lexalign.models import memory
from lexalign.models.devices import require_gpus

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
#: vLLM engine settings unless the config's ``<section>.vllm`` gives them: a context for a prompt and its
#: answer, not the model's own (Llama 3.1's 131k tokens reserve a KV cache that leaves no room on a 40 GB
#: card), and a tenth of the GPU left for the CUDA context of a transformers model freed just before.
VLLM_DEFAULTS = {"max_model_len": 4096, "gpu_memory_utilization": 0.85}


@dataclass(frozen=True)
class Decoding:
    """How to decode: the decoding keys of a config section (``lexical``), typed.

    ``vllm`` holds the section's keyword arguments for ``vllm.LLM`` (its backend only)."""

    backend: str
    batch_size: int
    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    vllm: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise LexalignError(f"config lexical.backend: {self.backend!r} is not one of {', '.join(BACKENDS)}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any], where: str) -> Decoding:
        """The decoding keys of ``section`` (config path ``where``); its other keys are the caller's."""
        names = field_names(cls)
        return from_section(cls, {key: value for key, value in section.items() if key in names}, where)

    def record(self) -> dict[str, Any]:
        """What an output records of the decoding (the engine's own options aside)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name != "vllm"}


@dataclass
class Generation:
    """One model answer: the raw text (up to, not including, the stop token), its length in tokens,
    whether it ended on a stop token, and whether the caller's ``complete`` test ended it (neither: it hit
    ``max_new_tokens``)."""

    raw: str
    n_tokens: int
    finished: bool
    complete: bool = False


def prompt_token_ids(tokenizer, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Render a conversation with the model's chat template, ready for the assistant's turn."""
    text = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def generate(
    model_dir: str | os.PathLike,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    decoding: Decoding,
    adapter_dir: str | os.PathLike | None = None,
    dtype: str = "auto",
    seed: int = 42,
    complete: Callable[[int, str], bool] | None = None,
    gpus: int = 0,
    attn_implementation: str | None = None,
) -> list[Generation]:
    """Generate one answer per conversation with ``decoding.backend`` (``hf`` or ``vllm``).

    ``complete(i, text)`` (hf backend) ends conversation ``i``'s answer once it returns True. ``gpus``: what
    the job asked the scheduler for (fewer visible stops it: :func:`lexalign.models.devices.require_gpus`);
    ``attn_implementation``: config ``models.<name>.attn_implementation`` (hf backend).
    """
    require_gpus(gpus, "generation")
    memory.check_fits(model_dir, purpose="inference", dtype=dtype)  # a clear error before loading, not an OOM
    if decoding.backend == "vllm":
        return _generate_vllm(model_dir, conversations, decoding, adapter_dir, dtype, seed)
    loaded = load_for_generation(model_dir, adapter_dir, dtype, attn_implementation)
    return _generate_hf(loaded, conversations, decoding, seed, complete)


def load_for_generation(model_dir, adapter_dir, dtype: str, attn_implementation: str | None = None):
    """The prepared model (GPU when there is one) with its LoRA adapter merged, left padded: the
    ``LoadedModel`` whose ``model`` is ready for :func:`generate_on_model`. ``attn_implementation``: config
    ``models.<name>.attn_implementation`` (None: transformers' default), as in training."""
    import torch

    from lexalign.models.loading import load_model

    device_map = "auto" if torch.cuda.is_available() else None
    loaded = load_model(
        model_dir,
        adapter_dir,
        dtype=dtype,
        padding_side="left",
        device_map=device_map,
        attn_implementation=attn_implementation,
    )
    if adapter_dir is not None and hasattr(loaded.model, "merge_and_unload") and merging_pays(loaded.model):
        # The weights were read from disk into memory: merging changes this copy only.
        loaded.model = loaded.model.merge_and_unload()
    return loaded


def merging_pays(model) -> bool:
    """Whether to merge a LoRA adapter into the weights for decoding. Merging saves the adapter's matmuls of
    every step (a GPU; a CPU in float32: 1.16x, ``python -m bench generation``), but on a CPU in bfloat16 it
    was no faster (the default run's all-linear rank-16 adapter: 6.7-6.9 s for 30 lists either way; a q/v
    adapter 0.71x) and it would round the adapter's update into bfloat16 weights: kept apart there."""
    import torch

    return model.device.type != "cpu" or model.dtype != torch.bfloat16


def _generate_hf(loaded, conversations, decoding: Decoding, seed, complete) -> list[Generation]:
    return generate_on_model(
        loaded.model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=int(decoding.max_new_tokens),
        batch_size=int(decoding.batch_size),
        do_sample=bool(decoding.do_sample),
        temperature=float(decoding.temperature),
        top_p=float(decoding.top_p),
        repetition_penalty=float(decoding.repetition_penalty),
        no_repeat_ngram_size=int(decoding.no_repeat_ngram_size),
        seed=seed,
        complete=complete,
    )


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices longest first (similar lengths share a batch; memory trouble shows at once), cut into
    as many batches as ``batch_size`` needs, of near-equal size (34 at 32 -> 17 + 17, not 32 + 2)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n_batches = max(1, math.ceil(len(order) / max(1, batch_size)))
    size = math.ceil(len(order) / n_batches) if order else 1
    return [order[start : start + size] for start in range(0, len(order), size)]


def generate_on_model(
    model,
    tokenizer,
    conversations: Sequence[Sequence[Mapping[str, str]]],
    *,
    stop_token_ids: Sequence[int],
    max_new_tokens: int,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    seed: int = 42,
    complete: Callable[[int, str], bool] | None = None,
) -> list[Generation]:
    """Answer chat ``conversations`` with a loaded transformers model, in left-padded batches.

    Generation stops at any of ``stop_token_ids`` (they are passed to ``generate`` as end tokens, so a
    finished row costs nothing more), and for conversation ``i`` once ``complete(i, text so far)`` is True;
    ``repetition_penalty`` (1.0 = off) and ``no_repeat_ngram_size`` (0 = off) are transformers' repetition
    controls. Answers come back in the input order.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import StoppingCriteriaList

    stop = [int(t) for t in stop_token_ids]
    if not stop:
        raise LexalignError(
            "generation: the model has no stop token ids (prepare_model records them in lexalign_model.json)"
        )
    model.eval()
    config = copy.deepcopy(model.generation_config)
    config.max_new_tokens = int(max_new_tokens)
    config.eos_token_id = stop
    if getattr(tokenizer, "pad_token_id", None) is not None:
        config.pad_token_id = tokenizer.pad_token_id
    config.do_sample = bool(do_sample)
    if config.do_sample:
        config.temperature, config.top_p, config.top_k = float(temperature), float(top_p), None
    else:  # greedy: the model's sampling defaults would only raise warnings
        config.temperature = config.top_p = config.top_k = None
    config.repetition_penalty = float(repetition_penalty)
    config.no_repeat_ngram_size = int(no_repeat_ngram_size)
    prompts = [prompt_token_ids(tokenizer, conversation) for conversation in conversations]
    results: list[Generation | None] = [None] * len(prompts)
    stop_set = set(stop)
    torch.manual_seed(seed)
    prefix = _shared_prefix(prompts)
    cache = _prefix_cache(model, prompts[0][:prefix]) if prefix >= MIN_SHARED_PREFIX else None
    if cache is not None:
        log.info("the %d prompt tokens every conversation shares are run once (key/value cache)", prefix)
    for batch in tqdm(
        _batches([len(p) for p in prompts], batch_size), desc="generating", unit="batch", file=sys.stderr, mininterval=5
    ):
        encoded = _encode(tokenizer, [prompts[i] for i in batch], prefix if cache is not None else 0, config)
        encoded = encoded.to(model.device)
        if cache is not None:
            keyword, past = cache[0], copy.deepcopy(cache[1])
            past.batch_repeat_interleave(len(batch))
            encoded[keyword] = past
        start = encoded["input_ids"].shape[1]
        done = _CompleteRows(tokenizer, batch, start, complete, stop_set) if complete else None
        with torch.inference_mode():
            extra = {"stopping_criteria": StoppingCriteriaList([done])} if done else {}
            output = model.generate(**encoded, generation_config=config, **extra)
        for i, row in zip(batch, output[:, start:].tolist()):
            end = next((j for j, token in enumerate(row) if token in stop_set), None)
            tokens = row if end is None else row[:end]
            if end is None and done is not None and i in done.complete_rows:
                tokens = tokens[: done.complete_rows[i]]  # the padding after the step that completed the list
            results[i] = Generation(
                tokenizer.decode(tokens, skip_special_tokens=False),
                len(tokens),
                end is not None,
                end is None and done is not None and i in done.complete_rows,
            )
        log.info("generated %d of %d answers", sum(r is not None for r in results), len(results))
    return results  # type: ignore[return-value]


class _CompleteRows:
    """A transformers stopping criterion: ends a row once the caller's ``complete(i, text)`` holds for its
    answer so far (rows that reached a stop token are left to ``generate``)."""

    def __init__(self, tokenizer, batch: Sequence[int], start: int, complete, stop_set: set[int]):
        self.tokenizer, self.batch, self.start, self.complete, self.stop_set = (
            tokenizer,
            batch,
            start,
            complete,
            stop_set,
        )
        self.complete_rows: dict[int, int] = {}  # conversation index -> answer tokens when it was complete

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        flags = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row, i in enumerate(self.batch):
            if i in self.complete_rows:
                flags[row] = True
                continue
            tokens = input_ids[row, self.start :].tolist()
            if any(token in self.stop_set for token in tokens):
                continue
            if self.complete(i, self.tokenizer.decode(tokens, skip_special_tokens=False)):
                self.complete_rows[i] = len(tokens)
                flags[row] = True
        return flags


#: Shared prompt tokens worth a prefix cache (below this the copies cost more than they save).
MIN_SHARED_PREFIX = 8


def _shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all prompts share, leaving every prompt at least one token of its own."""
    if not prompts:
        return 0
    first, limit = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


def cache_keyword(model) -> str | None:
    """The keyword a model takes its key/value cache by, and the output field it returns it in: ``cache``, or
    ``past_key_values`` before transformers renamed it; None for a model without either. A PEFT model's forward
    takes ``**kwargs`` and hands them to the model it wraps: that model's signature is read."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(base.forward).parameters
    return next((k for k in ("cache", "past_key_values") if k in parameters), None)


def _prefix_cache(model, tokens: Sequence[int]):
    """(keyword, cache): the key/value cache of the shared prompt prefix (one row) and the keyword the
    model takes it by (:func:`cache_keyword`), or None for a model without a standard cache object."""
    import torch

    keyword = cache_keyword(model)
    if keyword is None:
        return None
    with torch.inference_mode():
        ids = torch.tensor([list(tokens)], device=model.device)
        output = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    cache = getattr(output, keyword, None)
    return (keyword, cache) if hasattr(cache, "batch_repeat_interleave") else None


def _encode(tokenizer, prompts: Sequence[Sequence[int]], prefix: int, config):
    """Input ids and attention mask of one batch. Without a cached prefix: left padded. With one:
    the shared prefix, then each prompt's own tokens left padded after it (the padding sits between
    the cached prefix and the prompt's tail, masked out; positions follow the mask)."""
    import torch

    if not prefix:
        return tokenizer.pad({"input_ids": list(prompts)}, padding=True, return_tensors="pt")
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    tails = [list(p[prefix:]) for p in prompts]
    width = max(len(t) for t in tails)
    ids = torch.full((len(prompts), prefix + width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(prompts), prefix + width), dtype=torch.long)
    ids[:, :prefix] = torch.tensor(list(prompts[0][:prefix]))
    mask[:, :prefix] = 1
    for row, tail in enumerate(tails):
        ids[row, prefix + width - len(tail) :] = torch.tensor(tail)
        mask[row, prefix + width - len(tail) :] = 1
    from transformers import BatchEncoding

    return BatchEncoding({"input_ids": ids, "attention_mask": mask})


_VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def _generate_vllm(model_dir, conversations, decoding: Decoding, adapter_dir, dtype, seed) -> list[Generation]:
    if int(decoding.no_repeat_ngram_size):
        raise LexalignError(
            "config lexical.no_repeat_ngram_size: the vllm backend has no n-gram blocking; set it to 0 "
            "(repetition_penalty works with vllm) or use lexical.backend: hf"
        )
    from lexalign.models.loading import stop_token_ids

    engine = vllm_engine(model_dir, adapter_dir, dtype, seed, decoding.vllm or {}, "lexical")
    vllm, llm, lora, manifest = engine.vllm, engine.llm, engine.lora, engine.manifest
    prompts = [{"prompt_token_ids": prompt_token_ids(engine.tokenizer, conversation)} for conversation in conversations]
    do_sample = bool(decoding.do_sample)
    sampling = vllm.SamplingParams(
        max_tokens=int(decoding.max_new_tokens),
        temperature=float(decoding.temperature) if do_sample else 0.0,
        top_p=float(decoding.top_p) if do_sample else 1.0,
        repetition_penalty=float(decoding.repetition_penalty),
        stop_token_ids=stop_token_ids(manifest),  # the list transformers stops at too
        seed=seed,
        skip_special_tokens=False,
    )
    outputs = llm.generate(prompts, sampling, use_tqdm=True, lora_request=lora)
    return [
        Generation(out.outputs[0].text, len(out.outputs[0].token_ids), out.outputs[0].finish_reason == "stop")
        for out in outputs
    ]


@dataclass
class VllmEngine:
    """A vLLM engine on a prepared model: the ``vllm`` module, the ``LLM``, the adapter's ``LoRARequest``
    (None without an adapter), the model's manifest and tokenizer."""

    vllm: object
    llm: object
    lora: object
    manifest: dict
    tokenizer: object


def vllm_engine(model_dir, adapter_dir, dtype: str, seed: int, options: Mapping, section: str, **extra) -> VllmEngine:
    """Start vLLM on a prepared model (with LoRA enabled for ``adapter_dir``). ``options`` are the config's
    ``<section>.vllm`` keyword arguments for ``vllm.LLM`` (over :data:`VLLM_DEFAULTS`); ``extra`` are the
    caller's own."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise LexalignError(
            f"config {section}.backend: 'vllm' is selected but vllm cannot be imported ({exc}); "
            f"install it on a GPU machine (pip install 'lexalign[vllm]') or set {section}.backend: hf"
        ) from None
    from lexalign.models.loading import load_tokenizer, read_manifest

    manifest = read_manifest(model_dir)
    options = vllm_options(options, extra)
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
    return VllmEngine(vllm, llm, lora, manifest, load_tokenizer(model_dir))


def vllm_options(options: Mapping, extra: Mapping) -> dict:
    """The keyword arguments for ``vllm.LLM`` besides the model's: :data:`VLLM_DEFAULTS`, the config's
    ``<section>.vllm`` over them, the caller's own over both."""
    return {**VLLM_DEFAULTS, **options, **extra}


def _adapter_rank(adapter_dir: str | os.PathLike) -> int:
    path = Path(adapter_dir) / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexalignError(f"{adapter_dir}: no adapter_config.json (not a LoRA adapter directory)") from None
    ranks = [int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)
