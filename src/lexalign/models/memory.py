"""Will the model fit? An estimate of the memory a job needs, checked before the model is loaded.

A model that cannot fit should fail at start-up with one line naming the model, the estimate, what is
available and the fix, not with an out-of-memory traceback an hour into the run. :func:`check_fits`
estimates the bytes from the model directory and compares them with the free memory of the job's GPUs
(``torch.cuda.mem_get_info``) or, on CPU, the available RAM (``/proc/meminfo`` and the cgroup limit).

The estimate (:func:`estimate`), deliberately a lower bound of the real need so that a model that fits
comfortably is never refused:

- weights: parameter count x bytes of the load dtype. The count is the sum of the tensor shapes in
  the safetensors headers (exact; read without loading a tensor), or, without readable weights, a
  count from config.json (embeddings, attention with grouped KV heads, gated MLP, norms).
- training adds the LoRA state: r x (in + out) parameters per targeted linear layer, held in fp32,
  with its fp32 gradient and AdamW's two fp32 moments: 16 bytes per trainable parameter; and the
  activations kept for the backward pass: ``batch_tokens x hidden x layers x 17`` values of the dtype
  (Korthikanti et al. 2022, 34 bytes per token, hidden unit and layer in 16-bit with a fused attention
  kernel), or with gradient checkpointing one hidden state per token and layer plus one layer's full set.
  Output-layer logits are not counted (the project's SFT loss computes them only on supervised rows).
- inference adds the KV cache of ``batch_tokens`` tokens (2 x layers x KV heads x head dim values).

Data-parallel training holds a full replica on every GPU, so training is compared with the free memory
of each GPU; inference spreads the layers over the job's GPUs (``device_map="auto"``) and is compared
with their sum.

Worked example, the paper preset on Llama 3.1 8B (hidden 4096, 32 layers, 8 KV heads, MLP 14336,
vocabulary 128256, untied output layer) in bf16, LoRA r 64 on q_proj and v_proj, batch 18 x 2048
tokens per GPU, as :func:`estimate` computes it (1 GiB = 2**30 bytes)::

    parameters            8,030,261,248 x 2 bytes          = 14.96 GiB weights
    LoRA (r 64, q and v)     27,262,976 x 16 bytes         =  0.41 GiB (fp32 weights, grads, AdamW)
    activations, no checkpointing  36,864 x 4096 x 32 x 17 x 2 = 153.0 GiB  -> 168.4 GiB: does not fit an 80 GB card
    activations, checkpointing     36,864 x 4096 x (32 + 17) x 2 = 13.8 GiB -> 29.1 GiB: fits one 40 GB card

so the paper preset (``gradient_checkpointing: true``) trains with plain DDP, one replica per GPU; without
checkpointing it needs a smaller per-device batch (4 x 2048 tokens: 34.0 GiB of activations) or ZeRO/FSDP.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lexalign.core.errors import LexalignError
from lexalign.models.loading import read_safetensors_header

if TYPE_CHECKING:
    from lexalign.config.presets import LoraSettings, TrainSettings

log = logging.getLogger(__name__)

GIB = 2**30
#: Bytes per value of the dtypes a job can load in.
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
#: Bytes per trainable (LoRA) parameter: fp32 weight, fp32 gradient, AdamW's two fp32 moments.
TRAINABLE_BYTES = 4 + 4 + 2 * 4
#: Activation values kept per token, hidden unit and layer for the backward pass (34 bytes in 16-bit).
ACTIVATION_VALUES = 17
#: Turns the check off (for a machine whose free memory reads wrong); the job then fails or not by itself.
SKIP_ENV = "LEXALIGN_SKIP_MEMORY_CHECK"
PURPOSES = ("train", "inference")


@dataclass
class Estimate:
    """Bytes a job needs, by part."""

    parameters: int
    weights: int
    trainable: int
    trainable_state: int
    activations: int
    counted_from: str  # "safetensors headers" or "config.json"

    @property
    def total(self) -> int:
        return self.weights + self.trainable_state + self.activations

    def describe(self, dtype: str) -> str:
        parts = [f"weights {gib(self.weights)} ({self.parameters / 1e9:.2f}B parameters in {dtype})"]
        if self.trainable:
            parts.append(f"LoRA + AdamW {gib(self.trainable_state)}")
        if self.activations:
            parts.append(f"activations {gib(self.activations)}")
        return ", ".join(parts)


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


# ---- what the model is ----------------------------------------------------------------------


def _text_config(config: Mapping) -> Mapping:
    """Multimodal configs (Gemma 3, Llava) keep the language model's sizes under ``text_config``."""
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) and inner.get("hidden_size") else config


