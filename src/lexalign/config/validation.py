"""Workflow configuration: schema validation with defaults, and the checks a schema cannot express."""

from __future__ import annotations

import copy
import functools
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lexalign.config import countries as wvs_countries
from lexalign.config import methods, presets
from lexalign.config.derive import assoc_model_method
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA

#: How far split shares may miss a sum of 1 (YAML decimals such as 0.7 + 0.2 + 0.1 are not exact).
SPLIT_TOLERANCE = 1e-6
#: Keys an older config may still use -> the key that replaced them (the error names the new one).
RENAMED_KEYS = {
    ("wvs", "framing"): "wvs.framings (a list, e.g. [interviewer]; one wvs job per framing)",
    ("wvs", "mode"): "wvs.modes (a list, e.g. [logits, generate]; every mode an output folder of its own)",
}


def _validator_with_defaults(schema: Mapping) -> jsonschema.protocols.Validator:
    """A Draft 2020-12 validator that fills in ``default`` values while it validates."""
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _one_line(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{_where(error)}: {error.message}; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{_where(error)}: {error.instance!r} is not one of {error.validator_value}"
    return f"{_where(error)}: {error.message}"


def check_finite(value: Any, source: str = "config", where: str = "") -> None:
    """Refuse ``.inf`` and ``.nan`` anywhere in a config (YAML reads them as floats; no range check catches NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise LexalignError(f"{source}: {where or '(top level)'}: {value} is not a finite number")
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(item, source, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, source, f"{where}.{index}" if where else str(index))


@functools.cache
def _read_schema(schema_path: str) -> dict:
    return yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))


def validate_config(
    config: dict, schema_path: str | os.PathLike = SCHEMA, source: str = "config", base: str | os.PathLike | None = None
) -> dict:
    """Validate ``config`` in place against the YAML JSON-schema, filling defaults; with ``base``, relative
    model and norms paths are taken relative to ``base`` (the checkout, for its embedded default config).

    Raises LexalignError with one line naming the config source, the key path and the problem.
    """
    check_finite(config, source)
    check_renamed(config, source)
    schema = copy.deepcopy(_read_schema(str(schema_path)))
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), _where(e)))
    if errors:
        # The deepest error is the most specific one; report it alone, in one line.
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        raise LexalignError(f"{source}: {_one_line(deepest)}")
    check_consistency(config, source, base)
    return config


def check_renamed(config: Mapping, source: str = "config") -> None:
    """Refuse a key that was renamed, with one line saying the key that replaced it."""
    for (section, key), replacement in RENAMED_KEYS.items():
        block = config.get(section)
        if isinstance(block, Mapping) and key in block:
            raise LexalignError(f"{source}: {section}.{key} was replaced by {replacement}: rename the key")


def check_consistency(config: dict, source: str = "config", base: str | os.PathLike | None = None) -> None:
    """Cross-references the schema cannot check: run grid names, presets, model paths."""
    run = config["run"]
    for section, key in (("models", "models"), ("languages", "languages")):
        for name in run[key]:
            if name not in config[section]:
                known = ", ".join(sorted(config[section])) or "none"
                raise LexalignError(f"{source}: run.{key}: {name!r} is not defined under {section}: (defined: {known})")
    for method in run["methods"]:
        if method not in methods.REGISTRY:
            raise LexalignError(
                f"{source}: run.methods: {method!r} is not a method (known: {', '.join(methods.NAMES)})"
            )
    preset = config["train"]["preset"]
    defined = {**presets.builtin_presets(), **config["train"]["presets"]}
    if preset not in defined:
        known = ", ".join(sorted(defined))
        raise LexalignError(
            f"{source}: train.preset: {preset!r} is not a preset under train.presets (defined: {known})"
        )
    presets.check_presets(presets.TrainSection.from_config(config["train"]), run["methods"], source)
    assoc_model_method(config["wvs"], run["methods"])  # an unknown wvs.assoc_model_method: one line
    wvs_countries.check_languages(config, source)  # a WVS-7 pair, and every run language's wvs_country in it
    split = {name: config["split"][name] for name in ("train", "val", "test")}
    total = sum(split.values())
    if abs(total - 1) > SPLIT_TOLERANCE:
        shares = ", ".join(f"{name} {value:g}" for name, value in split.items())
        raise LexalignError(f"{source}: split: the shares must sum to 1 ({shares} sum to {total:g})")
    check_eval_bounds(config["templates"]["eval_bounds"], source)
    _expand_paths(config, base)
    if config["check_paths"]:
        check_paths(config, source)


def check_eval_bounds(bounds: list[int], source: str = "config") -> None:
    """templates.eval_bounds is [low, high]: checked at start-up and by the template job's settings."""
    lo, hi = bounds
    if lo > hi:
        raise LexalignError(f"{source}: templates.eval_bounds: [{lo}, {hi}] is reversed; write [low, high]")


def check_paths(config: dict, source: str = "config") -> None:
    """The model directories, chat templates and norms files of the run exist (``check_paths: false`` skips
    this at start-up; each job then checks its own inputs)."""
    run = config["run"]
    for name in run["models"]:
        spec = config["models"][name]
        if "path" in spec:
            path = Path(spec["path"])
            if not path.is_dir():
                raise LexalignError(f"{source}: models.{name}.path: {spec['path']} is not a directory")
            if not (path / "config.json").is_file():
                raise LexalignError(
                    f"{source}: models.{name}.path: {spec['path']} has no config.json "
                    "(not a Hugging Face model directory)"
                )
        template = spec.get("chat_template")
        if template and not Path(template).is_file():
            raise LexalignError(f"{source}: models.{name}.chat_template: {template} {_not_a_file(template)}")
    for lang in run["languages"]:
        norms = config["languages"][lang]["norms"]["path"]
        if not Path(norms).is_file():
            raise LexalignError(f"{source}: languages.{lang}.norms.path: {norms} {_not_a_file(norms)}")


def _not_a_file(path: str | os.PathLike) -> str:
    """Why a path that must be a file is not one."""
    return "is a folder, not a file" if Path(path).is_dir() else "does not exist"


def _expand_paths(config: dict, base: str | os.PathLike | None = None) -> None:
    """Expand ``~`` and ``$VARS`` in model and norms paths (cluster configs say ``$MODELS/Llama-3.1-8B``);
    with ``base``, a relative path is made relative to it."""

    def expanded(path: str) -> str:
        path = os.path.expanduser(os.path.expandvars(path))
        return str(Path(base, path)) if base is not None and not os.path.isabs(path) else path

    for spec in config["models"].values():
        for key in ("path", "chat_template"):
            if key in spec:
                spec[key] = expanded(spec[key])
    for spec in config["languages"].values():
        spec["norms"]["path"] = expanded(spec["norms"]["path"])


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping key given twice (plain YAML lets the last one win silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Mapping | list):
                continue  # an unhashable key; the schema refuses it
            if key in seen:
                raise LexalignError(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice "
                    f"(first on line {seen[key] + 1}); keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


#: The key that makes Snakemake evaluate a config file as a YTE template: Python expressions in it run.
YTE_KEY = "__use_yte__"


def read_config_file(path: str | os.PathLike) -> dict:
    """A config file's mapping, read as plain YAML with duplicate keys refused; one line naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LexalignError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise LexalignError(f"{path}: is a folder, not a config file") from None
    except UnicodeDecodeError:
        raise LexalignError(f"{path}: not UTF-8 text") from None
    try:
        config = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except LexalignError as exc:
        raise LexalignError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise LexalignError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(config, dict):
        raise LexalignError(f"{path}: expected a mapping of config keys at the top level")
    return config


def load_config(
    path: str | os.PathLike, schema_path: str | os.PathLike = SCHEMA, check_paths: bool | None = None
) -> dict:
    """Read a YAML config file and validate it (used by the CLI and tests; Snakemake reads its own).

    ``check_paths`` set overrides the file's ``check_paths``.
    """
    config = read_config_file(path)
    config.pop(YTE_KEY, None)  # Snakemake's templating switch, not a workflow key (the CLI says what it means)
    if not isinstance(config, dict):
        raise LexalignError(f"{path}: expected a mapping of config keys at the top level")
    if check_paths is not None:
        config["check_paths"] = check_paths
    return validate_config(config, schema_path, source=str(path))
