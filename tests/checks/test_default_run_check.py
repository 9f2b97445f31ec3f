"""lexalign check (lexalign.checks): the command, and the default-run goals judged from a run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lexalign.checks.command import main

REPO = Path(__file__).resolve().parents[2]


SFT_GOAL = "tiny/en: SFT P@5 CI lower bound above the untrained model's (no norms in context)"


def test_check_command_lists_the_checks_and_refuses_an_unknown_one(capsys):
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("usage: lexalign check CHECK") and "gpu" in listing and "default-run" in listing
    assert main(["nope"]) == 2
    captured = capsys.readouterr()
    assert "usage: lexalign check CHECK" in captured.out
    assert captured.err.strip() == "lexalign check: unknown check 'nope'"


def test_default_run_check_at_tiny_size(tmp_path):
    """``python -m lexalign.checks default-run --tiny`` from a folder outside the checkout: the example run's
    goals, a table and the JSON figures, exit 0 (every goal met)."""
    out = tmp_path / "default_run.json"
    done = subprocess.run(
        [sys.executable, "-m", "lexalign.checks", "default-run", "--tiny", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("goal ") and "generated example run" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert len(results) == 6 and {r["status"] for r in results} == {"PASS"}


def test_gpu_check_outside_a_checkout_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lexalign.checks", "gpu", "--tiny"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1
    why = "not a lexalign checkout (no config/config.yaml): run in the checkout or pass its folder"
    assert done.stderr.strip() == f"lexalign error: {tmp_path.resolve()}: {why}"


def test_default_run_goals_are_judged_from_the_run_folder(tmp_path):
    from lexalign.checks.default_run import evaluate, write_example

    write_example(tmp_path)
    judged = {r.metric: (r.value, r.status) for r in evaluate(tmp_path)}
    assert judged["default DAG wall time, model prepared"] == (690.0, "PASS")  # 750.5 s less prepare_model 60.5 s
    assert judged["tiny/en/sft: test cues with >= 10 distinct words"] == (0.95, "PASS")  # 19 of 20
    assert judged["tiny/en/dpo: answers at the token cap"] == (0.05, "PASS")  # 1 of 20
    assert judged[SFT_GOAL] == (0.4, "PASS")
    log = next((tmp_path / ".snakemake" / "log").iterdir())
    log.write_text(log.read_text().replace("0:12:30.5", "0:16:00"))
    scores = tmp_path / "results" / "lexical" / "tiny" / "en" / "vanilla" / "scores.json"
    scores.write_text(scores.read_text().replace("[0, 0]", "[0.3, 0.45]"))
    judged = {r.metric: (r.value, r.status) for r in evaluate(tmp_path)}
    assert judged["default DAG wall time, model prepared"] == (899.5, "PASS")  # 960 - 60.5
    assert judged[SFT_GOAL] == (-0.05, "MISS")
