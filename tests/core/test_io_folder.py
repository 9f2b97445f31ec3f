"""What a command may replace (the manifest, --force) and folder outputs that land whole (atomic_folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lexalign.core import io
from lexalign.core.errors import LexalignError
from lexalign.core.io import MANIFEST, atomic_folder, check_replaceable, record_written, written_here


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
        if p.name != MANIFEST
    }


def write_set(folder: Path, version: str, force: bool = False, replaced=()) -> None:
    with atomic_folder(folder, force=force, replaced=replaced) as new:
        (new / "a.txt").write_text(f"a {version}")
        (new / "sub").mkdir()
        (new / "sub" / "b.txt").write_text(f"b {version}")


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_manifest_knows_what_lexalign_wrote_until_it_is_edited(tmp_path):
    mine, theirs = tmp_path / "mine.json", tmp_path / "theirs.txt"
    mine.write_text("{}")
    theirs.write_text("user")
    record_written([mine])
    assert written_here(mine) and not written_here(theirs)
    check_replaceable(mine)
    check_replaceable(tmp_path / "absent.json")
    refused = r"^--out \S*theirs.txt: exists and lexalign did not write it; move it away or pass --force$"
    with pytest.raises(LexalignError, match=refused):
        check_replaceable(theirs, what="--out")
    check_replaceable(theirs, force=True)
    mine.write_text('{"edited": 1}')
    assert not written_here(mine)
    with pytest.raises(LexalignError, match="mine.json"):
        check_replaceable(mine)
    mine.unlink()
    with pytest.raises(LexalignError, match=r"theirs.txt exists and lexalign did not write it"):
        check_replaceable(tmp_path)


def test_rerun_replaces_its_own_files_and_keeps_the_users(tmp_path):
    out = tmp_path / "out"
    write_set(out, "1")
    (out / "notes.md").write_text("user notes")
    (out / "sub" / "mine.csv").write_text("user table")
    (out / "empty").mkdir()
    inode = (out / "notes.md").stat().st_ino
    write_set(out, "2")
    assert snapshot(out) == {
        "a.txt": b"a 2",
        "empty": None,
        "notes.md": b"user notes",
        "sub": None,
        "sub/b.txt": b"b 2",
        "sub/mine.csv": b"user table",
    }
    assert (out / "notes.md").stat().st_ino == inode  # the user's file itself, not a copy
    assert written_here(out / "a.txt") and written_here(out / "sub" / "b.txt")
    assert not written_here(out / "notes.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no scratch or moved-aside folder left


def test_a_user_file_at_an_output_path_is_refused_unless_forced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("the user's a")
    with pytest.raises(LexalignError, match=r"a.txt exists and lexalign did not write it"):
        write_set(out, "1")
    assert snapshot(out) == {"a.txt": b"the user's a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    write_set(out, "1", force=True)
    assert (out / "a.txt").read_text() == "a 1"


def test_replaced_subfolders_drop_stale_outputs_but_not_user_files(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as new:
        (new / "sub").mkdir()
        (new / "sub" / "old_figure.png").write_bytes(b"old")
    write_set(out, "1", replaced=["sub"])
    assert snapshot(out / "sub") == {"b.txt": b"b 1"}  # lexalign's stale file went with its folder
    (out / "sub" / "user.png").write_bytes(b"user")
    with pytest.raises(LexalignError, match="user.png"):
        write_set(out, "2", replaced=["sub"])
    assert (out / "a.txt").read_text() == "a 1"
    write_set(out, "2", replaced=["sub"], force=True)
    assert snapshot(out / "sub") == {"b.txt": b"b 2"}


def test_a_failed_block_leaves_the_old_folder(tmp_path):
    out = tmp_path / "out"
    write_set(out, "1")
    with pytest.raises(ZeroDivisionError):
        with atomic_folder(out) as new:
            (new / "a.txt").write_text("half")
            raise ZeroDivisionError
    assert snapshot(out) == {"a.txt": b"a 1", "sub": None, "sub/b.txt": b"b 1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_between_the_moves_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_set(out, "1")

    def fail():
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "between_moves", fail)
    with pytest.raises(KeyboardInterrupt):
        write_set(out, "2")
    assert snapshot(out) == {"a.txt": b"a 1", "sub": None, "sub/b.txt": b"b 1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_writer_killed_between_the_moves_leaves_old_or_nothing_and_the_next_restores(tmp_path):
    out = tmp_path / "out"
    write_set(out, "1")
    (out / "notes.md").write_text("user notes")
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from lexalign.core import io
        io.between_moves = lambda: os.kill(os.getpid(), signal.SIGKILL)
        with io.atomic_folder(Path({str(out)!r})) as new:
            (new / "a.txt").write_text("a 2")
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == -9
    assert not out.exists()  # never a mix: the old set is aside, the new one in its scratch
    aside = [p for p in tmp_path.iterdir() if ".out.old" in p.name]
    assert len(aside) == 1 and snapshot(aside[0])["notes.md"] == b"user notes"
    with pytest.raises(ZeroDivisionError):  # the next writer puts the old folder back first
        with atomic_folder(out):
            assert snapshot(out) == {"a.txt": b"a 1", "notes.md": b"user notes", "sub": None, "sub/b.txt": b"b 1"}
            raise ZeroDivisionError
    write_set(out, "3")
    assert snapshot(out) == {"a.txt": b"a 3", "notes.md": b"user notes", "sub": None, "sub/b.txt": b"b 3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_moved_aside_folder_is_dropped_only_when_nothing_in_it_would_be_lost(tmp_path):
    out = tmp_path / "out"
    write_set(out, "1")
    pid = dead_pid()
    landed = tmp_path / f".out.old{pid}-abcd1234"  # killed after the swap: its files are in out, or lexalign's
    landed.mkdir()
    os.link(out / "a.txt", landed / "a.txt")
    lost = tmp_path / f".out.old{pid}-efgh5678"  # a file that is nowhere else: kept
    lost.mkdir()
    (lost / "only-copy.txt").write_text("user")
    write_set(out, "2")
    assert not landed.exists()
    assert snapshot(lost) == {"only-copy.txt": b"user"}


def test_a_killed_writers_scratch_is_removed(tmp_path):
    out = tmp_path / "out"
    leftover = tmp_path / f".out.tmp{dead_pid()}-abcd1234"
    (leftover / "out").mkdir(parents=True)
    (leftover / "out" / "half.txt").write_text("half")
    write_set(out, "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_folder_output_paths_that_are_not_folders(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LexalignError, match="is an existing file; give a folder path"):
        write_set(tmp_path / "file", "1")
    with pytest.raises(LexalignError, match="not a file name"):
        write_set(Path(""), "1")
    real = tmp_path / "real"
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    write_set(tmp_path / "link", "1")
    assert (tmp_path / "link").is_symlink() and (real / "a.txt").read_text() == "a 1"
