"""Training presets: the built-in ones (paper, default, smoke) merged with the config's ``train.presets``."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

import yaml

from lexalign.config import methods, trainer_args
from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

PRESETS_FILE = resource("presets.yaml")
REQUIRED = {"lora": ("r", "alpha", "target_modules"), "resources": ("gpus", "cpus", "mem_mb", "runtime")}


def builtin_presets() -> dict[str, dict]:
    """The training presets shipped with the package; a fresh copy per call."""
    return copy.deepcopy(_read_builtin_presets())


@functools.cache
def _read_builtin_presets() -> dict[str, dict]:
    # Parsed once per process: every train job's params call this while Snakemake builds the DAG.
    text = PRESETS_FILE.read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """Recursively merge ``override`` onto ``base`` (mappings merge, everything else replaces)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_preset(train_config: Mapping, name: str | None = None) -> dict:
    """The preset ``name`` (default: ``train.preset``) with config ``train.presets`` merged on top.

    A config preset with the name of a built-in one overrides its keys; a new one starts from its
    ``base`` preset (default: ``default``).
    """
    builtin = builtin_presets()
    user = dict(train_config.get("presets") or {})
    chain: list[str] = []

    def known() -> str:
        return ", ".join(sorted({*builtin, *user}))

    def resolve(current: str) -> dict:
        if current in chain:
            raise LexalignError(f"train.presets.{current}.base: circular base chain {' -> '.join([*chain, current])}")
        chain.append(current)
        override = dict(user.get(current) or {})
        base_name = override.pop("base", None)
        if base_name is not None:
            if base_name not in builtin and base_name not in user:
                raise LexalignError(f"train.presets.{current}.base: {base_name!r} is not a preset (defined: {known()})")
            base = resolve(base_name)
        elif current in builtin:
            base = builtin[current]
        elif current in user:
            base = resolve("default") if current != "default" else {}
        else:
            raise LexalignError(f"train.preset: {current!r} is not a preset under train.presets (defined: {known()})")
        return deep_merge(base, override)

    return resolve(name or train_config["preset"])


def method_settings(train_config: Mapping, method: str) -> dict:
    """Everything one training job needs from the preset: LoRA, flat hyper-parameters, resources."""
    record = methods.get(method)
    if not record.trained:
        raise LexalignError(f"train: method {method!r} is not trained (trained methods: {', '.join(methods.TRAINED)})")
    preset = resolve_preset(train_config)
    hyper: dict[str, Any] = {}
    for section in record.preset_sections:
        hyper.update(preset.get(section) or {})
    settings = {
        "preset": train_config["preset"],
        "lora": dict(preset.get("lora") or {}),
        "hyper": hyper,
        "resources": dict(preset.get("resources") or {}),
    }
    if train_config.get("distributed"):  # unset: DDP; present only when set, so DDP runs keep their checkpoints
        settings["distributed"] = train_config["distributed"]
    return settings


def check_presets(train_config: Mapping, run_methods, source: str = "config") -> None:
    """Resolve the preset for every trained method of the run, so a bad preset fails at start-up in one line.

    Every hyper-parameter section the run uses is checked against the fields of the TRL config classes
    of the methods that read it (:mod:`lexalign.config.trainer_args`; a cached field list, no TRL import).
    """
    readers: dict[str, list[str]] = {}
    for method in methods.trained(run_methods):
        record = methods.get(method)
        for section in record.preset_sections:
            readers.setdefault(section, []).append(record.trainer)
    try:
        preset = resolve_preset(train_config) if readers else {}
        for section, trainers in readers.items():
            where = f"train.presets.{train_config['preset']}.{section}"
            trainer_args.check_section(where, trainers, preset.get(section) or {})
    except LexalignError as exc:
        raise LexalignError(f"{source}: {exc}") from None
    for method in methods.trained(run_methods):
        try:
            settings = method_settings(train_config, method)
        except LexalignError as exc:
            raise LexalignError(f"{source}: {exc}") from None
        for section, keys in REQUIRED.items():
            missing = [key for key in keys if settings[section].get(key) is None]
            if missing:
                raise LexalignError(
                    f"{source}: train preset {settings['preset']!r}: {section} needs {', '.join(missing)}"
                )
