"""Typed access to the stages' results JSON files: every wrong type is one line naming file and field."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.io import read_json

#: The highest schema_version of each stage's results file that the report's readers understand
#: (a file without one is version 1, the first layout).
SCHEMA_VERSIONS = {"lexical": 2, "wvs": 3, "train": 1}


class Fields:
    """Typed access to one JSON object of a results file; a wrong type names the file and the field."""

    def __init__(self, data: Any, file: Path, where: str = ""):
        if not isinstance(data, Mapping):
            raise LexalignError(f"{file}: {where or 'top level'} is not a JSON object")
        self.data, self.file, self.where = data, file, where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LexalignError(f"{self.file}: {self._name(key)} is {value!r}, expected a number or null")
        return float(value) if math.isfinite(value) else None

    def integer(self, key: str) -> int | None:
        value = self.number(key)
        return None if value is None else int(value)

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise LexalignError(f"{self.file}: {self._name(key)} is {value!r}, expected a string")
        return value

    def object(self, key: str, required: bool = False) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise LexalignError(f"{self.file}: {self._name(key)} is missing")
            return None
        return Fields(value, self.file, self._name(key))

    def objects(self, key: str) -> list[Fields]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise LexalignError(f"{self.file}: {self._name(key)} is not a list")
        return [Fields(v, self.file, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]

    def items(self) -> Iterable[tuple[str, Any]]:
        return self.data.items()


def read_results_json(path: Path, stage: str) -> Fields:
    """A stage's results JSON, refused when its ``schema_version`` is newer than these readers know."""
    data = Fields(read_json(path), path)
    version = data.integer("schema_version") or 1
    if version > SCHEMA_VERSIONS[stage]:
        raise LexalignError(
            f"{path}: schema_version {version} is newer than this report reads ({SCHEMA_VERSIONS[stage]}); "
            "update lexalign or rerun the stage"
        )
    return data
