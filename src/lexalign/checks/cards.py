"""What the GPU check knows about the cards: their peak dense bf16 FLOP/s, and the model FLOP utilisation."""

from __future__ import annotations

import math
from pathlib import Path

#: Peak dense (no sparsity) bf16 tensor FLOP/s of common cards, in TFLOP/s, from the vendors' datasheets.
#: Matched in order against ``torch.cuda.get_device_name()``: the more specific names come first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", None),  # no published datasheet figure; listed so that it does not match "A10"
    ("A10", 125.0),
    ("A40", 150.0),
    ("A6000", 155.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("MI300X", 1307.0),
    ("MI250X", 383.0),
)


def peak_bf16_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of the card, None for a card not in the table."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops * 1e12 if tflops else None
    return None


def matmul_parameters(weights: str | Path) -> tuple[int, int, int]:
    """(weights of the model's linear layers, decoder layers, hidden size), from its config alone (a model
    on the meta device): the linear layers are what a token multiplies through, the output layer included
    and the embedding lookup not (it multiplies nothing; Gemma 3 270M: 170M of its 268M parameters)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(weights)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    text = config.get_text_config()
    return int(linear), int(text.num_hidden_layers), int(text.hidden_size)


def adapter_parameters(adapter_dir: str | Path) -> int:
    """Parameters of a saved LoRA adapter, from its safetensors header."""
    from lexalign.models.loading import read_safetensors_header

    header = read_safetensors_header(Path(adapter_dir) / "adapter_model.safetensors") or {}
    return sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")


def lora_train_flops_per_token(model_dir: str | Path, adapter_dir: str | Path, row_tokens: float) -> float:
    """FLOPs one trained token costs in a LoRA step, counting what runs: the forward pass through every
    linear weight (2 N), the backward pass's input gradients through them (2 N: the frozen weights get no
    weight gradient), forward, input and weight gradients of the adapter (6 N_lora), and attention over a
    row of ``row_tokens`` (12 L d s, PaLM's count). Not counted: the forward pass that gradient checkpointing
    repeats (that is hardware, not model, FLOPs). The output layer counts at every position, also where the
    project's completion-only SFT loss skips it (an upper bound there)."""
    from lexalign.models.loading import read_manifest

    linear, layers, hidden = matmul_parameters(read_manifest(model_dir)["weights_path"])
    return 4 * linear + 6 * adapter_parameters(adapter_dir) + 12 * layers * hidden * row_tokens


def mfu(flops_per_token: float, tokens_per_s: float, device_name: str | None, gpus: int = 1) -> float | None:
    """Model FLOP utilisation: FLOPs per token x tokens/s (over all ``gpus``) over their peak (None: unknown
    card)."""
    peak = peak_bf16_flops(device_name) if device_name else None
    return flops_per_token * tokens_per_s / (peak * gpus) if peak else None
