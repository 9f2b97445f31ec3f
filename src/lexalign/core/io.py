"""Atomic output writing: a failed step leaves no half-written file or directory behind, and a writer
never removes anything it did not create itself."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lexalign.core.errors import LexalignError

# atomic_path's scratch folder next to the output: ".<name>.tmp<pid>-<8 random characters>" (the random
# part is tempfile.mkdtemp's). Found later with a dead pid, it is the leftover of a killed writer.
_RANDOM = r"[a-z0-9_]{8}"


def _leftover_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\.{re.escape(name)}\.tmp(?P<pid>\d+)-{_RANDOM}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove scratch folders that killed earlier writers of ``path`` left beside it; return them.

    Only folders in ``path``'s own folder whose name matches atomic_path's exact pattern, and which hold
    nothing but (optionally) an entry named like ``path``, are removed; a scratch folder of a writer that
    is still running on this machine is left alone.
    """
    target = Path(os.path.abspath(path))
    pattern = _leftover_pattern(target.name)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        if _process_alive(int(match["pid"])):
            continue
        try:
            inside = os.listdir(entry.path)
        except OSError:
            continue
        if any(name != target.name for name in inside):
            continue  # not the shape atomic_path leaves: not ours to delete
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _target_of(path: str | os.PathLike) -> Path:
    raw = os.fspath(path)
    target = Path(os.path.abspath(raw))
    if not raw or not target.name or Path(raw).name in ("", ".", ".."):
        raise LexalignError(
            f"{raw or repr(raw)}: not a file name to write to; give a path that ends in a file or folder name"
        )
    return target


def _refuse_filled_folder(target: Path) -> None:
    """A non-empty folder at ``target`` is the user's: never replaced."""
    if target.is_dir() and not target.is_symlink() and any(target.iterdir()):
        raise LexalignError(
            f"{target}: is an existing folder that is not empty; remove it or choose another output path"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; move it onto ``path`` only if the block succeeds.

    Works for files and directories alike: whatever the block creates at the yielded path replaces
    ``path`` in one rename. It removes only what it created itself (its scratch folder, and the
    parent folders it had to make when the block fails); an existing file at ``path`` is replaced,
    an existing empty folder too, but an existing non-empty folder is refused, never deleted.
    Leftover scratch folders of killed earlier writers of ``path`` are cleaned up first.
    """
    target = _target_of(path)
    _refuse_filled_folder(target)
    made = []
    parent = target.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LexalignError(f"{target}: cannot create its folder ({exc.strerror or exc})") from None
    remove_leftovers(target)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise LexalignError(f"{target}: cannot write in {target.parent} ({exc.strerror or exc})") from None
    tmp = scratch / target.name
    done = False
    try:
        yield tmp
        if not tmp.exists() and not tmp.is_symlink():
            raise RuntimeError(f"{target}: the writer produced no output")
        if target.is_dir() and not target.is_symlink():
            if not tmp.is_dir() or tmp.is_symlink():
                raise LexalignError(f"{target}: is an existing folder; expected a file path")
            _refuse_filled_folder(target)  # again: another process may have filled it meanwhile
        os.replace(tmp, target)
        done = True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not done:
            for folder in made:  # innermost first; only folders this call created, and only when empty
                try:
                    folder.rmdir()
                except OSError:
                    break


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), kind: str = "file", what: str = "output"
) -> Path:
    """Refuse, with one line, an output path a command must not write: returns it as a Path.

    ``kind="file"``: the output must not be an existing folder. ``kind="dir"``: a folder the command
    creates or replaces as a whole; it must not be an existing file, and no input may lie inside it.
    Either way the output must not be one of the command's ``inputs`` (same file, through any link).
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"check_output: kind must be 'file' or 'dir', not {kind!r}")
    target = _target_of(out)
    shown = os.fspath(out)
    if kind == "file" and target.is_dir():
        raise LexalignError(
            f"{what} {shown}: is an existing folder; give a file path (e.g. {Path(shown) / 'scores.json'})"
        )
    if kind == "dir" and target.exists() and not target.is_dir():
        raise LexalignError(f"{what} {shown}: is an existing file; give a folder path")
    for source in inputs:
        source_path = Path(os.path.abspath(source))
        if _same_file(source_path, target):
            raise LexalignError(
                f"{what} {shown}: is the same file as the input {os.fspath(source)}; writing it would destroy the input"
            )
        if kind == "dir" and source_path.resolve().is_relative_to(target.resolve()):
            raise LexalignError(
                f"{what} {shown}: contains the input {os.fspath(source)}; choose an output folder outside it"
            )
    return target


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
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
