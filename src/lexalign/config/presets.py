"""Training presets: the built-in ones (paper, default, smoke) merged with the config's ``train.presets``, and
what one training job reads of them (:class:`TrainSettings`, from :func:`method_settings`)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import yaml

from lexalign.config import methods, trainer_args
from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource
from lexalign.core.settings import from_section

PRESETS_FILE = resource("presets.yaml")
#: What rule train asks the scheduler for; every preset must say all of it.
RESOURCE_KEYS = ("gpus", "cpus", "mem_mb", "runtime")


@dataclasses.dataclass(frozen=True)
class TrainSection:
    """Config ``train``: the preset to use, how several GPUs train, and the config's own presets."""

    preset: str
    distributed: str | None = None  # ddp (None), zero2, fsdp or an accelerate config file
    presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # name -> preset overrides (free-form)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TrainSection:
        return from_section(cls, section, "train")


@dataclasses.dataclass(frozen=True)
class LoraSettings:
    """A preset's ``lora`` section: the adapter's rank, scale, dropout, target modules and LoRA+ ratio.
    The fields are in key order, as the rule's params (canonical) and metrics.json hold them."""

    alpha: float
    dropout: float
    loraplus_lr_ratio: float | None  # B matrices learn this many times faster (None or 1: plain LoRA)
    r: int
    target_modules: list[str]

    @classmethod
    def from_config(cls, section: Mapping[str, Any], where: str) -> LoraSettings:
        return from_section(cls, section, where)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What one training job reads of its preset: the LoRA adapter and the flat hyper-parameters of its method.

    ``hyper`` is the trainer pass-through (TRL config fields, checked at start-up by
    :mod:`lexalign.config.trainer_args`) plus the workflow's own keys, read through the properties below.
    JSON-serialisable (:meth:`to_config`): the rule's params and the ``accelerate launch`` workers' job file.
    """

    preset: str
    lora: LoraSettings
    hyper: Mapping[str, Any]
    distributed: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TrainSettings:
        """From the mapping :meth:`to_config` writes (rule train's ``settings`` param)."""
        # distributed is written only when set, so a DDP run's params and checkpoints stay what they were
        settings = from_section(cls, {"distributed": None, **section}, "train")
        where = f"train.presets.{settings.preset}.lora"
        return dataclasses.replace(settings, lora=LoraSettings.from_config(settings.lora, where))

    def to_config(self) -> dict[str, Any]:
        config = {"preset": self.preset, "lora": dataclasses.asdict(self.lora), "hyper": dict(self.hyper)}
        if self.distributed:
            config["distributed"] = self.distributed
        return config

    def with_hyper(self, **overrides: Any) -> TrainSettings:
        """These settings with some hyper-parameters replaced (benchmarks and tests shorten a preset)."""
        return dataclasses.replace(self, hyper={**self.hyper, **overrides})

    @property
    def bf16(self) -> bool | None:
        """bfloat16 mixed precision; None: where the hardware has it natively (lexalign.train.trainers.use_bf16)."""
        return self.hyper.get("bf16")

    @property
    def learning_rate(self) -> float:
        return self.hyper.get("learning_rate", 1e-5)

    @property
    def weight_decay(self) -> float:
        return self.hyper.get("weight_decay", 0.0)

    @property
    def max_length(self) -> int | None:
        return self.hyper.get("max_length")

    @property
    def per_device_train_batch_size(self) -> int:
        return int(self.hyper.get("per_device_train_batch_size") or 1)

    @property
    def gradient_checkpointing(self) -> bool:
        return bool(self.hyper.get("gradient_checkpointing"))

    @property
    def max_train_examples(self) -> int | None:
        """Rows of the train split to sample (None: all)."""
        return self.hyper.get("max_train_examples")

    @property
    def max_eval_examples(self) -> int | None:
        """Rows of the val split to evaluate on (0: no evaluation, None: all)."""
        return self.hyper.get("max_eval_examples", 0)

    @property
    def keep_checkpoints(self) -> bool:
        return bool(self.hyper.get("keep_checkpoints", False))

    @property
    def reward_definition(self) -> str:
        """The ranking reward's definition (GRPO methods; corrected or study)."""
        return self.hyper["reward_definition"]


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


def resolve_preset(train: TrainSection, name: str | None = None) -> dict:
    """The preset ``name`` (default: ``train.preset``) with config ``train.presets`` merged on top.

    A config preset with the name of a built-in one overrides its keys; a new one starts from its
    ``base`` preset (default: ``default``).
    """
    builtin = builtin_presets()
    user = dict(train.presets)
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

    return resolve(name or train.preset)


def method_settings(train: TrainSection, method: str) -> TrainSettings:
    """What one training job of ``method`` reads of the configured preset: LoRA and flat hyper-parameters."""
    record = methods.get(method)
    if not record.trained:
        raise LexalignError(f"train: method {method!r} is not trained (trained methods: {', '.join(methods.TRAINED)})")
    preset = resolve_preset(train)
    hyper: dict[str, Any] = {}
    for section in record.preset_sections:
        hyper.update(preset.get(section) or {})
    lora = LoraSettings.from_config(preset.get("lora") or {}, f"train.presets.{train.preset}.lora")
    return TrainSettings(preset=train.preset, lora=lora, hyper=hyper, distributed=train.distributed)


def preset_resources(train: TrainSection) -> dict:
    """What rule train asks the scheduler for: the configured preset's ``resources``."""
    return dict(resolve_preset(train).get("resources") or {})


def check_presets(train: TrainSection, run_methods, source: str = "config") -> None:
    """Resolve the preset for every trained method of the run, so a bad preset fails at start-up in one line.

    Every hyper-parameter section the run uses is checked against the fields of the TRL config classes
    of the methods that read it (:mod:`lexalign.config.trainer_args`; a cached field list, no TRL import).
    """
    readers: dict[str, list[str]] = {}
    for method in methods.trained(run_methods):
        record = methods.get(method)
        for section in record.preset_sections:
            readers.setdefault(section, []).append(record.trainer)
    if not readers:
        return  # nothing to train, nothing to check
    try:
        preset = resolve_preset(train)
        for section, trainers in readers.items():
            trainer_args.check_section(f"train.presets.{train.preset}.{section}", trainers, preset.get(section) or {})
        for method in methods.trained(run_methods):
            method_settings(train, method)  # a LoRA section without one of its keys fails naming it
    except LexalignError as exc:
        raise LexalignError(f"{source}: {exc}") from None
    resources = preset_resources(train)
    missing = [key for key in RESOURCE_KEYS if resources.get(key) is None]
    if missing:
        raise LexalignError(f"{source}: train preset {train.preset!r}: resources needs {', '.join(missing)}")
