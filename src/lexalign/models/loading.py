"""Models: load a prepared model (and a LoRA adapter) everywhere a stage needs one.

A prepared model is a directory holding ``lexalign_model.json`` (the manifest), written once by the
prepare_model rule (:mod:`lexalign.models.prepare`). For a packaged model the directory also holds
the dequantised safetensors weights and tokenizer; for a local path the manifest points at the
user's directory, which is never copied or modified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

log = logging.getLogger(__name__)

MANIFEST = "lexalign_model.json"
GEMMA_TEMPLATE = resource("gemma_chat_template.jinja")
#: The files of a local model directory whose change means other weights, config or tokenizer.
SIGNATURE_PATTERNS = ("*.safetensors", "*.json", "*.jinja", "*.model", "*.tiktoken", "*.txt", "*.py")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    stop_token_ids: list[int]
    manifest: dict


SAFETENSORS_HEADER_LIMIT = 100 * 1024 * 1024  # the format's own cap on the JSON header


def read_safetensors_header(file: Path) -> dict | None:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, offsets): a length-prefixed
    JSON object that fits in the file. None for an empty, cut or unreadable file."""
    try:
        size = file.stat().st_size
        if size < 8:
            return None
        with file.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if length == 0 or length > min(size - 8, SAFETENSORS_HEADER_LIMIT):
                return None
            header = json.loads(handle.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return header if isinstance(header, dict) else None


def check_safetensors_file(file: Path, where: str, hint: str = "") -> dict:
    """The header of one safetensors file whose size is what its header says (8 bytes, the header, the
    tensors' data): a download cut short or a shard replaced by a partial copy fails here, naming the file,
    not when a later job loads it. ``hint`` ends the error line."""
    header = read_safetensors_header(file)
    if header is None:
        raise LexalignError(f"{where}: {file} is not a valid safetensors file (empty or truncated){hint}")
    with file.open("rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
    ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
    expected, size = 8 + length + max(ends, default=0), file.stat().st_size
    if size < expected:
        raise LexalignError(
            f"{where}: {file} is truncated ({size} bytes, its header describes {expected}); download it again{hint}"
        )
    return header


def check_shard_index(path: Path, where: str) -> None:
    """A sharded model's ``model.safetensors.index.json``: every shard it names exists, and every tensor it
    maps to a shard is in that shard's header."""
    index_file = path / "model.safetensors.index.json"
    if not index_file.is_file():
        return
    try:
        weight_map = json.loads(index_file.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise LexalignError(f"{where}: {index_file} is not a safetensors index (JSON with a weight_map)") from None
    shards: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        shards.setdefault(shard, []).append(tensor)
    for shard, tensors in sorted(shards.items()):
        file = path / shard
        if not file.is_file():
            raise LexalignError(f"{where}: {file} is missing (named by {index_file.name}); download it again")
        header = check_safetensors_file(file, where)
        absent = [t for t in tensors if t not in header]
        if absent:
            raise LexalignError(
                f"{where}: {file} lacks {len(absent)} tensor(s) that {index_file.name} puts there "
                f"(e.g. {absent[0]}); download it again"
            )


def check_local_model(path: Path, where: str) -> None:
    """A Hugging Face model directory with config.json and readable safetensors weights (never pickle)."""
    if not path.is_dir():
        raise LexalignError(f"{where}: {path} is not a directory")
    if not (path / "config.json").is_file():
        raise LexalignError(f"{where}: {path} has no config.json (not a Hugging Face model directory)")
    pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    convert = "convert them to safetensors; lexalign never unpickles"
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        hint = f" (only pickle weights found: {convert})" if pickled else ""
        raise LexalignError(f"{where}: {path} has no *.safetensors weights{hint}")
    hint = f" (pickle weights beside it, {', '.join(sorted(pickled))}: {convert})" if pickled else ""
    for file in weights:
        check_safetensors_file(file, where, hint)
    check_shard_index(path, where)


def load_source_tokenizer(path: Path, trust_remote_code: bool, where: str):
    """The tokenizer of a model directory; transformers' refusals become one line naming the fix."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        if "trust_remote_code" in str(exc):
            entry = where.rsplit(".", 1)[0] if where.startswith("models.") else "models.<name>"
            raise LexalignError(
                f"{where}: {path} needs its own code to load (auto_map in its config); "
                f"if you trust it, set {entry}.trust_remote_code: true"
            ) from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LexalignError(f"{where}: transformers cannot load the tokenizer of {path} ({first})") from None


def weights_signature(path: str | os.PathLike) -> dict:
    """Size and modification time (ns) of every weight, config and tokenizer file of a local model.

    Replacing a file (even by an older copy) or editing it changes the signature; ``sha256`` is a
    short digest of the whole listing for fingerprints.
    """
    folder = Path(path)
    files = {}
    for pattern in SIGNATURE_PATTERNS:
        for file in folder.glob(pattern):
            if file.is_file() and not file.name.startswith("."):
                stat = file.stat()
                files[file.name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    listing = {name: files[name] for name in sorted(files)}
    digest = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]
    return {"files": listing, "sha256": digest}


def generation_config_stops(weights: str | os.PathLike) -> list[int]:
    """The model's own end-of-sequence ids, from its ``generation_config.json`` (an id or a list: Llama 3.1
    lists <|end_of_text|>, <|eom_id|> and <|eot_id|>); none without the file."""
    try:
        config = json.loads((Path(weights) / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    eos = config.get("eos_token_id") if isinstance(config, dict) else None
    return [int(t) for t in ([eos] if isinstance(eos, int) else eos or []) if isinstance(t, int)]


def merged_stops(*lists) -> list[int]:
    """Stop-token ids of several sources in one list, in first-seen order, each once (None entries skipped)."""
    return list(
        dict.fromkeys(
            int(t) for ids in lists for t in (ids if isinstance(ids, (list, tuple)) else [ids]) if t is not None
        )
    )


def stop_token_ids(manifest: dict) -> list[int]:
    """What generation stops at, the same for transformers and vLLM: the manifest's stop tokens (the chat
    format's end of turn) merged with the model's own generation config, never replacing it."""
    return merged_stops(manifest["stop_token_ids"], generation_config_stops(manifest["weights_path"]))


def read_manifest(model_dir: str | os.PathLike) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise LexalignError(f"{model_dir}: not a prepared model (no {MANIFEST}); run the prepare_model rule")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    weights = Path(manifest["weights"])
    manifest["weights_path"] = str(weights if weights.is_absolute() else (Path(model_dir) / weights).resolve())
    return manifest


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_dtype(dtype: str, inference: bool = True):
    """``auto``: bfloat16 on a GPU that supports it. On CPU: bfloat16 for inference where the CPU computes it
    natively (Gemma 3 270M, 2 cores: 34 lists x 48 tokens 19.2 -> 7.7 s, 100 WVS items 12.3 -> 7.8 s),
    float32 elsewhere and for training (the weights stay float32 there; the trainer autocasts, see
    :func:`lexalign.train.trainers.use_bf16`)."""
    import torch

    if dtype == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if inference and cpu_has_native_bf16() else torch.float32
    return getattr(torch, dtype)


def dtype_name(dtype: str, inference: bool = True) -> str:
    """What ``dtype`` loads as here (``auto`` resolved: :func:`resolve_dtype`), e.g. ``bfloat16``; outputs
    record it, since on CPU ``auto`` depends on the machine."""
    return str(resolve_dtype(dtype, inference)).removeprefix("torch.")


def load_model(
    model_dir: str | os.PathLike,
    adapter_dir: str | os.PathLike | None = None,
    dtype: str = "auto",
    padding_side: str = "left",
    device_map: str | dict | None = None,
    attn_implementation: str | None = None,
    inference: bool = True,
) -> LoadedModel:
    """Load a prepared model (and optionally a LoRA adapter on top, unmerged) with its tokenizer.

    ``attn_implementation`` (config ``models.<name>.attn_implementation``) picks the attention kernel;
    None leaves transformers' default. ``inference`` picks what ``dtype: auto`` means (:func:`resolve_dtype`)."""
    from transformers import AutoModelForCausalLM

    manifest = read_manifest(model_dir)
    weights = Path(manifest["weights_path"])
    check_local_model(weights, f"{model_dir}/{MANIFEST}")
    trust = bool(manifest.get("trust_remote_code", False))
    tokenizer = load_tokenizer(model_dir, padding_side=padding_side)
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(
        weights,
        dtype=resolve_dtype(dtype, inference),
        use_safetensors=True,
        trust_remote_code=trust,
        device_map=device_map,
        **extra,
    )
    if adapter_dir is not None:
        from peft import PeftModel

        if not (Path(adapter_dir) / "adapter_config.json").is_file():
            raise LexalignError(f"{adapter_dir}: no adapter_config.json (not a LoRA adapter directory)")
        model = PeftModel.from_pretrained(model, adapter_dir)
    _row_major_output_layer_input(model)
    stops = merged_stops(stop_token_ids(manifest), model.generation_config.eos_token_id)
    model.generation_config.eos_token_id = stops
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model=model, tokenizer=tokenizer, stop_token_ids=stops, manifest=manifest)


def _row_major_output_layer_input(model) -> None:
    """Hand the output layer hidden states with row-major strides. transformers slices them for
    ``logits_to_keep`` (``hidden[:, -k:, :]``), and torch's matmul does not fold such a strided view into one
    matrix product when the layer's weight needs no gradient: it copies the transposed weight instead. Through
    Gemma 3's 262k-word output layer (torch 2.13, CPU): 0.81 s vs 0.14 s in float32 and 5.9 s vs 0.04 s in
    bfloat16 for 8 rows x 3 positions, and 1.26 s vs 0.098 s for the one-row prefix pass of a model with a LoRA
    adapter (``python -m bench generation``). ``.contiguous()`` would not do: a one-row slice counts as
    contiguous and comes back as is. The copy is a few kilobytes."""
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(_row_major_inputs)


def _row_major_inputs(module, args):
    import torch

    return tuple(a.clone(memory_format=torch.contiguous_format) if isinstance(a, torch.Tensor) else a for a in args)


def load_tokenizer(model_dir: str | os.PathLike, padding_side: str = "left"):
    """The prepared model's tokenizer with its chat template and a pad token set."""
    manifest = read_manifest(model_dir)
    trust = bool(manifest.get("trust_remote_code", False))
    tokenizer = load_source_tokenizer(Path(manifest["weights_path"]), trust, f"{model_dir}/{MANIFEST}")
    if manifest.get("chat_template"):
        tokenizer.chat_template = manifest["chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer
