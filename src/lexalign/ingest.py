"""Ingest SWOW association norms: read raw participant files (or pooled strength files) exactly as
distributed, filter participants by culture, clean and pool responses into cue -> response counts,
and split by cue into train/val/test.

All table work is one lazy polars query; only the header sniffing and the split are plain Python.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from lexalign.errors import LexalignError
from lexalign.io import atomic_path, read_parquet_table, write_json
from lexalign.text import is_missing_expr, normalise_expr

log = logging.getLogger(__name__)

# Canonical column -> accepted header spellings (matched case-insensitively).
RAW_COLUMNS = {"cue": ("cue", "word"), "R1": ("r1",), "R2": ("r2",), "R3": ("r3",)}
STRENGTH_COLUMNS = {"cue": ("cue", "word"), "response": ("response",), "count": ("r123", "r1", "count")}


def _sniff(path: Path) -> tuple[str, list[str]]:
    """Check encoding and shape from the file's head; return (separator, header names)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read()
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LexalignError(f"{path}: is a directory, expected a CSV file") from None
    if not head.strip():
        raise LexalignError(f"{path}: file is empty")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LexalignError(f"{path}: file is UTF-16 encoded; re-save it as UTF-8")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x1f\x8b"):
        raise LexalignError(f"{path}: file is compressed (zip/gzip); extract the CSV first")
    head = head.removeprefix(b"\xef\xbb\xbf")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 64 KiB boundary
            line = head[: exc.start].count(b"\n") + 1
            raise LexalignError(f"{path}: not UTF-8 (invalid byte at line {line}); re-save the file as UTF-8") from None
        text = head[: exc.start].decode("utf-8")
    header_line = text.splitlines()[0]
    separator = max(("\t", ",", ";"), key=header_line.count)
    if header_line.count(separator) == 0:
        raise LexalignError(f"{path}: header has a single column; expected a comma- or tab-separated table")
    header = next(csv.reader(io.StringIO(header_line), delimiter=separator))
    lowered = [name.strip().lower() for name in header]
    duplicates = sorted({name for name in lowered if name and lowered.count(name) > 1})
    if duplicates:
        raise LexalignError(f"{path}: duplicate column(s) in header: {', '.join(duplicates)}")
    if not tail.endswith(b"\n") and size > len(head.split(b"\n", 1)[0]) + 1:
        last = tail.decode("utf-8", errors="replace").splitlines()[-1]
        if len(next(csv.reader(io.StringIO(last), delimiter=separator), [])) < len(header) or last.count('"') % 2:
            raise LexalignError(f"{path}: file ends in the middle of a row (truncated download?)")
    return separator, header


def _resolve_columns(path: Path, header: list[str], wanted: Mapping[str, tuple[str, ...]], overrides: Mapping[str, str]) -> dict[str, str]:
    """Map canonical column names to the file's actual header names, case-insensitively."""
    by_lower = {name.strip().lower(): name for name in header}
    resolved = {}
    for canonical, aliases in wanted.items():
        candidates = [overrides[canonical].lower()] if canonical in overrides else list(aliases)
        found = next((by_lower[c] for c in candidates if c in by_lower), None)
        if found is None:
            shown = ", ".join(repr(h) for h in header)
            raise LexalignError(f"{path}: missing column {candidates[0]!r} (for {canonical}); header has {shown}")
        resolved[canonical] = found
    return resolved


def detect_format(header: list[str]) -> str:
    lowered = {name.strip().lower() for name in header}
    if "response" in lowered:
        return "strength"
    if lowered & {"cue", "word", "r1", "r2", "r3"}:
        return "raw"
    return "unknown"


def _scan(path: Path, separator: str) -> pl.LazyFrame:
    return pl.scan_csv(path, separator=separator, infer_schema=False, quote_char='"', null_values=["NA"], encoding="utf8")


