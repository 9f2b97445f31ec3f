"""Benchmark 6: summarise Snakemake ``benchmark:`` files (results/benchmarks/{rule}/{wildcards...}.tsv).

``summarise(root)`` reads every rule's benchmark TSV (Snakemake writes one header row and one row per
repeat: ``s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out, mean_load, cpu_time``) and
returns one row per file: rule, wildcards (the path below the rule folder, e.g. ``gemma270m/en/sft``),
s (wall seconds, mean over repeats), max_rss (MiB, max over repeats), cpu_time. Standard library only,
so the report stage can import it (``from bench.rule_benchmarks import summarise, to_markdown``) or
copy it.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from bench.common import REPO, Result
from lexalign.testing.workspace import Workspace

NAME = "rule_benchmarks"
TITLE = "6. Snakemake benchmark: files, summarised per rule and wildcards"

COLUMNS = ("rule", "wildcards", "s", "max_rss", "cpu_time", "repeats")


def _number(text: str | None) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):  # "-", "NA", "" when Snakemake could not measure
        return math.nan
    return value


def read_benchmark_file(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def summarise(root: str | os.PathLike = "results/benchmarks") -> list[dict]:
    """One row per benchmark file under ``root``, sorted by rule then wildcards."""
    root = Path(root)
    rows = []
    if not root.is_dir():
        return rows
    for path in sorted(root.rglob("*.tsv")):
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            continue
        records = read_benchmark_file(path)
        if not records:
            continue
        seconds = [_number(r.get("s")) for r in records]
        rss = [_number(r.get("max_rss")) for r in records]
        cpu = [_number(r.get("cpu_time")) for r in records]
        finite = lambda values: [v for v in values if not math.isnan(v)]  # noqa: E731
        rows.append(
            {
                "rule": relative.parts[0],
                "wildcards": "/".join(relative.with_suffix("").parts[1:]),
                "s": round(sum(finite(seconds)) / len(finite(seconds)), 2) if finite(seconds) else math.nan,
                "max_rss": round(max(finite(rss)), 1) if finite(rss) else math.nan,
                "cpu_time": round(sum(finite(cpu)) / len(finite(cpu)), 2) if finite(cpu) else math.nan,
                "repeats": len(records),
            }
        )
    return rows


def per_rule(rows: list[dict]) -> list[dict]:
    """Totals per rule: jobs, total and max wall seconds, max RSS."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["rule"], []).append(row)
    out = []
    for rule, items in sorted(grouped.items()):
        secs = [r["s"] for r in items if not math.isnan(r["s"])]
        rss = [r["max_rss"] for r in items if not math.isnan(r["max_rss"])]
        out.append(
            {
                "rule": rule,
                "jobs": len(items),
                "total_s": round(sum(secs), 2),
                "max_s": max(secs, default=math.nan),
                "max_rss": max(rss, default=math.nan),
            }
        )
    return out


def to_markdown(rows: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """A Markdown table (empty string for no rows); NaN shows as an en dash."""
    if not rows:
        return ""
    columns = columns or tuple(rows[0])
    shown = lambda v: "–" if isinstance(v, float) and math.isnan(v) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(shown(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _write_example(root: Path) -> None:
    """A small folder in Snakemake's benchmark format (used at --tiny and in tests)."""
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    examples = {
        "prepare_model/gemma270m.tsv": ["79.8\t0:01:19\t2010.5\t6120.1\t1900.2\t1950.3\t0.0\t1100.0\t180.0\t140.1"],
        "ingest/en.tsv": ["2.41\t0:00:02\t650.2\t2100.0\t600.0\t610.0\t140.0\t12.0\t150.0\t3.5"],
        "train/gemma270m/en/sft.tsv": [
            "300.0\t0:05:00\t3500.0\t9000.0\t3400.0\t3450.0\t10.0\t20.0\t195.0\t590.0",
            "310.0\t0:05:10\t3600.0\t9000.0\t3400.0\t3450.0\t10.0\t20.0\t195.0\t600.0",
        ],
        "lexical/gemma270m/en/vanilla.tsv": ["40.0\t0:00:40\t-\t-\t-\t-\t-\t-\t-\t-"],
    }
    for name, lines in examples.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n".join(lines) + "\n")


def run(ctx: Workspace) -> list[Result]:
    root = REPO / "results" / "benchmarks"
    if ctx.tiny or not root.is_dir():
        root = ctx.work_dir / "rule-benchmarks"
        _write_example(root)
        source = (
            "a generated example folder (no results/benchmarks here)"
            if not ctx.tiny
            else "a generated example folder (--tiny)"
        )
    else:
        source = str(root.relative_to(REPO))
    rows = summarise(root)
    rules = per_rule(rows)
    return [
        Result(
            NAME,
            "benchmark files summarised",
            float(len(rows)),
            "files",
            detail={"source": source, "rows": rows, "per_rule": rules, "table": to_markdown(rows, COLUMNS)},
            note=f"from {source}; {len(rules)} rules",
        ),
    ]
