"""The Snakemake DAG: dry runs name every stage, config errors are one line, the data stages run, logs
are never empty after a failure, and what reruns after a change is exactly what read the change."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from lexalign.config import methods
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.core.snake import Rule, run_script

STAGES = ("prepare_model", "ingest", "template", "train", "lexical", "wvs", "report")
DATA_TARGETS = ["results/models/tiny", "results/templates/en/stats.json", "results/templates/zh/stats.json"]


def snakemake(repo, workdir, *args, configfile=None):
    command = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory", str(workdir)]
    command += ["--cores", "2", *args]
    if configfile:  # last: --configfile takes several values
        command += ["--configfile", str(configfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def planned_rules(result) -> set[str]:
    """The rules a dry run would run (its job table), or an empty set when nothing is to be done."""
    rules = set()
    lines = iter(result.stdout.splitlines())
    for line in lines:
        if line.split() == ["job", "count"]:
            next(lines)  # the dashes
            for row in lines:
                parts = row.split()
                if len(parts) != 2 or parts[0] == "total":
                    break
                rules.add(parts[0])
            break
    return rules


def write_config(path, config):
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_default_dry_run_lists_every_stage(repo):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "2"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert set(STAGES) <= planned_rules(result)


def test_bad_config_fails_with_one_line(repo, tmp_path, tiny_config):
    config = yaml.safe_load(tiny_config.read_text())
    config["run"]["methods"] = ["sft", "ppo"]
    result = snakemake(repo, tmp_path, "-n", configfile=write_config(tmp_path / "bad.yaml", config))
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "lexalign error" in line]
    assert errors == [f"lexalign error: config: run.methods.1: 'ppo' is not one of {list(methods.NAMES)}"]
    assert "Traceback" not in result.stderr


def test_wvs_jobs_per_framing_ask_every_mode(repo, tmp_path, tiny_config):
    """One wvs job per framing, writing every mode under results/wvs/{model}/{lang}/{method}/{framing}-{mode}/;
    a config with the old singular keys stops with one line naming the new key."""
    config = yaml.safe_load(tiny_config.read_text())
    config["run"]["methods"] = ["vanilla"]
    config["wvs"] |= {"framings": ["interviewer", "neutral"], "modes": ["logits", "generate"]}
    result = snakemake(repo, tmp_path, "-n", configfile=write_config(tmp_path / "variants.yaml", config))
    assert result.returncode == 0, result.stderr[-2000:]
    planned = [
        line.split()[-1] for line in result.stdout.splitlines() if "wildcards: model=tiny" in line and "framing" in line
    ]
    assert sorted(planned) == ["framing=interviewer"] * 2 + ["framing=neutral"] * 2  # en and zh
    outputs = {
        part.strip().rstrip(",")
        for line in result.stdout.splitlines()
        if line.strip().startswith("output: results/wvs/tiny/")
        for part in line.split()[1:]
        if part.rstrip(",").endswith("metrics.json")
    }
    assert outputs == {
        f"results/wvs/tiny/{lang}/vanilla/{framing}-{mode}/metrics.json"
        for lang in ("en", "zh")
        for framing in ("interviewer", "neutral")
        for mode in ("logits", "generate")
    }
    config["wvs"] = {"source": config["wvs"]["source"], "framing": "neutral"}
    result = snakemake(repo, tmp_path, "-n", configfile=write_config(tmp_path / "old.yaml", config))
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "lexalign error" in line]
    assert result.returncode != 0 and errors == [
        "lexalign error: config: wvs.framing was replaced by wvs.framings (a list, e.g. [interviewer]; one wvs job "
        "per framing): rename the key"
    ]


def test_test_config_is_valid_and_documented(repo, tiny_model_dir, tmp_path):
    from conftest import tiny_config_dict

    from lexalign.config.validation import validate_config

    config = validate_config(tiny_config_dict(tiny_model_dir), SCHEMA)
    assert config["run"]["models"] == ["tiny"] and config["train"]["preset"] == "smoke"
    text = (repo / ".test" / "config" / "config.yaml").read_text()
    assert "python -m lexalign.testing.tiny_model .test/models/tiny" in text
    built = subprocess.run(
        [sys.executable, "-m", "lexalign.testing.tiny_model", str(tmp_path / "tiny")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "tiny" / "model.safetensors").is_file()


def test_config_readme_is_generated_from_the_schema(repo):
    result = subprocess.run(
        [sys.executable, "-m", "lexalign.cli", "config-docs", "--check"], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    text = (repo / "config" / "README.md").read_text()
    schema = yaml.safe_load((SCHEMA).read_text())
    for section in schema["properties"]:
        assert f"## `{section}`" in text
    assert "| `models.<name>.resources.gpus` |" in text and "| `check_paths` |" in text


def test_config_readme_check_fails_when_stale(repo, tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text((repo / "config" / "README.md").read_text().replace("master seed", "seed"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lexalign.config.docs",
            "--check",
            "--out",
            str(stale),
            "--schema",
            str(SCHEMA),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"lexalign error: {stale}: out of date with {SCHEMA}; run `lexalign config-docs` to regenerate it"
    )


def test_catalog_files(repo):
    catalog = yaml.safe_load((repo / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["software-stack-deployment"] == {
        "conda": False,
        "apptainer": False,
        "apptainer+conda": False,
    }
    assert catalog["usage"]["report"] is True
    assert "config/README.md" in catalog["usage"]["mandatory-flags"]["desc"]
    for rule_file in (repo / "workflow" / "rules").glob("*.smk"):
        assert "conda:" not in rule_file.read_text(), f"{rule_file.name}: the catalog file says rules have no conda env"
    assert (repo / "LICENSE").read_text().startswith("MIT License")
    for profile in ("local", "slurm"):
        assert f"profiles/{profile}" in (repo / "profiles" / "README.md").read_text()


# ---- logs ---------------------------------------------------------------------------------------


def fake_snakemake(log_file, **named):
    """The parts of Snakemake's script object that run_script reads, as Snakemake's own Namedlists."""
    from snakemake.iocontainers import Namedlist

    def names(**values):
        return Namedlist(fromdict=values)

    return SimpleNamespace(
        input=names(**named.get("input", {})),
        output=names(**named.get("output", {})),
        params=names(**named.get("params", {})),
        wildcards=names(**named.get("wildcards", {})),
        threads=named.get("threads", 1),
        resources=names(**named.get("resources", {})),
        log=names(log=str(log_file)),
    )


def test_run_script_hands_the_stage_a_plain_rule(tmp_path):
    """Paths become str or lists of str, params and wildcards plain dicts: the stage never sees snakemake."""
    seen = []
    fake = fake_snakemake(
        tmp_path / "rule.log",
        input={"model": "results/models/m", "files": ["a", "b"]},
        output={"scores": "out.json"},
        params={"settings": {"k": 1}},
        wildcards={"lang": "en"},
        threads=2,
        resources={"gpu": 1},
    )
    run_script(fake, lambda rule: rule, seen.append)
    (rule,) = seen
    assert rule == Rule(
        input={"model": "results/models/m", "files": ["a", "b"]},
        output={"scores": "out.json"},
        params={"settings": {"k": 1}},
        wildcards={"lang": "en"},
        threads=2,
        resources={"gpu": 1},
        log=str(tmp_path / "rule.log"),
    )


def test_unexpected_error_traceback_goes_to_the_rule_log(tmp_path):
    log_file = tmp_path / "rule.log"

    def step():
        logging.getLogger("lexalign.test").info("working")
        raise RuntimeError("a bug, not a user error")

    with pytest.raises(RuntimeError):
        run_script(fake_snakemake(log_file), lambda rule: rule, lambda rule: step())
    text = log_file.read_text()
    assert "working" in text
    assert "Traceback (most recent call last)" in text and "RuntimeError: a bug, not a user error" in text


def test_user_error_is_one_line_on_stderr_and_in_the_log(tmp_path, capsys):
    log_file = tmp_path / "rule.log"

    def step():
        raise LexalignError("data/x.csv: missing column 'cue'")

    with pytest.raises(SystemExit) as info:
        run_script(fake_snakemake(log_file), lambda rule: rule, lambda rule: step())
    assert info.value.code == 1
    assert capsys.readouterr().err.splitlines()[-1] == "lexalign error: data/x.csv: missing column 'cue'"
    assert log_file.read_text().splitlines()[-1] == "lexalign error: data/x.csv: missing column 'cue'"
    assert "Traceback" not in log_file.read_text()


def test_failed_step_leaves_no_output_and_a_log(repo, tmp_path, tiny_config):
    config = yaml.safe_load(tiny_config.read_text())
    broken = tmp_path / "SWOW-EN.broken.csv"
    broken.write_text('"",cue,R1,R2\n1,dog,cat,x\n', encoding="utf-8")
    config["languages"]["en"]["norms"]["path"] = str(broken)
    result = snakemake(
        repo, tmp_path, "results/ingest/en/stats.json", configfile=write_config(tmp_path / "b.yaml", config)
    )
    assert result.returncode != 0
    assert f"lexalign error: {broken}: missing column 'r3'" in result.stderr
    assert not (tmp_path / "results/ingest/en").exists() or not any((tmp_path / "results/ingest/en").iterdir())
    assert f"lexalign error: {broken}: missing column 'r3'" in (tmp_path / "results/logs/ingest/en.log").read_text()


# ---- reruns -------------------------------------------------------------------------------------


@pytest.fixture
def data_run(repo, tmp_path, tiny_model_dir):
    """The data stages run once on a private copy of the tiny model and of the English norms."""
    from conftest import tiny_config_dict

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    norms = tmp_path / "norms-en.csv"
    config = tiny_config_dict(model)
    shutil.copy2(config["languages"]["en"]["norms"]["path"], norms)
    config["languages"]["en"]["norms"]["path"] = str(norms)
    work = tmp_path / "work"
    work.mkdir()
    path = write_config(tmp_path / "config.yaml", config)
    result = snakemake(repo, work, *DATA_TARGETS, configfile=path)
    assert result.returncode == 0, result.stderr[-3000:]
    return SimpleNamespace(config=config, path=path, work=work, model=model, norms=norms)


def dry_run(repo, run, config=None):
    path = write_config(run.path.with_name("changed.yaml"), config) if config else run.path
    result = snakemake(repo, run.work, "-n", *DATA_TARGETS, configfile=path)
    assert result.returncode == 0, result.stderr[-3000:]
    rules = planned_rules(result)
    assert rules or "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    return rules


@pytest.mark.slow
def test_data_stages_run_and_rerun_only_what_changed(repo, data_run):
    run = data_run
    stats = json.loads((run.work / "results/ingest/en/stats.json").read_text())
    assert stats["rows_after_filter"] < stats["rows_in"]
    for lang in ("en", "zh"):
        assert (run.work / f"results/logs/ingest/{lang}.log").stat().st_size > 0
        assert (run.work / f"results/templates/{lang}/eval.parquet").is_file()
    manifest = json.loads((run.work / "results/models/tiny/lexalign_model.json").read_text())
    assert "model.safetensors" in manifest["weights_signature"]["files"]
    assert dry_run(repo, run) == set()

    # The same values with every mapping's keys in reverse order: nothing reruns.
    def reverse(value):
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(list(value))}
        return value

    assert dry_run(repo, run, reverse(run.config)) == set()

    # Another preset resource (a scheduler limit) and another report setting: no data stage reruns.
    changed = json.loads(json.dumps(run.config))
    changed["train"]["presets"] = {"smoke": {"resources": {"runtime": 99}}}
    changed["report"]["dpi"] = 72
    assert dry_run(repo, run, changed) == set()

    # A template setting reruns the template jobs only.
    changed = json.loads(json.dumps(run.config))
    changed["templates"]["ranking_size"] = 5
    assert dry_run(repo, run, changed) == {"template"}

    # The norms file replaced by different content with an older mtime: ingest reruns, then template.
    text = run.norms.read_text(encoding="utf-8")
    run.norms.write_text(text.replace("dog", "hound", 1), encoding="utf-8")
    old = run.norms.stat().st_mtime - 10 * 86400
    os.utime(run.norms, (old, old))
    assert {"ingest", "template"} <= dry_run(repo, run)

    # The model's weights replaced (same size, older mtime): prepare_model reruns.
    weights = run.model / "model.safetensors"
    shutil.copy2(weights, run.model / "copy.tmp")
    os.replace(run.model / "copy.tmp", weights)
    os.utime(weights, (old, old))
    assert "prepare_model" in dry_run(repo, run)


@pytest.mark.slow
def test_train_params_exclude_resources(repo, tmp_path, tiny_config):
    """Training the smoke preset once; a new runtime in the preset's resources retrains nothing, a new
    learning rate retrains."""
    target = "results/train/tiny/en/sft/metrics.json"
    config = yaml.safe_load(tiny_config.read_text())
    config["templates"]["sft_target_examples"] = 50
    path = write_config(tmp_path / "c.yaml", config)
    work = tmp_path / "work"
    work.mkdir()
    result = snakemake(repo, work, target, configfile=path)
    assert result.returncode == 0, result.stderr[-3000:]
    config["train"]["presets"] = {"smoke": {"resources": {"runtime": 99, "mem_mb": 2500}}}
    same = snakemake(repo, work, "-n", target, configfile=write_config(tmp_path / "r.yaml", config))
    assert same.returncode == 0 and "Nothing to be done" in same.stdout + same.stderr, same.stdout + same.stderr
    config["train"]["presets"] = {"smoke": {"train": {"learning_rate": 0.002}}}
    changed = snakemake(repo, work, "-n", target, configfile=write_config(tmp_path / "l.yaml", config))
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert planned_rules(changed) == {"train"}


# ---- cluster --------------------------------------------------------------------------------------


def test_paper_dry_run_with_placeholder_paths_requests_gpus(repo, tmp_path):
    """config/paper.yaml through profiles/slurm with its placeholder paths: the plan shows, and every
    job that runs a model asks for a GPU."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--profile",
            "profiles/slurm",
            "--configfile",
            "config/paper.yaml",
            "--config",
            "check_paths=False",
            "--directory",
            str(tmp_path),
            "-s",
            str(repo / "Snakefile"),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = [block for block in result.stdout.split("\nrule ")[1:]]
    gpu_rules = {"train", "lexical", "wvs"}
    seen = set()
    for block in jobs:
        rule = block.split(":", 1)[0]
        if rule in gpu_rules:
            seen.add(rule)
            resources = next(line for line in block.splitlines() if line.strip().startswith("resources:"))
            assert "gpu=" in resources and "gpu=0" not in resources, block
    assert seen == gpu_rules


def test_rules_are_formatted_and_lint_clean(repo):
    rule_files = [str(repo / "Snakefile"), *map(str, sorted((repo / "workflow" / "rules").glob("*.smk")))]
    formatted = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *rule_files], capture_output=True, text=True
    )
    assert formatted.returncode == 0, formatted.stderr
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True, timeout=300
    )
    output = lint.stdout + lint.stderr
    titles = {line.strip()[2:].rstrip(":") for line in output.splitlines() if line.startswith("    * ")}
    # Rules carry no conda: directive on purpose: the workflow runs in the one environment it is started
    # from (pip install -e .), because a conda file cannot install this checkout portably.
    assert titles <= {"Specify a conda environment or container for each rule."}, output[-3000:]
    assert "Congratulations" in output or titles, output[-2000:]
    python = ["src", "tests", "bench", "workflow"]
    checked = subprocess.run(["ruff", "check", *python], cwd=repo, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-3000:]
    formatted = subprocess.run(["ruff", "format", "--check", *python], cwd=repo, capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stdout[-3000:]
