"""Tiny random models with the chat formats of the paper's models, built offline: the special tokens, chat
template, end-of-sequence tokens and ``generation_config.json`` of Llama 3.1 Instruct and Qwen 2.5 Instruct
on a small byte-level BPE vocabulary, so that the GPU check (and the tests) run the stop-token and template
paths of both formats without downloading either model.

What is copied from the real models (their ``tokenizer_config.json`` and ``generation_config.json``):
Llama 3.1 begins with ``<|begin_of_text|>``, wraps each turn in ``<|start_header_id|>role<|end_header_id|>``
... ``<|eot_id|>``, the tokenizer's eos is ``<|eot_id|>`` and the generation config stops at
``<|end_of_text|>``, ``<|eom_id|>`` and ``<|eot_id|>``; Qwen 2.5 has no bos token, ChatML turns
(``<|im_start|>role`` ... ``<|im_end|>``), eos ``<|im_end|>``, pad ``<|endoftext|>`` and stops at both.
The templates are the formats' core (no tool calls, no default system prompt).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChatFormat:
    name: str
    special: tuple[str, ...]  # in id order, first in the vocabulary
    bos: str | None
    eos: str
    pad: str
    generation_eos: tuple[str, ...]  # generation_config.json's eos_token_id list
    template: str


LLAMA3 = ChatFormat(
    name="llama3",
    special=(
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
    ),
    bos="<|begin_of_text|>",
    eos="<|eot_id|>",
    pad="<|finetune_right_pad_id|>",
    generation_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
    template=(
        "{{- bos_token }}{%- for message in messages %}"
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
        " + '<|eot_id|>' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
    ),
)
QWEN25 = ChatFormat(
    name="qwen2.5",
    special=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    generation_eos=("<|im_end|>", "<|endoftext|>"),
    template=(
        "{%- for message in messages %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
)
FORMATS = {f.name: f for f in (LLAMA3, QWEN25)}

_TEXT = [
    "dog, cat, bark, pet, animal, bone, puppy, leash, friend, tail, house, food, water, tree, sun",
    "You answer word-association questions. Write words that come to mind when you read the word.",
    "Answer with the option number only. 1 2 3 4 5 6 7 8 9 10 11 12 Very important Rather important Agree",
    "狗，猫，宠物，动物，骨头，朋友，尾巴，家，食物，水，树，太阳。请只回答选项编号。非常重要 比较重要",
]


def build_chat_model(
    out_dir: str | os.PathLike,
    chat: ChatFormat,
    extra_text=(),
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny LlamaForCausalLM with ``chat``'s tokenizer, template and generation config to ``out_dir``."""
    from lexalign.testing.tiny_model import build_random_llama

    return build_random_llama(
        out_dir,
        special=chat.special,
        tokens={"bos_token": chat.bos, "eos_token": chat.eos, "pad_token": chat.pad},
        chat_template=chat.template,
        corpus=[*_TEXT, *extra_text],
        generation_eos=chat.generation_eos,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        seed=seed,
    )
