"""Atomic output writing: a failed step leaves no half-written file or directory behind, and a writer
never removes anything it did not create itself."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
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


def file_signature(path: str | os.PathLike) -> dict:
    """Size and modification time (ns) of a user's data file, as a rule's param: a replaced file reruns its
    rule even when the replacement is older than the rule's outputs."""
    try:
        stat = Path(path).stat()
    except OSError:
        return {"missing": str(path)}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


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


# ---- what a command may replace ---------------------------------------------------------------
# A command outside Snakemake (the lexalign CLI, python -m lexalign.report) replaces only files it wrote
# itself: each folder it writes into keeps a manifest of the files it wrote there and their digests. A
# file the user made, or edited since, is not in it (or no longer matches) and is never replaced
# without --force.

MANIFEST = ".lexalign-manifest.json"


def _digest(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, str]:
    try:
        entries = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def written_here(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file lexalign wrote and nobody changed since (its folder's manifest says so)."""
    target = Path(os.path.abspath(path))
    if not target.is_file() or target.is_symlink():
        return False
    recorded = _manifest(target.parent).get(target.name)
    return recorded is not None and recorded == _digest(target)


def record_written(paths: Iterable[str | os.PathLike]) -> None:
    """Add the files just written to their folders' manifests (so a rerun of the command may replace them)."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        target = Path(os.path.abspath(path))
        by_folder.setdefault(target.parent, []).append(target)
    for folder, targets in by_folder.items():
        entries = _manifest(folder)
        entries.update({target.name: _digest(target) for target in targets if target.is_file()})
        with atomic_path(folder / MANIFEST) as tmp:
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _not_ours(path: Path, force: bool, what: str, shown: str) -> LexalignError | None:
    if force or written_here(path):
        return None
    which = "" if path == Path(os.path.abspath(shown)) else f" {path}"
    return LexalignError(f"{what} {shown}:{which} exists and lexalign did not write it; move it away or pass --force")


def check_replaceable(path: str | os.PathLike, force: bool = False, what: str = "output") -> None:
    """Refuse, with one line, to replace an existing file (or any file of a folder) lexalign did not write."""
    target = Path(os.path.abspath(path))
    if force or not os.path.lexists(target):
        return
    entries = [target] if target.is_symlink() or not target.is_dir() else _files_under(target)
    for entry in entries:
        error = _not_ours(entry, force, what, os.fspath(path))
        if error:
            raise error


def _files_under(folder: Path) -> list[Path]:
    """Every file (and link) under ``folder``, manifests left out, links not followed."""
    found = []
    for top, folders, files in os.walk(folder):
        links = [name for name in folders if os.path.islink(os.path.join(top, name))]
        found += [Path(top, name) for name in sorted(files + links) if name != MANIFEST]
    return found


#: Tests stop a writer here, between moving the old outputs aside and the new ones into place.
between_moves: Callable[[], None] | None = None


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, force: bool = False, replaced: Iterable[str] = (), what: str = "output"
) -> Iterator[Path]:
    """Yield an empty scratch folder; when the block succeeds it becomes ``path`` in one rename, so a
    command's outputs land together or not at all.

    Of an existing folder at ``path``, everything the new one does not replace is kept (hard-linked into
    it): the user's files and other commands' outputs. The new files replace old ones, and the old
    contents of the ``replaced`` subfolders (relative paths, e.g. the report's ``tables``) are dropped,
    only where lexalign wrote them (its manifest) or ``force`` allows it; otherwise one line naming the
    file, and nothing changes. The old folder is moved aside for the swap; a writer killed between the two
    renames leaves ``path`` absent and the old folder beside it, which the next writer puts back. The new
    files are recorded in the folder's manifest.
    """
    target = _target_of(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))  # write into the folder the link names, keep the link
    if os.path.lexists(target) and not target.is_dir():
        raise LexalignError(f"{what} {path}: is an existing file; give a folder path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _restore_moved_aside(target)
        remove_leftovers(target)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise LexalignError(f"{what} {path}: cannot write in {target.parent} ({exc.strerror or exc})") from None
    new = scratch / target.name
    new.mkdir()
    try:
        yield new
        outputs = [entry for entry in _files_under(new) if not entry.is_symlink()]
        kept = _carry_over(target, new, force, {Path(r) for r in replaced}, what, os.fspath(path))
        record_written(outputs + kept)
        aside = None
        if target.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old{os.getpid()}-", dir=target.parent))
            os.replace(target, aside)  # onto the empty folder mkdtemp made
        try:
            if between_moves is not None:
                between_moves()
            os.replace(new, target)
        except BaseException:
            if aside is not None and not os.path.lexists(target):
                os.replace(aside, target)
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _carry_over(old: Path, new: Path, force: bool, replaced: set[Path], what: str, shown: str) -> list[Path]:
    """Link into ``new`` every file of ``old`` it does not replace; refuse (before anything moves) to
    replace or drop a file lexalign did not write unless ``force``. Returns the kept files lexalign wrote."""
    if not old.is_dir():
        return []
    kept = []
    for top, folders, _ in os.walk(old):
        for name in folders:
            if not os.path.islink(os.path.join(top, name)):
                relative = Path(top, name).relative_to(old)
                if not _replaced(relative, new, replaced):
                    (new / relative).mkdir(parents=True, exist_ok=True)
    for source in _files_under(old):
        relative = source.relative_to(old)
        if _replaced(relative, new, replaced) or os.path.lexists(new / relative):
            error = _not_ours(source, force, what, shown)
            if error:
                raise error
            continue
        destination = new / relative
        try:
            try:
                os.link(source, destination, follow_symlinks=False)
            except OSError:
                if source.is_symlink():
                    os.symlink(os.readlink(source), destination)
                else:
                    shutil.copy2(source, destination)
        except OSError as exc:
            raise LexalignError(
                f"{what} {shown}: cannot keep {source} in the new folder ({exc.strerror or exc}); move it elsewhere"
            ) from None
        if written_here(source):
            kept.append(destination)
    return kept


def _replaced(relative: Path, new: Path, replaced: set[Path]) -> bool:
    """Whether the new folder replaces ``relative``: it lies in a ``replaced`` subfolder, or one of its
    folders is a file in the new folder."""
    parents = [parent for parent in relative.parents if parent != Path(".")]
    if replaced & {relative, *parents}:
        return True
    return any(os.path.lexists(new / parent) and not (new / parent).is_dir() for parent in parents)


def _restore_moved_aside(target: Path) -> None:
    """Put back an old output folder that a killed writer moved aside and did not replace; drop one whose
    files all landed in the new folder (killed after the swap, before removing it)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.old(?P<pid>\d+)-{_RANDOM}")
    for entry in sorted(target.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if not match or entry.is_symlink() or not entry.is_dir() or _process_alive(int(match["pid"])):
            continue
        if not target.exists():
            os.replace(entry, target)
        elif all(_landed(file, target / file.relative_to(entry)) for file in _files_under(entry)):
            shutil.rmtree(entry, ignore_errors=True)


def _landed(old: Path, new: Path) -> bool:
    """Whether dropping ``old`` loses nothing: lexalign wrote it, or the new folder holds the same file."""
    return written_here(old) or (os.path.lexists(new) and _same_file(old, new))


def write_owned_json(path: str | os.PathLike, data: Any, force: bool = False, what: str = "--out") -> None:
    """A command's JSON output: refuse a file lexalign did not write (unless ``force``), write it atomically and
    record it, so that the next run may replace it."""
    check_replaceable(path, force, what=what)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    record_written([path])


def generated_document(path: str | os.PathLike, text: str, command: str, source: str, check: bool, force: bool) -> int:
    """The body of a document generator (``lexalign config-docs``, ``lexalign contracts-doc``): with ``check``,
    refuse (one line) a ``path`` that differs from ``text``; else write it, replacing an existing file only when
    it carries the generator's marker (``by `<command>```) in its first lines, an earlier output, or with ``force``."""
    target = Path(path)
    if check:
        if not target.is_file():
            raise LexalignError(f"{path}: no such file (pass --out with the path of the document to check)")
        if target.read_text(encoding="utf-8") != text:
            raise LexalignError(f"{path}: out of date with {source}; run `{command}` to regenerate it")
        print(f"{path}: up to date")
        return 0
    if target.is_dir():
        raise LexalignError(f"--out {path}: is a folder; give a file path")
    if target.exists() and not force:
        with open(target, encoding="utf-8", errors="replace") as handle:
            head = "".join(handle.readline() for _ in range(5))
        if f"by `{command}`" not in head:
            raise LexalignError(
                f"--out {path}: exists and was not generated by this command; choose another path or pass --force"
            )
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(f"{path}: written")
    return 0
