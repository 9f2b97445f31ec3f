"""Atomic writing and output checks: a writer removes only what it created itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, check_output, remove_leftovers, write_json


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_file_written_atomically_and_replaced(tmp_path):
    out = tmp_path / "a" / "b" / "out.json"
    write_json(out, {"x": 1})
    write_json(out, {"x": 2})
    assert out.read_text() == '{\n  "x": 2\n}\n'
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.json"]


def test_failed_block_leaves_nothing_and_removes_only_folders_it_made(tmp_path):
    out = tmp_path / "new" / "deeper" / "out.txt"
    with pytest.raises(ZeroDivisionError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise ZeroDivisionError
    assert sorted(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(tmp_path / "mine" / "out.txt"):
            raise ZeroDivisionError
    assert snapshot(tmp_path / "mine") == {"keep.txt": b"user data"}


def test_failure_keeps_the_previous_output(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("previous")
    with pytest.raises(RuntimeError, match="produced no output"):
        with atomic_path(out):
            pass
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_directory_output(tmp_path):
    out = tmp_path / "adapter"
    with atomic_path(out) as tmp:
        tmp.mkdir()
        (tmp / "weights.bin").write_bytes(b"w")
    assert snapshot(out) == {"weights.bin": b"w"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_path(empty) as tmp:
        tmp.mkdir()
        (tmp / "f").write_text("x")
    assert snapshot(empty) == {"f": b"x"}


def test_users_folder_is_never_deleted(tmp_path):
    users = tmp_path / "results"
    (users / "sub").mkdir(parents=True)
    (users / "sub" / "thesis.tex").write_text("years of work")
    before = snapshot(users)
    with pytest.raises(LexalignError) as info:
        write_json(users, {"x": 1})
    assert (
        str(info.value) == f"{users}: is an existing folder that is not empty; remove it or choose another output path"
    )
    with pytest.raises(LexalignError):
        with atomic_path(users) as tmp:
            tmp.mkdir()
    assert snapshot(users) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_empty_folder_is_not_replaced_by_a_file(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(LexalignError, match="is an existing folder; expected a file path"):
        write_json(folder, {})
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("name", [".", "", "..", "sub/.."])
def test_working_directory_survives(tmp_path, monkeypatch, name):
    (tmp_path / "sub").mkdir()
    (tmp_path / "data.csv").write_text("cue,R1\n")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(LexalignError, match="not a file name to write to"):
        write_json(name, {"x": 1})
    with pytest.raises(LexalignError, match="not a file name to write to"):
        check_output(name, ["data.csv"])
    assert snapshot(tmp_path) == before


def test_leftovers_of_killed_writers_are_removed_only_when_they_match(tmp_path):
    out = tmp_path / "associations.parquet"
    script = textwrap.dedent(f"""
        import os
        from lexalign.core.io import atomic_path
        with atomic_path({str(out)!r}) as tmp:
            tmp.write_text("half")
            os._exit(9)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == 9
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".associations.parquet.tmp")]
    assert len(leftovers) == 1 and not out.exists()
    # Look-alikes that are not atomic_path's scratch folders of this output stay.
    keep = {
        ".associations.parquet.backup12": "associations.parquet",  # no tmp<pid>- part
        ".associations.parquet.tmp1-abcdefgh": "other.txt",  # holds something else
        ".stats.json.tmp1-abcdefgh": "stats.json",  # another output's
    }
    for name, inner in keep.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / inner).write_text("user")
    (tmp_path / "elsewhere").mkdir()
    foreign = tmp_path / "elsewhere" / ".associations.parquet.tmp1-abcdefgh"
    foreign.mkdir()
    live = tmp_path / f".associations.parquet.tmp{os.getpid()}-abcdefgh"  # a writer still running
    live.mkdir()
    with atomic_path(out) as tmp:
        tmp.write_text("whole")
    assert out.read_text() == "whole"
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"associations.parquet", "elsewhere", live.name, *keep}
    assert foreign.is_dir()
    assert remove_leftovers(out) == []


def test_check_output_refuses_folder_and_input(tmp_path):
    data = tmp_path / "gen.jsonl"
    data.write_text("{}\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    with pytest.raises(LexalignError) as info:
        check_output(tmp_path, [data], what="--out")
    assert (
        str(info.value)
        == f"--out {tmp_path}: is an existing folder; give a file path (e.g. {tmp_path / 'scores.json'})"
    )
    for out in (data, link, tmp_path / "." / "gen.jsonl"):
        with pytest.raises(LexalignError, match="is the same file as the input"):
            check_output(out, [data])
    with pytest.raises(LexalignError, match="is an existing file; give a folder path"):
        check_output(data, [], kind="dir")
    with pytest.raises(LexalignError, match="contains the input"):
        check_output(tmp_path, [data], kind="dir")
    assert check_output(tmp_path / "scores.json", [data]) == tmp_path / "scores.json"
    assert check_output(tmp_path / "new", [data], kind="dir") == tmp_path / "new"
    assert data.read_text() == "{}\n"


def test_parent_that_is_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file, not a folder")
    with pytest.raises(LexalignError) as info:
        write_json(blocker / "ingest" / "stats.json", {})
    assert str(info.value).startswith(f"{blocker / 'ingest' / 'stats.json'}: cannot create its folder (")
    assert blocker.read_text() == "a file, not a folder"
