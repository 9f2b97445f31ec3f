"""The Snakemake DAG: dry runs name every stage, config errors are one line, and the data stages run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

STAGES = ("prepare_model", "ingest", "template", "train", "lexical", "wvs", "report")


def snakemake(repo, workdir, *args, configfile=None):
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(workdir), "--cores", "2", *args]

    if configfile:  # last: --configfile takes several values
        command += ["--configfile", str(configfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture
def tiny_config(tmp_path, repo, tiny_model_dir):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["models"] = {"tiny": {"path": str(tiny_model_dir)}}
    config["run"]["models"] = ["tiny"]
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(repo / spec["norms"]["path"])
    config["templates"]["sft_target_examples"] = 300
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def test_default_dry_run_lists_every_stage(repo, tmp_path):
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "2"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for stage in STAGES:
        assert f"rule {stage}:" in result.stdout or f"\n{stage} " in result.stdout, stage


def test_bad_config_fails_with_one_line(repo, tmp_path, tiny_config):
    config = yaml.safe_load(tiny_config.read_text())
    config["run"]["methods"] = ["sft", "ppo"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(repo, tmp_path, "-n", configfile=bad)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "lexalign error" in line]
    assert errors == ["lexalign error: config: run.methods.1: 'ppo' is not one of ['vanilla', 'prompt', 'assoc_prompt', 'sft', 'rl', 'sft_rl', 'dpo']"]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_data_stages_run_end_to_end(repo, tmp_path, tiny_config):
    targets = ["results/models/tiny", "results/templates/en/stats.json", "results/templates/zh/stats.json"]
    result = snakemake(repo, tmp_path, *targets, configfile=tiny_config)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "results/ingest/en/stats.json").read_text())
    assert stats["rows_after_filter"] < stats["rows_in"]
    for lang in ("en", "zh"):
        assert (tmp_path / f"results/logs/ingest/{lang}.log").stat().st_size > 0
        assert (tmp_path / f"results/templates/{lang}/eval.parquet").is_file()
    rerun = snakemake(repo, tmp_path, "-n", *targets, configfile=tiny_config)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_failed_step_leaves_no_output(repo, tmp_path, tiny_config):
    config = yaml.safe_load(tiny_config.read_text())
    broken = tmp_path / "SWOW-EN.broken.csv"
    broken.write_text('"",cue,R1,R2\n1,dog,cat,x\n', encoding="utf-8")
    config["languages"]["en"]["norms"]["path"] = str(broken)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    result = snakemake(repo, tmp_path, "results/ingest/en/stats.json", configfile=path)
    assert result.returncode != 0
    assert f"lexalign error: {broken}: missing column 'r3'" in result.stderr
    assert not (tmp_path / "results/ingest/en").exists() or not any((tmp_path / "results/ingest/en").iterdir())


def test_rules_are_formatted_and_lint_clean(repo):
    rule_files = [str(repo / "Snakefile"), *map(str, sorted((repo / "workflow" / "rules").glob("*.smk")))]
    formatted = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *rule_files], capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stderr
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout[-2000:]
