"""Trainer-argument pass-through: a preset may set any field of its method's TRL config dataclass.

A preset section (``train``, ``sft``, ``rl``, ``sft_rl``, ``dpo``) may hold, besides the keys the schema
describes, any field of the TRL config class its methods train with (``SFTConfig``, ``GRPOConfig``,
``DPOConfig``, and so every ``transformers.TrainingArguments`` field): ``optim``, ``use_liger_kernel``,
``gradient_checkpointing_kwargs``, GRPO's ``use_vllm`` / ``vllm_mode``, ... They are checked at start-up
(:func:`check_section`, from ``lexalign validate-config`` and the DAG's config check): an unknown key
fails in one line naming the closest valid ones, a value of the wrong JSON type fails, and the keys this
workflow computes itself (:data:`COMPUTED`) are refused with the setting to use instead.

Importing TRL takes seconds, too long for every ``snakemake -n``: the field names and their JSON types
are read from ``resources/trainer_fields.json``, written by ``python -m lexalign.config.trainer_args`` from the
installed TRL (a test checks that the file matches it).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import json
import types
import typing
from collections.abc import Iterable, Mapping

from lexalign.config import methods
from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

FIELDS_FILE = resource("trainer_fields.json")
#: The TRL config class of each trainer (``lexalign.config.methods.Method.trainer``).
CONFIG_CLASSES = {"sft": "SFTConfig", "grpo": "GRPOConfig", "dpo": "DPOConfig"}
#: The preset section of each trainer's own settings (the first method training with it reads it last).
SECTIONS = {m.trainer: m.preset_sections[-1] for m in reversed(methods.REGISTRY.values()) if m.trained}
#: Preset keys of this workflow, not of TRL (read by lexalign.train.trainers and lexalign.train.rewards).
OWN_KEYS = ("max_train_examples", "max_eval_examples", "keep_checkpoints", "reward_definition")
#: Shared ("train" section) keys that some trainers have no use for (GRPO has no max_length); every other
#: shared key must be a field of every trainer the run uses (a trainer-specific one goes in its section).
NOT_FOR_EVERY_TRAINER = ("max_length",)
#: Preset names that lexalign.train.trainers translates into the TRL field of another name.
ALIASES = {"warmup_ratio": "warmup_steps"}
#: TRL fields the workflow sets itself; a preset setting them is refused with what to use instead.
COMPUTED = {
    "output_dir": "training writes to results/checkpoints/{model}/{lang}/{method}/",
    "seed": "set the config's top-level seed",
    "data_seed": "set the config's top-level seed",
    "save_strategy": "checkpoints are saved every save_steps",
    "eval_strategy": "set eval_steps (null = evaluate once at the end)",
    "resume_from_checkpoint": "a rerun resumes from its own matching checkpoint",
    "use_cpu": "chosen from the hardware and the job's GPUs",
    "logging_nan_inf_filter": "a nan or inf loss must reach the divergence guard",
    "deepspeed": "set train.distributed (ddp, zero2, fsdp or an accelerate config file)",
    "fsdp": "set train.distributed (ddp, zero2, fsdp or an accelerate config file)",
    "fsdp_config": "set train.distributed (ddp, zero2, fsdp or an accelerate config file)",
    "model_init_kwargs": "the workflow loads the model itself: set models.<name>.attn_implementation",
    "completion_only_loss": "the SFT loss is on the answer only by design (lexalign.train.sft_loss)",
    "push_to_hub": "adapters are written to results/train/; upload them yourself",
}
_JSON_TYPES = {"boolean": bool, "integer": int, "number": (int, float), "string": str, "array": list, "object": dict}


def _json_kinds(annotation) -> list[str] | None:
    """The JSON types a value of ``annotation`` may have (None: any, the annotation is not a plain one)."""
    if annotation is typing.Any:
        return None
    if annotation is type(None) or annotation is None:
        return ["null"]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        for arg in typing.get_args(annotation):
            sub = _json_kinds(arg)
            if sub is None:
                return None
            kinds += [k for k in sub if k not in kinds]
        return kinds
    if origin is typing.Literal:
        return sorted({_json_kinds(type(value))[0] for value in typing.get_args(annotation)})
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    target = origin or annotation
    if target in simple:
        return [simple[target]]
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return ["string"]
    return None


def installed_fields() -> dict[str, dict[str, list[str] | None]]:
    """Per config class: field name -> JSON types, read from the installed TRL (seconds: it imports TRL)."""
    import trl

    out: dict[str, dict[str, list[str] | None]] = {}
    for name in sorted(set(CONFIG_CLASSES.values())):
        cls = getattr(trl, name)
        hints = typing.get_type_hints(cls)
        out[name] = {f.name: _json_kinds(hints.get(f.name, typing.Any)) for f in dataclasses.fields(cls) if f.init}
    return out


@functools.cache
def cached_fields() -> dict[str, dict[str, list[str] | None]]:
    """The field list shipped in :data:`FIELDS_FILE` (regenerate it with ``python -m lexalign.config.trainer_args``)."""
    return json.loads(FIELDS_FILE.read_text(encoding="utf-8"))["classes"]


def _value_fits(value, kinds: list[str] | None) -> bool:
    if kinds is None:
        return True
    if value is None:
        return "null" in kinds
    for kind in kinds:
        wanted = _JSON_TYPES.get(kind)
        if wanted and isinstance(value, wanted) and not (isinstance(value, bool) and kind in ("integer", "number")):
            return True
    return False


def check_section(where: str, trainers: Iterable[str], values: Mapping) -> None:
    """Check one preset section's keys against the TRL config classes of ``trainers`` (the trainers of
    the run's methods that read the section).

    A key is valid when it is a field of every one of those classes (the shared ``train`` section is
    read by several; :data:`NOT_FOR_EVERY_TRAINER` excepted), a workflow key or an alias. ``where``
    names the section in the error (``train.presets.paper.rl``).
    """
    classes = [CONFIG_CLASSES[t] for t in dict.fromkeys(trainers)]
    fields = cached_fields()
    valid: dict[str, list[str] | None] = {}
    owner: dict[str, str] = {}
    for name in classes:
        for key, kinds in fields[name].items():
            valid.setdefault(key, kinds)
            owner.setdefault(key, name)
    for key, value in values.items():
        if key in OWN_KEYS or key in ALIASES:
            continue
        lacking = [name for name in classes if key not in fields[name]]
        if key in valid and lacking and key not in NOT_FOR_EVERY_TRAINER:
            holders = [name for name in classes if name not in lacking]
            sections = [SECTIONS[t] for t, name in CONFIG_CLASSES.items() if name in holders]
            raise LexalignError(
                f"{where}.{key}: a {', '.join(holders)} setting, not a {', '.join(lacking)} one; "
                f"set it under {' and '.join(sections)} instead"
            )
        if key in COMPUTED and key in valid:
            raise LexalignError(f"{where}.{key}: set by the workflow, not by a preset ({COMPUTED[key]})")
        if key not in valid:
            close = difflib.get_close_matches(key, [*valid, *OWN_KEYS, *ALIASES], n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else "see the TRL docs of that class"
            names = " or ".join([", ".join(classes[:-1]), classes[-1]] if len(classes) > 1 else classes)
            raise LexalignError(f"{where}.{key}: not a {names} setting ({hint})")
        if not _value_fits(value, valid[key]):
            raise LexalignError(
                f"{where}.{key}: {value!r} is not of type {' or '.join(valid[key] or [])} (its type in {owner[key]})"
            )


def main(argv: list[str] | None = None) -> int:
    """``python -m lexalign.config.trainer_args [--check]``: write (or compare) resources/trainer_fields.json."""
    import argparse

    import trl

    parser = argparse.ArgumentParser(prog="python -m lexalign.config.trainer_args", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="only say whether the file matches the installed TRL")
    args = parser.parse_args(argv)
    current = {"trl": trl.__version__, "classes": installed_fields()}
    if args.check:
        stored = json.loads(FIELDS_FILE.read_text(encoding="utf-8"))
        if stored["classes"] != current["classes"]:
            raise LexalignError(
                f"{FIELDS_FILE}: written for TRL {stored.get('trl')}, the installed TRL {trl.__version__} has other "
                "fields; rerun python -m lexalign.config.trainer_args"
            )
        print(f"{FIELDS_FILE.name} matches TRL {trl.__version__}")
        return 0
    FIELDS_FILE.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {FIELDS_FILE} for TRL {trl.__version__}")
    return 0


if __name__ == "__main__":
    import sys

    from lexalign.core.snake import run_command

    sys.exit(run_command(main))
