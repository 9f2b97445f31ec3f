"""Measured figures and how they are taken, shared by the benchmarks (``bench/``) and the acceptance checks
(``lexalign.checks``).

- :class:`Result`: one figure, the baseline it is compared with, its target and the verdict;
- :func:`run_worker`: a call timed in a fresh interpreter (``python -m lexalign.testing.measure
  module:function '{json kwargs}'``: imports before the clock, its own peak RSS);
- :func:`timed_call`: that, or (at the tiny size) the call in this process.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


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


def _function(target: str):
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def timed_call(target: str, args: dict, in_process: bool, cwd: str | os.PathLike, timeout: float = 900) -> dict:
    """:func:`run_worker` from ``cwd``; ``in_process`` (the tiny size) runs the call in this process instead (no
    interpreter start and imports per call, so a smoke run stays fast; its RSS figures then describe this process)."""
    if not in_process:
        return run_worker(target, args, timeout, cwd=cwd)
    function = _function(target)
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


def run_worker(
    target: str, args: dict, timeout: float = 900, env: dict | None = None, cwd: str | os.PathLike = "."
) -> dict:
    """Run ``module:function(**args)`` in a fresh interpreter started in ``cwd`` (which it can import from)
    and return its measurement.

    The child imports the module first (imports are not timed), records its RSS, times the call and
    reports ``seconds``, ``peak_rss_mb`` (VmHWM: the whole process, imports included),
    ``rss_before_mb`` and the function's JSON-able return value.
    """
    folder = str(Path(cwd).resolve())
    command = [sys.executable, "-m", "lexalign.testing.measure", target, json.dumps(args)]
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")]))}
    child_env.setdefault("HF_HUB_OFFLINE", "1")
    child_env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    child_env.update(env or {})
    done = subprocess.run(command, cwd=folder, env=child_env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout)[-2000:]
        raise RuntimeError(f"worker {target} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1].removeprefix("BENCH_RESULT "))


def worker(argv: list[str]) -> None:
    """The child of :func:`run_worker`: import, record RSS, time the call, print one ``BENCH_RESULT {json}`` line."""
    target, raw_args = argv
    function = _function(target)
    kwargs = json.loads(raw_args)
    # Warm the heavy imports a function declares, so that the timing is the work alone.
    for name in getattr(function, "imports", ()):
        importlib.import_module(name)
    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    start = time.perf_counter()
    value = function(**kwargs)
    seconds = time.perf_counter() - start
    report = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_mb": peak_before,
        "rss_before_mb": rss_before,
        "value": value,
    }
    print("BENCH_RESULT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    worker(sys.argv[1:])
