"""The installed command and the workflow from a folder outside the checkout: help, work and one-line errors
as at the repository root (the schema and shipped files are package data; the embedded default's data
paths are the checkout's)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from lexalign.cli import COMMANDS


def lexalign_command() -> list[str]:
    installed = shutil.which("lexalign")
    return [installed] if installed else [sys.executable, "-m", "lexalign"]


def run(args: list[str], cwd, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def elsewhere(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_every_help_works_from_another_folder(elsewhere, command):
    done = run([*lexalign_command(), *command, "--help"], elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ") and done.stdout.endswith("\n")


def test_validate_and_ingest_work_from_another_folder(elsewhere, repo):
    done = run(
        [*lexalign_command(), "validate-config", str(repo / "config" / "config.yaml"), "--no-check-paths"], elsewhere
    )
    assert done.returncode == 0, done.stderr
    norms = repo / "data" / "illustrative" / "SWOWZH.R55.illustrative.csv"
    done = run([*lexalign_command(), "ingest", str(norms), "--out-dir", "out"], elsewhere)
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "out" / "associations.parquet").is_file() and (elsewhere / "out" / "stats.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate-config", "absent.yaml"], "lexalign error: absent.yaml: config file not found"),
        (["ingest", "absent.csv", "--out-dir", "out"], "lexalign error: absent.csv"),
        (["config-docs", "--check"], "lexalign error: config/README.md: no such file"),
    ],
)
def test_bad_input_is_one_line_from_another_folder(elsewhere, args, message):
    done = run([*lexalign_command(), *args], elsewhere)
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def test_workflow_plans_the_embedded_default_from_another_folder(elsewhere, repo):
    done = run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(repo / "Snakefile"),
            "--directory",
            str(elsewhere),
            "-n",
        ],
        elsewhere,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "prepare_model" in done.stdout + done.stderr


def test_workflow_config_error_is_one_line_from_another_folder(elsewhere, repo):
    (elsewhere / "config").mkdir()
    (elsewhere / "config" / "config.yaml").write_text("run:\n  methods: [vanilla, nonsense]\n", encoding="utf-8")
    done = run([sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "-n"], elsewhere)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("lexalign error: config: run.methods.1: 'nonsense'")
