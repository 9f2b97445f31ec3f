"""Benchmark 5: workflow overhead.

(a) ``snakemake -n`` of the paper grid (2 models x 2 languages x every method) from an empty results
    folder: the DAG-building cost a user pays before any job starts. config/paper.yaml points at model
    and norms paths that do not exist here, so the benchmark writes dummy model dirs (config.json + an
    empty .safetensors) and a temp copy of the config pointing at them and at the illustrative norms.
(b) a no-op rerun of the default target: in a scratch working directory every output of the default
    target is created as a placeholder (files, and folders for ``directory()`` outputs), ``--touch``
    puts their times in DAG order, and ``snakemake -n`` must then report nothing to do.
Both are timed as the user sees them (fresh interpreter, Snakemake import included); the floor is
``python -m snakemake --version`` (interpreter + Snakemake import, no workflow).
"""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.common import REPO, Result, median, run_worker
from lexalign.testing.workspace import Workspace

NAME = "workflow"
TITLE = "5. Workflow overhead: snakemake -n of the paper grid, no-op rerun of the default target"
log = logging.getLogger("bench.workflow")

PAPER_MODELS = ("llama8b", "qwen7b")


def _snakemake(
    workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 300
) -> tuple[float, subprocess.CompletedProcess]:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    if configfile is not None:  # last: --configfile takes several values
        command += ["--configfile", str(configfile)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"snakemake {' '.join(args)} failed (exit {done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}"
        )
    return seconds, done


