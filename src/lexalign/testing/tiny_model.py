"""A tiny random Llama with a real (byte-level BPE) tokenizer, built offline in seconds.

Tests and benchmarks use it wherever a model is needed; it is a local model directory exactly like
a user's, so it goes through the same prepare/load path.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Iterable
from pathlib import Path

from lexalign.models.loading import GEMMA_TEMPLATE

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]

_SEED_TEXT = [
    "dog, cat, bark, pet, animal, bone, puppy, leash, friend, tail, house, food, water, tree, sun",
    "Final ranking: one, two, three, four, five, six, seven, eight, nine, ten",
    "You answer word-association questions. Write words that come to mind when you read the word.",
    "Answer with the option number only. 1 2 3 4 5 6 7 8 9 10 Very important Rather important",
    "狗，猫，宠物，动物，骨头，朋友，尾巴，家，食物，水，树，太阳，学校，老师，春节，月饼，饺子，红色",
    "最终排序：一，二，三。请只回答选项编号。非常重要 比较重要 不太重要 一点也不重要",
]


def build_tiny_model(
    out_dir: str | os.PathLike,
    extra_text: Iterable[str] = (),
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny LlamaForCausalLM + fast tokenizer (with the Gemma-style chat template) to ``out_dir``."""
    return build_random_llama(
        out_dir,
        special=SPECIAL_TOKENS,
        tokens={"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
        chat_template=GEMMA_TEMPLATE.read_text(encoding="utf-8"),
        corpus=[*_SEED_TEXT, *extra_text],
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        seed=seed,
    )


def build_random_llama(
    out_dir: str | os.PathLike,
    special: Iterable[str],
    tokens: dict[str, str | None],
    chat_template: str,
    corpus: Iterable[str],
    generation_eos: Iterable[str] | None = None,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """A random LlamaForCausalLM with a byte-level BPE tokenizer trained on ``corpus``: ``special`` tokens
    first (``tokens`` names the bos/eos/pad among them), ``chat_template``, and, with ``generation_eos``, a
    generation config whose eos_token_id is that list (else the tokenizer's eos)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    special = list(special)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    named = set(tokens.values())
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, **tokens, additional_special_tokens=[t for t in special if t not in named]
    )
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(out)

    eos = [tokenizer.convert_tokens_to_ids(t) for t in generation_eos] if generation_eos else tokenizer.eos_token_id
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    if generation_eos:
        model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=eos)
    model.save_pretrained(out, safe_serialization=True)
    return out


# --------------------------------------------------------------------------------------------------
# A stand-in for vLLM (tests of the vLLM paths on machines without a GPU)


@dataclasses.dataclass
class Logprob:
    """``vllm.logprobs.Logprob``'s fields."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def sampling_params(**kwargs):
    """``vllm.SamplingParams`` with the fields the vLLM paths use, at vLLM's defaults; others are refused."""
    fields = {"max_tokens": 16, "temperature": 1.0, "logprobs": None, "prompt_logprobs": None, "detokenize": True}
    unknown = set(kwargs) - set(fields)
    if unknown:
        raise TypeError(f"not SamplingParams fields here: {sorted(unknown)}")
    return types.SimpleNamespace(**{**fields, **kwargs})


class StandInLLM:
    """``vllm.LLM.generate`` on a transformers model, with vLLM's output structure filled from the model's own
    log-probabilities: one RequestOutput per ``{"prompt_token_ids": ...}`` request (one SamplingParams per
    request, or one for all); ``prompt_logprobs`` one entry per prompt token, None for the first, else a dict
    token id -> :class:`Logprob` of the ``prompt_logprobs`` most likely tokens and the prompt's own token;
    ``outputs[0].logprobs`` such a dict per generated token (one, greedy), refused above ``max_logprobs``
    as vLLM refuses it. ``adapters`` maps a LoRARequest's path to the model with that adapter; every call is
    recorded in ``calls``."""

    def __init__(self, model, tokenizer, max_logprobs: int = 20, adapters=None):
        self.model, self.tokenizer, self.max_logprobs = model, tokenizer, max_logprobs
        self.adapters = dict(adapters or {})
        self.calls: list[dict] = []

    def _entry(self, row, k: int, own: int | None) -> dict:
        import torch

        ranks = torch.argsort(row, descending=True)
        chosen = ranks[:k].tolist() + ([own] if own is not None else [])
        position = {int(t): r + 1 for r, t in enumerate(ranks.tolist())}
        decode = self.tokenizer.decode
        return {int(t): Logprob(float(row[t]), position[int(t)], decode([int(t)])) for t in dict.fromkeys(chosen)}

    def _adapted(self, lora_request):
        return self.model if lora_request is None else self.adapters[str(lora_request[2])]

    def generate(self, prompts, sampling_params, use_tqdm=True, lora_request=None):
        import torch

        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("the number of sampling params does not match the number of prompts")
        self.calls.append({"prompts": prompts, "params": params, "lora": lora_request})
        model = self._adapted(lora_request)
        outputs = []
        for prompt, param in zip(prompts, params):
            ids = prompt["prompt_token_ids"]
            with torch.inference_mode():
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
            prompt_logprobs = None
            if param.prompt_logprobs is not None:
                k = param.prompt_logprobs
                prompt_logprobs = [None] + [self._entry(logp[i - 1], k, ids[i]) for i in range(1, len(ids))]
            token = int(torch.argmax(logp[-1]))
            sample = None
            if param.logprobs is not None:
                if param.logprobs > self.max_logprobs:
                    raise ValueError(
                        f"Requested sample logprobs of {param.logprobs}, which is greater than max allowed"
                    )
                sample = [self._entry(logp[-1], param.logprobs, token)]
            completion = types.SimpleNamespace(
                index=0, text="", token_ids=[token], logprobs=sample, finish_reason="length"
            )
            outputs.append(
                types.SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=prompt_logprobs, outputs=[completion])
            )
        return outputs


def stand_in_vllm_modules(seen: dict | None = None) -> dict[str, types.ModuleType]:
    """``vllm``, ``vllm.lora`` and ``vllm.lora.request`` stand-ins for ``sys.modules``: ``vllm.LLM(model=DIR, ...)``
    loads DIR's weights with transformers (float32) and a LoRARequest's adapter with PEFT, on its own copy of
    the weights; ``LoRARequest`` is the tuple (name, id, path). ``seen`` receives the LLM's keyword
    arguments (``"llm"``) and the instance (``"instance"``)."""
    seen = {} if seen is None else seen

    class LLM(StandInLLM):
        def __init__(self, model, tokenizer=None, max_logprobs: int = 20, **options):
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            seen["llm"] = {"model": model, "tokenizer": tokenizer, "max_logprobs": max_logprobs, **options}
            self._weights = model
            base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
            super().__init__(base, AutoTokenizer.from_pretrained(tokenizer or model), max_logprobs)
            seen["instance"] = self

        def _adapted(self, lora_request):
            if lora_request is not None and str(lora_request[2]) not in self.adapters:
                import torch
                from peft import PeftModel
                from transformers import AutoModelForCausalLM

                copy = AutoModelForCausalLM.from_pretrained(self._weights, dtype=torch.float32)
                self.adapters[str(lora_request[2])] = PeftModel.from_pretrained(copy, str(lora_request[2])).eval()
            return super()._adapted(lora_request)

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, sampling_params
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
    return {"vllm": vllm, "vllm.lora": types.ModuleType("vllm.lora"), "vllm.lora.request": request}


def main(argv: list[str] | None = None) -> int:
    """``python -m lexalign.testing.tiny_model DIR``: write the tiny model to DIR (.test/config/config.yaml's model)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lexalign.testing.tiny_model", description=main.__doc__)
    parser.add_argument("out_dir", help="directory to write the tiny model into (e.g. .test/models/tiny)")
    args = parser.parse_args(argv)
    print(build_tiny_model(args.out_dir))
    return 0


if __name__ == "__main__":
    import sys

    from lexalign.core.snake import run_command

    sys.exit(run_command(main))
