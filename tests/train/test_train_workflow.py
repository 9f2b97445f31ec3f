"""Rule train in the DAG: the paper grid on the SLURM profile, preset errors at DAG start, and a real
run of sft -> sft_rl on the tiny model with the smoke preset."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRAINED = ("sft", "rl", "sft_rl", "dpo")


def snakemake(workdir: Path, *args: str, configfile: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    if configfile:  # last: --configfile takes several values
        command += ["--configfile", str(configfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)


def paper_config_with_stand_ins(tmp_path: Path) -> Path:
    """config/paper.yaml with its placeholder model, norms and WVS paths replaced by empty stand-ins
    (validation checks that they exist; a dry run reads nothing else)."""
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text(encoding="utf-8"))
    for spec in config["models"].values():
        folder = tmp_path / "models" / Path(spec["path"]).name
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        spec["path"] = str(folder)
    for spec in config["languages"].values():
        norms = tmp_path / "norms" / Path(spec["norms"]["path"]).name
        norms.parent.mkdir(parents=True, exist_ok=True)
        norms.write_text("cue,R1,R2,R3\n")
        spec["norms"]["path"] = str(norms)
    wvs = tmp_path / "wvs" / Path(config["wvs"]["source"]["path"]).name
    wvs.parent.mkdir()
    wvs.write_text("B_COUNTRY_ALPHA,W_WEIGHT,Q1\n")
    config["wvs"]["source"]["path"] = str(wvs)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def train_jobs(dry_run_output: str) -> list[dict]:
    """The rule train jobs of a dry run: wildcards, input and resources."""
    jobs = []
    for block in dry_run_output.split("\nrule ")[1:]:
        if not block.startswith("train:"):
            continue
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, flags=re.MULTILINE))
        wildcards = dict(item.split("=", 1) for item in fields["wildcards"].split(", "))
        resources = dict(item.split("=", 1) for item in fields["resources"].split(", "))
        jobs.append({**wildcards, "input": fields["input"], "resources": resources})
    return jobs


def test_paper_grid_dry_runs_on_the_slurm_profile(tmp_path):
    config = paper_config_with_stand_ins(tmp_path)
    result = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"), configfile=config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = train_jobs(result.stdout)
    grid = {(j["model"], j["lang"], j["method"]) for j in jobs}
    assert grid == {
        (m, lang, method) for m in ("llama31_8b", "qwen25_7b") for lang in ("en", "zh") for method in TRAINED
    }
    assert len(jobs) == len(grid)
    for job in jobs:
        assert job["resources"]["gpu"] == "4" and job["resources"]["cpus_per_task"] == "32"
        assert job["resources"]["mem_mb"] == "256000" and job["resources"]["runtime"] == "2880"
        table = {"sft": "sft", "dpo": "dpo"}.get(job["method"], "ranking")
        assert f"results/templates/{job['lang']}/{table}.parquet" in job["input"]
        sft_adapter = f"results/train/{job['model']}/{job['lang']}/sft/adapter"
        assert (sft_adapter in job["input"]) == (job["method"] == "sft_rl")
    # untrained methods are evaluated without a train job
    assert "results/train/llama31_8b/en/vanilla" not in result.stdout


def test_unknown_preset_fails_at_dag_start_with_one_line(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(REPO / spec["norms"]["path"])
    for train, expected in (
        (
            {"preset": "fast"},
            "lexalign error: config: train.preset: 'fast' is not a preset under train.presets "
            "(defined: default, paper, smoke)",
        ),
        (
            {"presets": {"default": {"sft": {"learning_rat": 1e-4}}}},
            "lexalign error: config: train.presets.default.sft.learning_rat: not a SFTConfig setting "
            "(did you mean learning_rate?)",
        ),
    ):
        config["train"] = train
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        result = snakemake(tmp_path, "-n", "--cores", "1", configfile=path)
        assert result.returncode != 0
        errors = [line for line in (result.stdout + result.stderr).splitlines() if "lexalign error" in line]
        assert errors == [expected]
        assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_train_rule_runs_sft_then_sft_rl(tmp_path, tiny_model_dir):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["models"] = {"tiny": {"path": str(tiny_model_dir)}}
    config["run"] = {"models": ["tiny"], "languages": ["zh"], "methods": ["sft", "sft_rl"]}
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(REPO / spec["norms"]["path"])
    config["templates"]["sft_target_examples"] = 100
    config["train"] = {"preset": "smoke"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    target = "results/train/tiny/zh/sft_rl/metrics.json"
    result = snakemake(tmp_path, target, "--cores", "2", configfile=path)
    assert result.returncode == 0, result.stderr[-4000:]
    for method in ("sft", "sft_rl"):
        out = tmp_path / "results" / "train" / "tiny" / "zh" / method
        assert (out / "adapter" / "adapter_model.safetensors").is_file()
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["method"] == method and metrics["global_step"] == 3
        log = (tmp_path / "results" / "logs" / "train" / "tiny" / "zh" / f"{method}.log").read_text()
        assert "step 3/3" in log
    assert json.loads((tmp_path / "results/train/tiny/zh/sft_rl/metrics.json").read_text())["reward"]["points"] == 3
    assert not (tmp_path / "results" / "checkpoints" / "tiny" / "zh" / "sft").exists()
