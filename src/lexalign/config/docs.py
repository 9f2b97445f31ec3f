"""config/README.md, generated from src/lexalign/resources/schema.yaml so that the key reference never drifts.

``lexalign config-docs`` (or ``python -m lexalign.config.docs``) rewrites the file;
``--check`` exits 1 when it is stale (the tests run that).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA

HEADER = """# Configuration reference

<!-- Generated from src/lexalign/resources/schema.yaml by `lexalign config-docs`; do not edit by hand. -->

Every key the workflow reads, with its type, default and allowed values. `config/config.yaml` is the
embedded default (a CPU demonstration), `config/paper.yaml` the study's grid (pass it with
`--configfile`: it is merged onto the default), `.test/config/config.yaml` the tiny configuration
the tests use. Snakemake validates the merged configuration against `src/lexalign/resources/schema.yaml` before it
builds the DAG: an unknown key, a wrong type, an out-of-range number, `.inf` or `.nan`, or a name in
`run` that is not defined stops the run with one line naming the key. Check a file without Snakemake
with `lexalign validate-config FILE`.

`<name>` in a key stands for a name you choose (a model, a language, a preset). A key with a
default may be left out.
"""


def _resolve(schema: Mapping, root: Mapping) -> dict:
    """``schema`` with ``$ref`` and ``allOf`` folded in (the parts this reference shows)."""
    merged: dict[str, Any] = {}
    ref = schema.get("$ref")
    if ref:
        target: Any = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        merged.update(_resolve(target, root))
    for part in schema.get("allOf", []):
        resolved = _resolve(part, root)
        merged["properties"] = {**merged.get("properties", {}), **resolved.get("properties", {})}
        merged.update({k: v for k, v in resolved.items() if k != "properties"})
    for key, value in schema.items():
        if key in ("$ref", "allOf"):
            continue
        if key == "properties":
            merged["properties"] = {**merged.get("properties", {}), **value}
        else:
            merged[key] = value
    return merged


def _type(schema: Mapping) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'], ensure_ascii=False)}`"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    text = " or ".join(
        {"object": "mapping", "array": "list", "number": "number", "null": "null"}.get(k, k) for k in kinds
    )
    if "array" in kinds and isinstance(schema.get("items"), Mapping):
        items = _type(schema["items"])
        if items:
            text += f" of {items}"
    return text


def _limits(schema: Mapping) -> str:
    parts = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    for key, text in (("minItems", "at least {} items"), ("maxItems", "at most {} items")):
        if key in schema:
            parts.append(text.format(schema[key]))
    if schema.get("uniqueItems"):
        parts.append("no repeats")
    items = schema.get("items")
    if isinstance(items, Mapping):
        inner = _limits(items)
        if inner:
            parts.append(f"each {inner}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(
    schema: Mapping, root: Mapping, path: str, required: bool = False, top: bool = False
) -> Iterator[tuple[str, str, str, str, str]]:
    schema = _resolve(schema, root)
    if not (top and "properties" in schema):
        default = f"`{json.dumps(schema['default'], ensure_ascii=False)}`" if "default" in schema else ""
        kind = _type(schema) + (" (required)" if required else "")
        yield path, kind, default, _limits(schema), schema.get("description", "")
    needed = set(schema.get("required", []))
    for name, sub in (schema.get("properties") or {}).items():
        yield from _rows(sub, root, f"{path}.{name}", name in needed)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from _rows(extra, root, f"{path}.<name>")
    if isinstance(schema.get("items"), Mapping) and "properties" in _resolve(schema["items"], root):
        yield from _rows(schema["items"], root, f"{path}[]")


def render(schema: Mapping) -> str:
    """The Markdown reference of ``schema``: one table per top-level section."""
    lines = [HEADER]
    for section, sub in schema["properties"].items():
        resolved = _resolve(sub, schema)
        lines.append(f"## `{section}`\n")
        if resolved.get("description"):
            lines.append(_cell(resolved["description"]) + "\n")
        lines.append("| key | type | default | range | description |")
        lines.append("|---|---|---|---|---|")
        rows = _rows(sub, schema, section, section in schema.get("required", []), top=True)
        for key, kind, default, limits, text in rows:
            lines.append(f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(limits)} | {_cell(text)} |")
        lines.append("")
    return "\n".join(lines)


def render_file(schema_path: str | Path) -> str:
    return render(yaml.safe_load(Path(schema_path).read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lexalign config-docs", description="Write config/README.md from the schema.")
    parser.add_argument("--schema", default=str(SCHEMA))
    parser.add_argument("--out", default="config/README.md", help="the config reference (%(default)s)")
    parser.add_argument("--force", action="store_true", help="replace --out even if this command did not write it")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from what the schema gives")
    args = parser.parse_args(argv)
    if not Path(args.schema).is_file():
        raise LexalignError(f"--schema {args.schema}: schema file not found")
    from lexalign.core.io import generated_document

    text = render_file(args.schema)
    return generated_document(args.out, text, "lexalign config-docs", args.schema, args.check, args.force)


if __name__ == "__main__":
    from lexalign.core.snake import run_command

    sys.exit(run_command(main))
