"""``python -m bench``: run the lexalign benchmarks, print a table of ratios, write bench/results.json.

Every ratio compares the project's code with a baseline measured in the same run on the same machine
(the acceptance checks, yes-or-no goals, are ``lexalign check``). Run from the repository root.
``--tiny`` runs every benchmark on a tiny input (seconds; the test suite uses it); the default size is the
realistic one (under 15 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.common import REPO, Result, machine_info
from lexalign.testing.workspace import DEFAULT_CACHE, Workspace

BENCHMARKS = ("ingest", "sft", "generation", "wvs", "workflow", "rule_benchmarks")
DEFAULT_OUT = REPO / "bench" / "results.json"

log = logging.getLogger("bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", metavar="BENCHMARK", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run (same as the positional names)")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny inputs and the tiny model: a smoke run in seconds (for tests)"
    )
    parser.add_argument(
        "--model",
        choices=("auto", "gemma", "tiny"),
        default="auto",
        help="model for the SFT / generation / WVS benchmarks (auto: packaged Gemma 3 270M, tiny model with --tiny)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results (default: bench/results.json)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="kept between runs: generated inputs, the prepared Gemma model",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    chosen = [n for part in [*args.names, args.only] for n in part.split(",") if n]
    unknown = sorted(set(chosen + [n for n in args.skip.split(",") if n]) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    skip = {n for n in args.skip.split(",") if n}
    args.selected = [n for n in BENCHMARKS if (not chosen or n in chosen) and n not in skip]
    return args


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def render_table(results: list[Result]) -> str:
    header = ("benchmark", "metric", "value", "baseline", "ratio", "target", "status", "note")
    rows = []
    for r in results:
        value = f"{_fmt(r.value)} {r.unit}".strip() if r.value is not None else "–"
        baseline = f"{r.baseline}: {_fmt(r.baseline_value)} {r.unit}".strip() if r.baseline else ""
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        target = (r.target + ("x" if r.baseline else f" {r.unit}")) if r.target else ""
        rows.append((r.benchmark, r.metric, value, baseline, ratio, target, r.status, r.note))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # notes run free
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def render_machine(info: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
    return (
        f"machine: {info['cpu']} | {info['usable_cpus']} usable CPUs of {info['logical_cpus']} | "
        f"{info['ram_gib']} GiB RAM | GPU: {info.get('gpu') or 'none'} | torch threads {info.get('torch_threads')} | "
        f"polars threads {info.get('polars_threads')} | load average {info.get('load_average')}\n"
        f"         {info['platform']} | Python {info['python']} | git {info.get('git')}\n"
        f"         {versions}"
    )


def run_benchmark(name: str, ctx: Workspace) -> tuple[list[Result], float]:
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        results = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - one benchmark's failure must not hide the others
        log.error("benchmark %s failed:\n%s", name, traceback.format_exc())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        results = [
            Result(
                name,
                "(benchmark failed)",
                None,
                "",
                status="ERROR",
                note=f"{type(exc).__name__}: {first}"[:300],
                detail={"traceback": traceback.format_exc()[-4000:]},
            )
        ]
    return results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            module = importlib.import_module(f"bench.{name}") if importlib.util.find_spec(f"bench.{name}") else None
            print(f"{name:16s} {getattr(module, 'TITLE', '')}")
        return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    work_dir = Path(tempfile.mkdtemp(prefix="lexalign-bench-"))
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    ctx = Workspace(
        tiny=args.tiny, work_dir=work_dir, cache_dir=args.cache_dir, checkout=REPO, seed=args.seed, model=args.model
    )
    info = machine_info()
    print(render_machine(info), flush=True)
    print(f"size: {ctx.size} | benchmarks: {', '.join(args.selected)} | scratch: {work_dir}", flush=True)

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    results: list[Result] = []
    seconds: dict[str, float] = {}
    try:
        for name in args.selected:
            log.info("running %s", name)
            found, took = run_benchmark(name, ctx)
            seconds[name] = round(took, 1)
            results.extend(found)
            log.info("%s done in %.1fs", name, took)
    finally:
        if args.keep:
            print(f"scratch kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    elapsed = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):
        info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    print()
    print(render_table(results))
    for r in results:
        table = r.detail.get("table") if isinstance(r.detail, dict) else None
        if table:
            print(f"\n{r.benchmark}: {r.note}\n{table}")
    if info.get("load_average"):
        busy = max(info["load_average"][0], info.get("load_average_end", [0])[0])
        print(
            f"\nload average (1 min) at start {info['load_average'][0]}, "
            f"at end {info.get('load_average_end', ['?'])[0]}"
            + (
                f": other processes shared the {info['usable_cpus']} CPUs, "
                "so absolute timings are inflated and ratios noisier"
                if busy > info["usable_cpus"]
                else ""
            )
        )
    print(f"\ntotal {elapsed:.0f}s ({', '.join(f'{k} {v:.0f}s' for k, v in seconds.items())})")

    report = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "size": ctx.size,
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "benchmark_s": seconds,
        "machine": info,
        "results": [r.to_json() for r in results],
        "summary": {
            status: sum(r.status == status for r in results) for status in ("PASS", "MISS", "INFO", "SKIP", "ERROR")
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if any(r.status == "ERROR" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