def _sizes(config: Mapping) -> dict:
    text = _text_config(config)
    try:
        hidden = int(text["hidden_size"])
        layers = int(text["num_hidden_layers"])
    except (KeyError, TypeError, ValueError):
        raise LexalignError(
            "config.json: no hidden_size / num_hidden_layers (cannot estimate the model's memory)"
        ) from None
    heads = int(text.get("num_attention_heads") or 1)
    head_dim = int(text.get("head_dim") or hidden // heads)
    return {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "kv_heads": int(text.get("num_key_value_heads") or heads),
        "head_dim": head_dim,
        "intermediate": int(text.get("intermediate_size") or 4 * hidden),
        "vocab": int(text.get("vocab_size") or 0),
        "tied": bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", True))),
    }


def linear_shapes(config: Mapping) -> dict[str, tuple[int, int]]:
    """(in, out) features of each linear layer of one decoder layer, by module name (Llama-style names)."""
    s = _sizes(config)
    q, kv = s["heads"] * s["head_dim"], s["kv_heads"] * s["head_dim"]
    h, i = s["hidden"], s["intermediate"]
    return {
        "q_proj": (h, q),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (q, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def config_parameter_count(config: Mapping) -> int:
    """Parameters of a decoder-only transformer from its config.json sizes."""
    s = _sizes(config)
    per_layer = sum(a * b for a, b in linear_shapes(config).values()) + 2 * s["hidden"]
    embeddings = s["vocab"] * s["hidden"] * (1 if s["tied"] else 2)
    return embeddings + s["layers"] * per_layer + s["hidden"]


def tensor_shapes(weights_dir: Path) -> dict[str, tuple[str, list[int]]] | None:
    """name -> (dtype, shape) of every tensor in the directory's safetensors files; None if any is unreadable."""
    files = sorted(weights_dir.glob("*.safetensors"))
    if not files:
        return None
    shapes: dict[str, tuple[str, list[int]]] = {}
    for file in files:
        header = read_safetensors_header(file)
        if header is None:
            return None
        for name, info in header.items():
            if name != "__metadata__" and isinstance(info, dict) and isinstance(info.get("shape"), list):
                shapes[name] = (str(info.get("dtype")), [int(d) for d in info["shape"]])
    return shapes


def lora_parameter_count(
    config: Mapping, lora: LoraSettings, shapes: Mapping[str, tuple[str, list[int]]] | None = None
) -> int:
    """r x (in + out) for every linear layer that ``lora.target_modules`` names (``all-linear``: every
    2-D weight inside the decoder layers)."""
    r = int(lora.r)
    targets = lora.target_modules or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    every = "all-linear" in targets
    if shapes:
        total = 0
        for name, (_, shape) in shapes.items():
            parts = name.split(".")
            if len(shape) != 2 or parts[-1] != "weight" or ".layers." not in f".{name}":
                continue
            if every or parts[-2] in targets:
                total += r * (shape[0] + shape[1])
        return total
    layers = _sizes(config)["layers"]
    return layers * sum(r * (a + b) for m, (a, b) in linear_shapes(config).items() if every or m in targets)


# ---- the estimate ---------------------------------------------------------------------------


def estimate(
    config: Mapping,
    *,
    purpose: str,
    dtype_bytes: int,
    lora: LoraSettings | None = None,
    batch_tokens: int | None = None,
    gradient_checkpointing: bool = False,
    shapes: Mapping[str, tuple[str, list[int]]] | None = None,
) -> Estimate:
    """Bytes a job needs (see the module docstring); ``shapes`` from :func:`tensor_shapes` when available."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    s = _sizes(config)
    if shapes:
        parameters = sum(math.prod(shape) for _, shape in shapes.values())
        counted_from = "safetensors headers"
    else:
        parameters = config_parameter_count(config)
        counted_from = "config.json"
    trainable = lora_parameter_count(config, lora, shapes) if purpose == "train" and lora else 0
    tokens = int(batch_tokens or 0)
    if purpose == "train":
        if gradient_checkpointing:  # layer inputs kept, one layer's activations recomputed at a time
            values = tokens * s["hidden"] * (s["layers"] + ACTIVATION_VALUES)
        else:
            values = tokens * s["hidden"] * s["layers"] * ACTIVATION_VALUES
    else:  # the KV cache of the batch
        values = tokens * 2 * s["layers"] * s["kv_heads"] * s["head_dim"]
    return Estimate(
        parameters=parameters,
        weights=parameters * dtype_bytes,
        trainable=trainable,
        trainable_state=trainable * TRAINABLE_BYTES,
        activations=values * dtype_bytes,
        counted_from=counted_from,
    )


def train_batch_tokens(settings: TrainSettings) -> int | None:
    """Tokens of one device batch: per_device_train_batch_size x max_length (None without a max_length)."""
    length = settings.max_length
    return settings.per_device_train_batch_size * int(length) if length else None


# ---- what is available ----------------------------------------------------------------------


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Room left under a cgroup v2 memory limit (a SLURM job's --mem), None without a limit."""
    try:
        limit = (root / "memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text(encoding="ascii").strip()))
    except (OSError, ValueError):
        return None


def available_ram() -> int | None:
    """Available RAM in bytes: /proc/meminfo's MemAvailable, capped by the cgroup limit; None if unknown."""
    found = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
    return min(found) if found else None


def free_gpu_memory(devices: Sequence[int]) -> list[int]:
    """Free bytes on each of the visible GPUs ``devices`` (each query opens a CUDA context on that GPU)."""
    import torch

    return [int(torch.cuda.mem_get_info(i)[0]) for i in devices]


def own_devices(purpose: str, gpus: int | None) -> list[int]:
    """The GPUs this process runs on, the only ones the check may query: for training the rank's own
    (``LOCAL_RANK``; a data-parallel worker queried every card would open a CUDA context on each, from every
    rank), for inference the job's GPUs (``gpus``, default every visible one: ``device_map="auto"``)."""
    import torch

    visible = torch.cuda.device_count()
    if purpose == "train":
        return [min(int(os.environ.get("LOCAL_RANK", "0")), max(visible - 1, 0))]
    return list(range(max(1, min(gpus or visible, visible))))


# ---- the check ------------------------------------------------------------------------------


def _dtype_name(dtype: str, purpose: str) -> str:
    if dtype == "auto":  # what loading picks on this machine
        from lexalign.models.loading import dtype_name

        return dtype_name("auto", inference=purpose != "train")
    if dtype not in DTYPE_BYTES:
        raise LexalignError(f"dtype {dtype!r} is not one of auto, {', '.join(DTYPE_BYTES)}")
    return dtype


def _weights_dir(model_dir: Path) -> Path:
    from lexalign.models.loading import MANIFEST, read_manifest

    if (model_dir / MANIFEST).is_file():
        return Path(read_manifest(model_dir)["weights_path"])
    return model_dir


def check_fits(
    model_dir: str | os.PathLike,
    *,
    purpose: str,
    dtype: str = "auto",
    lora: LoraSettings | None = None,
    batch_tokens: int | None = None,
    gradient_checkpointing: bool = False,
    gpus: int | None = None,
    device: str = "auto",
) -> Estimate | None:
    """Raise a one-line LexalignError if the job cannot fit; return the estimate (None when not checked).

    ``model_dir``: a prepared model (``lexalign_model.json``) or a Hugging Face model directory.
    ``device``: ``cuda``, ``cpu`` or ``auto`` (CUDA when available). ``gpus``: GPUs of the job (default:
    every visible one for inference, one per process for training). Nothing is loaded.
    """
    if os.environ.get(SKIP_ENV):
        return None
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = Path(model_dir)
    weights_dir = _weights_dir(folder)
    config_file = weights_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        log.warning("memory check skipped: %s is missing or not JSON", config_file)
        return None
    name = _dtype_name(dtype, purpose)
    need = estimate(
        config,
        purpose=purpose,
        dtype_bytes=DTYPE_BYTES[name],
        lora=lora,
        batch_tokens=batch_tokens,
        gradient_checkpointing=gradient_checkpointing,
        shapes=tensor_shapes(weights_dir),
    )
    if device == "cuda":
        import torch

        free = free_gpu_memory(own_devices(purpose, gpus))
        if purpose == "train":
            have, where = (
                min(free),
                f"{gib(min(free))} free on this rank's GPU (one full replica per data-parallel GPU)",
            )
        else:
            have, where = sum(free), f"{gib(sum(free))} free on {len(free)} GPU(s)"
    else:
        ram = available_ram()
        if ram is None:
            log.warning("memory check skipped: available RAM unknown (no /proc/meminfo)")
            return None
        have, where = ram, f"{gib(ram)} of RAM available"
    log.info("memory estimate for %s (%s): %s, %s; %s", folder, purpose, gib(need.total), need.describe(name), where)
    if need.total <= have:
        return need
    raise LexalignError(
        f"{folder}: {'training' if purpose == 'train' else 'running'} this model needs about {gib(need.total)} "
        f"({need.describe(name)}) but only {where}; {_fixes(purpose, device, name, gradient_checkpointing, need)} "
        f"(or set {SKIP_ENV}=1 if the estimate is wrong)"
    )


def check_train_fits(model_dir: str | os.PathLike, settings: TrainSettings, dtype: str = "auto") -> Estimate | None:
    """:func:`check_fits` for a training job's preset settings (its LoRA adapter and batch)."""
    return check_fits(
        model_dir,
        purpose="train",
        dtype=dtype,
        lora=settings.lora,
        batch_tokens=train_batch_tokens(settings),
        gradient_checkpointing=settings.gradient_checkpointing,
    )


def _fixes(purpose: str, device: str, dtype: str, checkpointing: bool, need: Estimate) -> str:
    fixes = []
    if device == "cpu":
        fixes.append("run it on a GPU node or ask for more memory (resources.mem_mb)")
    elif purpose == "train":
        fixes.append("use GPUs with more free memory (or DeepSpeed ZeRO / FSDP to shard it)")
    else:
        fixes.append("give the job more GPUs (resources.gpus)")
    if need.activations:
        batch = "per_device_train_batch_size or max_length" if purpose == "train" else "batch_size"
        fixes.append(f"a smaller batch ({batch})")
    if purpose == "train" and not checkpointing:
        fixes.append("gradient_checkpointing: true")
    if DTYPE_BYTES[dtype] > 2:
        fixes.append("dtype bfloat16")
    return "fix: " + ", or ".join(fixes)