def _collect(frame: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        message = str(exc).splitlines()[0]
        if "utf-8" in message.lower():
            raise LexalignError(f"{path}: not UTF-8 ({message}); re-save the file as UTF-8") from None
        raise LexalignError(f"{path}: cannot parse as CSV: {message}") from None


def pooled_counts(path: str | os.PathLike, norms: Mapping) -> tuple[pl.DataFrame, dict]:
    """Read one norms file and return (cue, response, count) rows plus the counting stats."""
    path = Path(path)
    separator, header = _sniff(path)
    fmt = norms.get("format", "auto")
    if fmt == "auto":
        fmt = detect_format(header)
        if fmt == "unknown":
            raise LexalignError(f"{path}: neither a SWOW raw file (cue, R1, R2, R3) nor a strength file (cue, response, R123); set norms.columns")
    overrides = dict(norms.get("columns", {}))
    filters = dict(norms.get("filter", {}))
    stats: dict = {"file": str(path), "format": fmt}

    if fmt == "strength":
        if filters:
            raise LexalignError(f"{path}: a pooled strength file has no participant columns, so norms.filter cannot apply; remove the filter or use the raw file")
        cols = _resolve_columns(path, header, STRENGTH_COLUMNS, overrides)
        frame = _scan(path, separator).select(
            normalise_expr(cols["cue"]).alias("cue"),
            normalise_expr(cols["response"]).alias("response"),
            pl.col(cols["count"]).str.strip_chars().alias("count_text"),
        )
        table = _collect(frame, path)
        counts = table["count_text"].cast(pl.UInt32, strict=False)
        bad = table.filter(counts.is_null() & table["count_text"].is_not_null())
        if bad.height:
            raise LexalignError(f"{path}: column {cols['count']!r} has non-integer counts (e.g. {bad['count_text'][0]!r})")
        table = table.with_columns(count=counts).drop("count_text")
        stats.update(rows_in=table.height, rows_after_filter=table.height, participant_filter="not applicable: pooled input")
        long = table.filter(pl.col("cue").is_not_null())
    else:
        cols = _resolve_columns(path, header, RAW_COLUMNS, overrides)
        filter_cols = _resolve_columns(path, header, {k: (k.lower(),) for k in filters}, {})
        lazy = _scan(path, separator)
        rows_in = _collect(lazy.select(pl.len()), path).item()
        for name, accepted in filters.items():
            lazy = lazy.filter(pl.col(filter_cols[name]).str.strip_chars().is_in(list(accepted)))
        # Count identical raw (cue, response) pairs before normalising: normalising the distinct
        # strings only is several times cheaper than normalising all 3 x rows responses.
        responses = [pl.col(cols[f"R{i}"]).alias(f"R{i}") for i in (1, 2, 3)]
        pairs = _collect(
            lazy.select(pl.col(cols["cue"]).alias("cue"), *responses)
            .unpivot(index="cue", on=["R1", "R2", "R3"], value_name="response")
            .group_by("cue", "response")
            .agg(pl.len().cast(pl.UInt32).alias("count")),
            path,
        )
        rows_after_filter = int(pairs["count"].sum() or 0) // 3
        stats.update(rows_in=rows_in, rows_after_filter=rows_after_filter, participant_filter=filters or "none")
        if rows_after_filter == 0:
            raise LexalignError(f"{path}: no rows left after the participant filter {filters}")
        long = pairs.with_columns(normalise_expr("cue"), normalise_expr("response"))
        empty_cue = pl.col("cue").is_null() | (pl.col("cue") == "")
        n_empty = int(long.filter(empty_cue)["count"].sum() or 0) // 3
        if n_empty:
            cue = normalise_expr(cols["cue"])
            first = _collect(_scan(path, separator).with_row_index("row").filter(cue.is_null() | (cue == "")).head(1), path)
            raise LexalignError(f"{path}: {n_empty} row(s) have an empty cue (first at data row {first['row'][0] + 1})")

    missing = is_missing_expr(pl.col("response"))
    same_as_cue = pl.col("response") == pl.col("cue")
    stats["responses_missing"] = int(long.filter(missing)["count"].sum() or 0)
    stats["responses_equal_to_cue"] = int(long.filter(~missing & same_as_cue)["count"].sum() or 0)
    kept = long.filter(~missing & ~same_as_cue & pl.col("cue").is_not_null() & (pl.col("cue") != ""))
    pooled = (
        kept.group_by("cue", "response")
        .agg(pl.col("count").sum().cast(pl.UInt32))
        .sort(["cue", "count", "response"], descending=[False, True, False])
    )
    if pooled.height == 0:
        raise LexalignError(f"{path}: no usable responses after cleaning")
    per_cue = pooled.group_by("cue").agg(pl.len().alias("types"), pl.col("count").sum().alias("tokens"))
    stats.update(
        cues=per_cue.height,
        response_tokens=int(pooled["count"].sum()),
        response_types=pooled["response"].n_unique(),
        types_per_cue=round(float(per_cue["types"].mean()), 2),
        tokens_per_cue=round(float(per_cue["tokens"].mean()), 2),
    )
    return pooled, stats


def split_cues(cues: list[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign every cue to train/val/test by a seeded shuffle of the sorted cue list."""
    total = sum(fractions.get(name, 0.0) for name in ("train", "val", "test"))
    if abs(total - 1.0) > 1e-6:
        raise LexalignError(f"config split: train + val + test must sum to 1 (got {total:g})")
    order = sorted(cues)
    random.Random(seed).shuffle(order)
    n_train = round(fractions["train"] * len(order))
    n_val = round(fractions.get("val", 0.0) * len(order))
    assignment = {cue: "train" for cue in order[:n_train]}
    assignment.update({cue: "val" for cue in order[n_train : n_train + n_val]})
    assignment.update({cue: "test" for cue in order[n_train + n_val :]})
    return assignment


def ingest(
    norms_path: str | os.PathLike,
    norms: Mapping,
    split: Mapping[str, float],
    seed: int,
    associations_out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict:
    """Run the ingest stage for one language; returns the stats written to ``stats_out``."""
    pooled, stats = pooled_counts(norms_path, norms)
    assignment = split_cues(pooled["cue"].unique().to_list(), split, seed)
    table = pooled.with_columns(pl.col("cue").replace_strict(assignment, return_dtype=pl.String).alias("split"))
    sizes = table.group_by("split").agg(pl.col("cue").n_unique()).sort("split")
    stats["split_cues"] = dict(zip(sizes["split"].to_list(), sizes["cue"].to_list()))
    check_no_leakage(table)
    stats["leakage_check"] = "passed: every cue is in exactly one split"
    with atomic_path(associations_out) as tmp:
        table.write_parquet(tmp)
    write_json(stats_out, stats)
    log.info("ingested %s: %d cues, %d response tokens, split %s", norms_path, stats["cues"], stats["response_tokens"], stats["split_cues"])
    return stats


def check_no_leakage(table: pl.DataFrame) -> None:
    leaked = table.group_by("cue").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    if leaked.height:
        raise RuntimeError(f"split leakage: {leaked.height} cues occur in more than one split")


def load_associations(path: str | os.PathLike, splits: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Read an ingested associations table, checking its columns."""
    table = read_parquet_table(path, ("cue", "response", "count", "split"), "the ingest stage's associations table")
    if splits is not None:
        table = table.filter(pl.col("split").is_in(list(splits)))
    return table
