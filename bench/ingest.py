"""Benchmark 1: ingestion of a full-size SWOW-EN-shaped raw file.

Compares ``lexalign.norms.ingest.ingest`` with a straightforward pandas implementation of the same steps
(read, filter US, melt R1-R3, normalise NFKC/lower/whitespace/edge punctuation, drop missing markers,
32-hex masks and responses equal to the cue, group-by count, split, write Parquet; pandas checks no field
counts, the project checks every line's) and with the floor, a bare ``polars.read_csv`` of the file.
Each run is a fresh subprocess so that its peak RSS (VmHWM, imports included) is its own. The synthetic
file (``lexalign.testing.illustrative.synthetic``: seeded, the exact SWOW-EN 2018 raw layout, R row index
column, quoted strings, bare NA, mixed case, noise) is generated once and cached.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bench.common import Result, median, run_worker, skipped, slowdown, time_speedup
from lexalign.testing.illustrative.synthetic import SPLIT, US_FILTER, write_synthetic_swow_en
from lexalign.testing.workspace import Workspace

NAME = "ingest"
TITLE = "1. SWOW-EN ingestion (1.2M rows): lexalign.norms.ingest vs pandas vs bare polars read"
log = logging.getLogger("bench.ingest")

GENERATOR_VERSION = 4
FULL = {"n_cues": 12_000, "per_cue": 100, "n_types": 105_000}
TINY = {"n_cues": 300, "per_cue": 20, "n_types": 4_000}


def synthetic_file(ctx: Workspace) -> tuple[Path, dict]:
    spec = TINY if ctx.tiny else FULL
    key = (
        f"SWOW-EN.R{spec['per_cue']}.synthetic-c{spec['n_cues']}-v{spec['n_types']}"
        f"-s{ctx.seed}-g{GENERATOR_VERSION}.csv"
    )
    base = ctx.work_dir if ctx.tiny else ctx.cache_dir / "ingest"
    path = base / key
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        return path, json.loads(meta_path.read_text())
    log.info("generating %s (%d rows)", path.name, spec["n_cues"] * spec["per_cue"])
    meta = write_synthetic_swow_en(path, seed=ctx.seed, **spec)
    meta_path.write_text(json.dumps(meta))
    return path, meta


# --------------------------------------------------------------------------- the three implementations


def run_project(csv: str, out_dir: str) -> dict:
    """The project's ingest stage, exactly as the workflow calls it."""
    from lexalign.norms.ingest import ingest

    out = Path(out_dir)
    norms = {"path": csv, "format": "raw", "filter": US_FILTER}
    return ingest(csv, norms, SPLIT, 42, out / "associations.parquet", out / "stats.json")


run_project.imports = ("polars", "lexalign.norms.ingest")


