"""What the GPU check knows about the cards: their peak dense bf16 FLOP/s, and the model FLOP utilisation."""

from __future__ import annotations

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


def mfu(parameters: int, tokens_per_s: float, device_name: str | None) -> float | None:
    """Model FLOP utilisation: 6 x parameters x tokens/s over the card's peak (None: unknown card)."""
    peak = peak_bf16_flops(device_name) if device_name else None
    return 6 * parameters * tokens_per_s / peak if peak else None