def _job_count(done: subprocess.CompletedProcess) -> int:
    text = done.stdout + "\n" + done.stderr
    if "Nothing to be done" in text:
        return 0
    match = re.search(r"^total\s+(\d+)", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else -1


def _dummy_model(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}\n')
    (path / "model.safetensors").write_bytes(b"")
    return path


def _absolute_paths(value):
    """Relative paths in a config resolve against the working directory; the scratch runs live
    elsewhere, so every string naming an existing repository file becomes absolute."""
    if isinstance(value, dict):
        return {k: _absolute_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute_paths(v) for v in value]
    if isinstance(value, str) and value and not Path(value).is_absolute() and "/" in value and (REPO / value).exists():
        return str(REPO / value)
    return value


def _runnable(config: dict) -> dict:
    config = _absolute_paths(config)
    # A null WVS source means the illustrative file under data/illustrative/wvs/ (a repo-relative path).
    try:
        from lexalign.config.derive import ILLUSTRATIVE_WVS_SOURCES
    except ImportError:
        return config
    source = config.setdefault("wvs", {}).setdefault("source", {})
    if not source.get("path"):
        source["path"] = str(REPO / ILLUSTRATIVE_WVS_SOURCES[source.get("type", "wvs_csv")])
    return config


def _base_config() -> dict:
    return _runnable(yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8")))


def paper_config(work: Path) -> tuple[Path, str]:
    """A runnable copy of config/paper.yaml (or, until it exists, the paper grid on config.yaml)."""
    from lexalign.config.methods import NAMES as METHODS

    base = _base_config()
    paper_file = REPO / "config" / "paper.yaml"
    if paper_file.is_file():
        config = _runnable(yaml.safe_load(paper_file.read_text(encoding="utf-8")))
        source = "config/paper.yaml"
    else:
        config = copy.deepcopy(base)
        config["models"] = {name: {"path": "/models/missing"} for name in PAPER_MODELS}
        config["run"] = {
            **config["run"],
            "models": list(PAPER_MODELS),
            "languages": ["en", "zh"],
            "methods": list(METHODS),
        }
        source = "config/config.yaml with the paper grid (config/paper.yaml not found)"
    for name in config["run"]["models"]:
        config["models"][name] = {k: v for k, v in config["models"][name].items() if k not in ("path", "package")}
        config["models"][name]["path"] = str(_dummy_model(work / "dummy-models" / name))
    for lang in config["run"]["languages"]:
        spec = config["languages"][lang]
        if not Path(spec["norms"]["path"]).expanduser().is_file():
            # The real SWOW file is not here: the illustrative file of the same layout stands in.
            fallback = base["languages"].get(lang) or base["languages"]["en"]
            spec["norms"] = {**spec["norms"], "path": fallback["norms"]["path"], "format": "raw"}
    wvs_source = config.get("wvs", {}).get("source", {})
    if wvs_source.get("path") and not Path(wvs_source["path"]).is_file():
        wvs_source["path"] = None  # the official WVS file is not here: the illustrative one stands in
    path = work / "paper.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, source


def default_config(work: Path) -> Path:
    path = work / "default.yaml"
    path.write_text(yaml.safe_dump(_base_config(), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def fake_completed_run(workdir: Path, configfile: Path) -> int:
    """Create every output of the default target as a placeholder, then --touch them into DAG order."""
    _, done = _snakemake(workdir, "--summary", configfile=configfile)
    created = 0
    for line in done.stdout.splitlines()[1:]:
        name = line.split("\t", 1)[0].strip()
        if not name:
            continue
        path = workdir / name
        if "." not in path.name:  # directory() outputs (prepared models, adapters) have no suffix
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        created += 1
    _snakemake(workdir, "--touch", configfile=configfile)
    return created


def profile_dry_run(workdir: str, configfile: str, top: int = 12) -> dict:
    """cProfile of one in-process ``snakemake -n``: the costliest lexalign functions (cumulative s)."""
    import contextlib
    import cProfile
    import io
    import os
    import pstats

    from snakemake.cli import main

    os.chdir(workdir)
    argv = sys.argv
    sys.argv = [
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        workdir,
        "--cores",
        "2",
        "-n",
        "--quiet",
        "--configfile",
        configfile,
    ]
    profiler = cProfile.Profile()
    profiler.enable()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main()
        except SystemExit:
            pass
    profiler.disable()
    sys.argv = argv
    stats = pstats.Stats(profiler)
    total = max(v[3] for v in stats.stats.values())
    rows = []
    for (filename, line, function), (_, ncalls, _, cumulative, _) in stats.stats.items():
        if "lexalign" in filename or function in ("safe_load",):
            rows.append(
                {
                    "function": f"{Path(filename).name}:{line}({function})",
                    "calls": ncalls,
                    "cumulative_s": round(cumulative, 3),
                }
            )
    rows.sort(key=lambda r: -r["cumulative_s"])
    return {"profiled_total_s": round(total, 3), "top": rows[:top]}


profile_dry_run.imports = ("snakemake.cli",)


def run(ctx: Workspace) -> list[Result]:
    reps = 1 if ctx.tiny else 3
    work = ctx.work_dir / "workflow"
    work.mkdir(parents=True, exist_ok=True)

    floor = []
    for _ in range(0 if ctx.tiny else reps):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True, check=True, timeout=120)
        floor.append(time.perf_counter() - start)
    t_floor = median(floor) if floor else None

    paper, source = paper_config(work)
    paper_dir = work / "paper-run"
    paper_dir.mkdir(exist_ok=True)
    paper_times, jobs = [], -1
    for _ in range(reps):
        seconds, done = _snakemake(paper_dir, "-n", configfile=paper)
        paper_times.append(seconds)
        jobs = _job_count(done)

    default = default_config(work)
    default_dir = work / "default-run"
    default_dir.mkdir(exist_ok=True)
    cold_seconds, default_jobs = None, None
    if not ctx.tiny:
        cold_seconds, cold = _snakemake(default_dir, "-n", configfile=default)
        default_jobs = _job_count(cold)
    outputs = fake_completed_run(default_dir, default)
    noop_times, left = [], -1
    for _ in range(reps):
        seconds, done = _snakemake(default_dir, "-n", configfile=default)
        noop_times.append(seconds)
        left = _job_count(done)

    t_paper, t_noop = median(paper_times), median(noop_times)
    floor_note = f"; floor (snakemake --version) {t_floor:.2f}s" if t_floor is not None else ""
    cold_note = f"; cold dry run {cold_seconds:.2f}s ({default_jobs} jobs)" if cold_seconds is not None else ""
    results = [
        Result(
            NAME,
            "snakemake -n, paper grid",
            round(t_paper, 2),
            "s",
            target="< 5",
            detail={"runs_s": [round(t, 2) for t in paper_times], "jobs": jobs, "config": source},
            note=f"{jobs} jobs planned ({source}){floor_note}",
        ).judge(),
        Result(
            NAME,
            "no-op rerun of default target (snakemake -n)",
            round(t_noop, 2),
            "s",
            target="< 5",
            detail={
                "runs_s": [round(t, 2) for t in noop_times],
                "outputs_present": outputs,
                "jobs_left": left,
                "cold_dry_run_s": round(cold_seconds, 2) if cold_seconds is not None else None,
                "cold_jobs": default_jobs,
            },
            note=f"{outputs} outputs present, {left} jobs to do{cold_note}",
        ).judge(),
    ]
    if t_floor is not None:
        results.append(
            Result(
                NAME,
                "floor: python -m snakemake --version",
                round(t_floor, 2),
                "s",
                detail={"runs_s": [round(t, 2) for t in floor]},
                note="interpreter + Snakemake and plugin imports, no workflow",
            )
        )
        profile = run_worker(
            "bench.workflow:profile_dry_run", {"workdir": str(paper_dir), "configfile": str(paper)}, timeout=300
        )["value"]
        results.append(
            Result(
                NAME,
                "profile of paper-grid dry run (lexalign + YAML)",
                profile["profiled_total_s"],
                "s",
                detail=profile,
                note="; ".join(f"{r['function']} x{r['calls']}: {r['cumulative_s']}s" for r in profile["top"][:5]),
            )
        )
    return results