def run_pandas(csv: str, out_dir: str, strings: str = "default") -> dict:
    """A straightforward pandas version of the same steps (same cleaning rules, same split).

    ``strings="default"`` keeps pandas' own string dtype (pyarrow-backed from pandas 3 on);
    ``"object"`` uses Python-object strings, which is what pandas < 3 did by default.
    """
    import pandas as pd

    from lexalign.core.text import EDGE_PUNCTUATION, HEX_MASK, MISSING_VALUES
    from lexalign.norms.ingest import split_cues

    def normalise(series: pd.Series) -> pd.Series:
        return series.str.normalize("NFKC").str.lower().str.replace(r"\s+", " ", regex=True).str.strip(EDGE_PUNCTUATION)

    dtype = object if strings == "object" else str
    frame = pd.read_csv(csv, dtype=dtype, keep_default_na=False, na_values=["NA"], encoding="utf-8")
    rows_in = len(frame)
    for column, accepted in US_FILTER.items():
        frame = frame[frame[column].str.strip().isin(accepted)]
    wide = frame[["cue", "R1", "R2", "R3"]].assign(cue=normalise(frame["cue"]))
    long = wide.melt(id_vars="cue", value_vars=["R1", "R2", "R3"], value_name="response")
    long["response"] = normalise(long["response"])
    response = long["response"]
    missing = (
        response.isna()
        | response.isin(MISSING_VALUES)
        | response.str.startswith("#").fillna(False).astype(bool)
        | response.str.fullmatch(HEX_MASK.strip("^$")).fillna(False).astype(bool)
    )
    same = (response == long["cue"]).fillna(False).astype(bool)
    kept = long[~missing & ~same]
    pooled = kept.groupby(["cue", "response"]).size().rename("count").reset_index()
    pooled["count"] = pooled["count"].astype("uint32")
    pooled = pooled.sort_values(["cue", "count", "response"], ascending=[True, False, True], ignore_index=True)
    assignment = split_cues(pooled["cue"].unique().tolist(), SPLIT, 42)
    pooled["split"] = pooled["cue"].map(assignment)
    per_cue = pooled.groupby("cue")["count"].agg(["size", "sum"])
    stats = {
        "rows_in": rows_in,
        "rows_after_filter": len(frame),
        "cues": len(per_cue),
        "response_tokens": int(pooled["count"].sum()),
        "response_types": int(pooled["response"].nunique()),
        "types_per_cue": round(float(per_cue["size"].mean()), 2),
        "split_cues": pooled.groupby("split")["cue"].nunique().to_dict(),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pooled.to_parquet(out / "associations.parquet", index=False)
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


run_pandas.imports = ("pandas", "pyarrow", "lexalign.norms.ingest")


def run_polars_read(csv: str) -> dict:
    """The floor: parse the whole file once with the same parse settings (all strings, NA = null)."""
    import polars as pl

    frame = pl.read_csv(csv, infer_schema=False, null_values=["NA"])
    return {"rows": frame.height}


run_polars_read.imports = ("polars",)


def compare_outputs(a: str, b: str) -> bool:
    """The project's and the pandas associations tables hold the same rows in the same order."""
    import polars as pl

    left = pl.read_parquet(Path(a) / "associations.parquet").select("cue", "response", "count", "split")
    right = pl.read_parquet(Path(b) / "associations.parquet").select("cue", "response", "count", "split")
    return left.cast({"count": pl.UInt32}).equals(right.cast({"count": pl.UInt32}))


def profile_project(csv: str) -> dict:
    """Where the project's ingest spends its time, phase by phase (the same calls as ingest.py, run one after
    another here; in ingest the field-count check runs beside the read)."""
    import time

    import numpy as np
    import polars as pl

    from lexalign.core import csvfile
    from lexalign.norms import ingest as project

    phases: dict[str, float] = {}

    def clock(name, fn):
        start = time.perf_counter()
        value = fn()
        phases[name] = round(time.perf_counter() - start, 3)
        return value

    path = Path(csv)
    separator, header = clock("sniff header", lambda: csvfile.sniff(path))
    clock("field count of every line (numpy)", lambda: csvfile.check_field_counts(path, separator, len(header)))
    lazy = project._scan(path, separator)
    for name, accepted in US_FILTER.items():
        lazy = lazy.filter(pl.col(name).str.strip_chars().is_in(accepted))
    wide = clock("scan + filter (cue, R1-R3)", lambda: project._collect(lazy.select("cue", "R1", "R2", "R3"), path))
    book = clock(
        "code book (distinct strings, normalise, rank)", lambda: project._CodeBook(wide, ["cue", "R1", "R2", "R3"])
    )
    cue = np.tile(book.code[book.indices("cue")], 3)
    response = np.concatenate([book.code[book.indices(f"R{i}")] for i in (1, 2, 3)])
    missing = np.concatenate([book.missing[book.indices(f"R{i}")] for i in (1, 2, 3)])
    pooled = clock(
        "pool (count pairs, packed sort)", lambda: project._pool(cue, response, missing, None, book.words, {})
    )
    clock("split (Python shuffle of the cues)", lambda: project.split_cues(pooled["cue"].unique().to_list(), SPLIT, 42))
    clock("write Parquet", lambda: pooled.write_parquet(Path(csv).with_suffix(".profile.parquet"), compression="lz4"))
    Path(csv).with_suffix(".profile.parquet").unlink(missing_ok=True)
    clock("pooled_counts() as a whole", lambda: project.pooled_counts(csv, {"format": "raw", "filter": US_FILTER}))
    return phases


profile_project.imports = ("polars", "lexalign.norms.ingest")


# --------------------------------------------------------------------------- benchmark


def run(ctx: Workspace) -> list[Result]:
    csv, meta = synthetic_file(ctx)
    reps = 1 if ctx.tiny else 3
    timeout = 120 if ctx.tiny else 900
    project, pandas_runs, floor = [], [], []
    for i in range(reps):
        floor.append(run_worker("bench.ingest:run_polars_read", {"csv": str(csv)}, timeout))
        project.append(
            run_worker(
                "bench.ingest:run_project",
                {"csv": str(csv), "out_dir": str(ctx.work_dir / "ingest" / f"project{i}")},
                timeout,
            )
        )
    pandas_object = []
    try:
        import pandas  # noqa: F401
    except ImportError:
        pandas_runs = []
    else:
        pandas_runs.append(
            run_worker(
                "bench.ingest:run_pandas",
                {"csv": str(csv), "out_dir": str(ctx.work_dir / "ingest" / "pandas0")},
                timeout,
            )
        )
        pandas_object.append(
            run_worker(
                "bench.ingest:run_pandas",
                {"csv": str(csv), "out_dir": str(ctx.work_dir / "ingest" / "pandas-object"), "strings": "object"},
                timeout,
            )
        )

    t_project = median([r["seconds"] for r in project])
    t_floor = median([r["seconds"] for r in floor])
    stats = project[0]["value"]
    file_info = {
        "file_mb": round(meta["bytes"] / 2**20, 1),
        "rows": meta["rows"],
        "cues": meta["cues"],
        "synthetic_vocabulary": meta["vocabulary"],
        "after_us_filter": {
            k: stats.get(k) for k in ("rows_after_filter", "cues", "response_tokens", "response_types", "types_per_cue")
        },
        "ref_real_swow_en_us": {
            "rows_after_filter": 604_342,
            "cues": 12_281,
            "response_tokens": 1_706_094,
            "response_types": 88_254,
            "types_per_cue": 66.7,
        },
    }
    mem = lambda runs: round(max(r["peak_rss_mb"] for r in runs), 1)  # noqa: E731
    mem_base = lambda runs: round(min(r["rss_before_mb"] for r in runs), 1)  # noqa: E731
    results = [
        Result(
            NAME,
            "lexalign ingest wall time",
            round(t_project, 3),
            "s",
            detail={"runs_s": [round(r["seconds"], 3) for r in project], "input": file_info},
        ),
    ]
    if pandas_runs:
        t_pandas = median([r["seconds"] for r in pandas_runs])
        identical = compare_outputs(str(ctx.work_dir / "ingest" / "project0"), str(ctx.work_dir / "ingest" / "pandas0"))
        results.append(
            time_speedup(
                NAME,
                "speed-up vs pandas (default strings)",
                round(t_project, 3),
                "pandas same steps",
                round(t_pandas, 3),
                ">= 10",
                detail={
                    "pandas_s": round(t_pandas, 3),
                    "lexalign_s": round(t_project, 3),
                    "outputs_identical": identical,
                },
                note=f"{t_project:.2f}s vs {t_pandas:.2f}s; outputs identical: {identical}",
            )
        )
        t_object = pandas_object[0]["seconds"]
        results.append(
            time_speedup(
                NAME,
                "speed-up vs pandas, object strings",
                round(t_project, 3),
                "pandas dtype=object",
                round(t_object, 3),
                None,
                detail={"pandas_object_s": round(t_object, 3)},
                note=f"{t_project:.2f}s vs {t_object:.2f}s (Python-object strings, the pandas < 3 default)",
            )
        )
        bound = t_pandas / t_floor
        results.append(
            Result(
                NAME,
                "largest reachable speed-up vs pandas (pandas / pl.read_csv)",
                round(bound, 2),
                "x",
                note="an ingest cannot be faster than parsing the file once",
            )
        )
    else:
        results.append(skipped(NAME, "speed-up vs pandas", "pandas not installed (pip install pandas)", ">= 10"))
    results.append(
        slowdown(
            NAME,
            "time vs bare pl.read_csv (floor)",
            round(t_project, 3),
            "s",
            "pl.read_csv",
            round(t_floor, 3),
            "<= 2",
            detail={"read_csv_runs_s": [round(r["seconds"], 3) for r in floor]},
            note=f"{t_project:.2f}s vs {t_floor:.2f}s",
        )
    )
    memory = {"lexalign": (mem(project), mem_base(project)), "pl.read_csv": (mem(floor), mem_base(floor))}
    if pandas_runs:
        memory["pandas"] = (mem(pandas_runs), mem_base(pandas_runs))
        memory["pandas dtype=object"] = (mem(pandas_object), mem_base(pandas_object))
    for label, (peak, before) in memory.items():
        results.append(
            Result(
                NAME,
                f"peak RSS {label}",
                peak,
                "MiB",
                detail={"rss_after_imports_mb": before},
                note=f"{before:.0f} MiB after imports",
            )
        )
    if any(r.status == "MISS" for r in results) and not ctx.tiny:
        phases = run_worker("bench.ingest:profile_project", {"csv": str(csv)}, timeout)["value"]
        results.append(
            Result(
                NAME,
                "profile of lexalign ingest (phases)",
                None,
                "s",
                detail=phases,
                note="; ".join(f"{k}: {v}s" for k, v in phases.items()),
            )
        )
    return results
