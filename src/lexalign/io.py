"""Atomic output writing: a failed step leaves no half-written file or directory behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    Works for files and directories alike: whatever the block creates at the yielded
    path replaces ``path`` in one rename.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{target}: the writer produced no output")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    from lexalign.errors import LexalignError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LexalignError(f"{path}: not valid UTF-8 JSON ({exc})") from None


def read_parquet_table(path: str | os.PathLike, required: Iterable[str], expected: str):
    """Read a Parquet table another stage wrote, checking it has the ``required`` columns.

    ``expected`` names the table for the error message ("the templates stage's eval table").
    """
    import polars as pl

    from lexalign.errors import LexalignError

    try:
        table = pl.read_parquet(path)
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except pl.exceptions.PolarsError as exc:
        raise LexalignError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise LexalignError(f"{path}: missing column(s) {', '.join(missing)}; expected {expected}")
    return table
