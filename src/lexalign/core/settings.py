"""Typed settings built once from a validated config section.

Every stage keeps the config keys it reads in one frozen dataclass and builds it with
:func:`from_section`: a key the stage does not know, or one it needs and did not get, fails there with
the key's dotted name, not as a ``KeyError`` deep in a job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from lexalign.core.errors import LexalignError

T = TypeVar("T")


def field_names(cls: type) -> list[str]:
    """The config keys a settings class reads (its fields), sorted: what a rule passes as its params."""
    return sorted(field.name for field in dataclasses.fields(cls))


def from_section(cls: type[T], section: Mapping[str, Any], where: str, *, ignore: tuple[str, ...] = ()) -> T:
    """``cls`` filled from the config ``section`` (at dotted path ``where``): every field must be there,
    and every key of the section must be a field (or be named in ``ignore``: keys another stage reads)."""
    if not isinstance(section, Mapping):
        raise LexalignError(f"config {where}: expected a mapping, got {type(section).__name__}")
    names = field_names(cls)
    missing = [name for name in names if name not in section]
    if missing:
        listing = ", ".join(f"{where}.{name}" for name in missing)
        raise LexalignError(f"config {where}: no {listing} (validate the config against the schema first)")
    unknown = sorted(str(key) for key in section if key not in names and key not in ignore)
    if unknown:
        listing = ", ".join(f"{where}.{key}" for key in unknown)
        raise LexalignError(f"config {where}: unknown key {listing}")
    return cls(**{name: section[name] for name in names})
