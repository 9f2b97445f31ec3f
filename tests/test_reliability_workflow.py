"""Wrong reruns (issue 27): the params Snakemake compares are canonical, and a wvs job depends on what
humans.parquet is made of, not on every wvs_humans rerun (a new wvs.bad_rows, a key order)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TARGET = "results/wvs/tiny/en/vanilla/interviewer-logits/metrics.json"


def snakemake(repo: Path, work: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(work)]
    command += ["--cores", "2", *args, TARGET, "--configfile", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def planned(repo: Path, work: Path, config: dict, path: Path) -> set[str]:
    """The rules a dry run with ``config`` would run (empty: nothing to be done)."""
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = snakemake(repo, work, path, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    if "job count" not in [" ".join(line.split()) for line in lines]:
        assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
        return set()
    start = [" ".join(line.split()) for line in lines].index("job count") + 2
    rules = set()
    for line in lines[start:]:
        parts = line.split()
        if not parts or parts[0] == "total":
            break
        rules.add(parts[0])
    return rules


@pytest.mark.slow
def test_wvs_reruns_follow_what_the_humans_table_is_read_from(repo, tmp_path, tiny_model_dir):
    from conftest import tiny_config_dict

    config = tiny_config_dict(tiny_model_dir)
    source = tmp_path / "wvs.csv"
    shutil.copy2(config["wvs"]["source"]["path"], source)
    config["wvs"]["source"] = {"type": "wvs_csv", "path": str(source)}
    config["run"] |= {"languages": ["en"], "methods": ["vanilla"]}
    config["wvs"] |= {"framings": ["interviewer"], "modes": ["logits"], "bad_rows": "skip"}
    work = tmp_path / "work"
    work.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = snakemake(repo, work, path)
    assert result.returncode == 0, result.stderr[-3000:]
    changed = tmp_path / "changed.yaml"

    reordered = {**config, "wvs": {**config["wvs"], "source": {"path": str(source), "type": "wvs_csv"}}}
    assert planned(repo, work, reordered, changed) == set()
    # The file has no bad row: either policy gives the same table, so a new one reruns nothing.
    policy = {**config, "wvs": {**config["wvs"], "bad_rows": "error"}}
    assert planned(repo, work, policy, changed) == set()

    # The source replaced by one with a ragged row, older than the outputs: the table and its wvs job rerun.
    lines = source.read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join([*lines, lines[1].rsplit(",", 1)[0]]) + "\n", encoding="utf-8")
    old = (work / TARGET).stat().st_mtime - 10 * 86400
    os.utime(source, (old, old))
    assert planned(repo, work, config, changed) == {"wvs_humans", "wvs"}
    result = snakemake(repo, work, changed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wvs.bad_rows is skip: skipped 1 wrong field count" in result.stderr
    # Now a row was skipped: the policy matters, and error reruns wvs_humans, which stops on that row.
    assert planned(repo, work, policy, changed) == {"wvs_humans", "wvs"}
    result = snakemake(repo, work, changed)
    assert result.returncode != 0 and f"lexalign error: {source}: line {len(lines) + 1} has" in result.stderr
