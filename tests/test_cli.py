"""The ``lexalign`` command and the illustrative data generator."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys

from lexalign.cli import main


def test_validate_config_ok_and_error(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert main(["validate-config", "config/config.yaml"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text((repo / "config" / "config.yaml").read_text() + "\nunknown_key: 1\n")
    assert main(["validate-config", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lexalign error: {bad}: (top level): Additional properties are not allowed ('unknown_key'")
    assert "\n" not in err


def test_ingest_command(swow_en, tmp_path, capsys):
    code = main(
        [
            "ingest",
            str(swow_en),
            "--out-dir",
            str(tmp_path),
            "--filter",
            "country=United States",
            "--filter",
            "nativeLanguage=United States",
        ]
    )
    assert code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["participant_filter"] == {"country": ["United States"], "nativeLanguage": ["United States"]}
    assert json.loads(capsys.readouterr().out) == stats


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "usage: lexalign COMMAND" in capsys.readouterr().out


def test_console_script_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lexalign.cli", "ingest", str(tmp_path / "absent.csv"), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"lexalign error: {tmp_path / 'absent.csv'}: file not found"


def test_illustrative_data_is_reproducible(repo, tmp_path):
    folder = repo / "data" / "illustrative"
    subprocess.run(
        [sys.executable, str(folder / "make_illustrative.py"), "--outdir", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in (
        "SWOW-EN.R100.illustrative.csv",
        "SWOWZH.R55.illustrative.csv",
        "strength.SWOW-EN.R123.illustrative.csv",
        "expected_en.json",
        "expected_zh.json",
    ):
        assert filecmp.cmp(folder / name, tmp_path / name, shallow=False), name


def test_validate_config_with_placeholder_paths(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert main(["validate-config", "config/paper.yaml"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lexalign error: config/paper.yaml: models.") and err.endswith("is not a directory")
    assert main(["validate-config", "config/paper.yaml", "--no-check-paths"]) == 0
    assert capsys.readouterr().out.strip() == "config/paper.yaml: valid"


def test_config_docs_command(repo, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(repo)
    assert main(["config-docs", "--check"]) == 0
    out = tmp_path / "README.md"
    assert main(["config-docs", "--out", str(out)]) == 0
    assert out.read_text() == (repo / "config" / "README.md").read_text()
