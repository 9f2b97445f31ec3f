"""Shared pieces of the benchmarks: result constructors, the worker from the checkout, the machine, the model.

The run's workspace, its prepared models and inputs, and timed calls come from the package
(``lexalign.testing.workspace``, ``lexalign.testing.measure``): the acceptance checks use them too.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from lexalign.testing.measure import Result
from lexalign.testing.measure import run_worker as run_worker_in
from lexalign.testing.workspace import Workspace, gemma_model_dir, tiny_model_dir

REPO = Path(__file__).resolve().parents[1]


def speedup(
    benchmark: str, metric: str, value: float, unit: str, baseline: str, baseline_value: float, target: str | None, **kw
) -> Result:
    """A throughput-style result (higher is better): ratio = value / baseline_value."""
    ratio = value / baseline_value if baseline_value else None
    return Result(benchmark, metric, value, unit, baseline, baseline_value, ratio, target, **kw).judge()


def time_speedup(
    benchmark: str, metric: str, seconds: float, baseline: str, baseline_seconds: float, target: str | None, **kw
) -> Result:
    """A wall-time result (lower is better) against a slower baseline: ratio = baseline / value (speed-up)."""
    ratio = baseline_seconds / seconds if seconds else None
    return Result(benchmark, metric, seconds, "s", baseline, baseline_seconds, ratio, target, **kw).judge()


def slowdown(
    benchmark: str, metric: str, value: float, unit: str, baseline: str, baseline_value: float, target: str | None, **kw
) -> Result:
    """A cost-style result (lower is better) relative to a floor: ratio = value / baseline_value."""
    ratio = value / baseline_value if baseline_value else None
    return Result(benchmark, metric, value, unit, baseline, baseline_value, ratio, target, **kw).judge()


def skipped(benchmark: str, metric: str, why: str, target: str | None = None) -> Result:
    return Result(benchmark, metric, None, "", target=target, status="SKIP", note=why)


# --------------------------------------------------------------------------- measurement


def run_worker(target: str, args: dict, timeout: float = 900, env: dict | None = None) -> dict:
    """``lexalign.testing.measure.run_worker`` from the checkout root, so that the child imports ``bench``."""
    return run_worker_in(target, args, timeout, env, cwd=REPO)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --------------------------------------------------------------------------- machine


def machine_info() -> dict:
    info: dict[str, Any] = {
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    try:
        import psutil

        info["ram_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        info["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    versions = {}
    for name in ("lexalign", "polars", "pandas", "pyarrow", "torch", "transformers", "trl", "peft", "snakemake"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            versions[name] = None
    info["versions"] = versions
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["gpu"] = None
    try:
        import polars as pl

        info["polars_threads"] = pl.thread_pool_size()
    except (ImportError, AttributeError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
        info["git"] = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        info["git"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------- models


def eval_model_dir(ctx: Workspace) -> tuple[Path, str]:
    """The model the generation benchmarks use: (prepared dir, label)."""
    choice = ctx.model if ctx.model != "auto" else ("tiny" if ctx.tiny else "gemma")
    if choice == "gemma":
        from lexalign.models.loading import dtype_name

        return gemma_model_dir(ctx), f"Gemma 3 270M (packaged, {dtype_name('auto')} for inference)"
    return tiny_model_dir(ctx), "tiny random Llama (h64, 2 layers)"
