"""A tiny random Llama with a real (byte-level BPE) tokenizer, built offline in seconds.

Tests and benchmarks use it wherever a model is needed; it is a local model directory exactly like
a user's, so it goes through the same prepare/load path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lexalign.models import GEMMA_TEMPLATE

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
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*_SEED_TEXT, *extra_text], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    tokenizer.chat_template = GEMMA_TEMPLATE.read_text(encoding="utf-8")
    tokenizer.save_pretrained(out)

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
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m lexalign.testing DIR``: write the tiny model to DIR (the model of .test/config/config.yaml)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lexalign.testing", description=main.__doc__)
    parser.add_argument("out_dir", help="directory to write the tiny model into (e.g. .test/models/tiny)")
    args = parser.parse_args(argv)
    print(build_tiny_model(args.out_dir))
    return 0


if __name__ == "__main__":
    import sys

    from lexalign.snake import run_command

    sys.exit(run_command(main))
