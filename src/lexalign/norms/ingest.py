"""Ingest SWOW association norms: read raw participant files (or pooled strength files) exactly as
distributed, filter participants by culture, clean and pool responses into cue -> response counts,
and split by cue into train/val/test.

Reading is checked before it is trusted (:mod:`lexalign.core.csvfile`): a regular UTF-8 file whose every
line has as many fields as the header, because polars, reading only the columns it needs, would
otherwise realign a ragged row in silence. Cleaning
works on integer codes: every distinct raw string is normalised once, and counting and sorting run on
the codes of the normalised words, whose order is their string order.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from lexalign.core.csvfile import check_field_counts, check_regular_file, first_line_not_utf8, line_of_row, sniff
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, read_parquet_table, write_json
from lexalign.core.text import is_missing_expr, normalise_expr

log = logging.getLogger(__name__)

# Canonical column -> accepted header spellings (matched case-insensitively); norms.columns overrides.
RAW_COLUMNS = {"cue": ("cue", "word"), "R1": ("r1",), "R2": ("r2",), "R3": ("r3",)}
STRENGTH_COLUMNS = {"cue": ("cue", "word"), "response": ("response",), "count": ("r123", "r1", "count")}
SPLITS = ("train", "val", "test")
SPLIT_DEFINITIONS = {
    "corrected": "sorted cues shuffled by Python's random.Random(seed); train and val sizes rounded to the nearest cue",
    "study": "the study's code: sorted cues shuffled by numpy's legacy RandomState(seed); train and val sizes floored",
}
_PACKED_BITS = 64  # width of the integer that packs (cue, count, response) for sorting
_USE_CATEGORIES = hasattr(pl, "Categories")  # polars >= 1.32: one pass maps strings to codes


# --------------------------------------------------------------------------- columns and reading


def detect_format(header: list[str]) -> str:
    lowered = {name.strip().lower() for name in header}
    if "response" in lowered:
        return "strength"
    if lowered & {"cue", "word", "r1", "r2", "r3"}:
        return "raw"
    return "unknown"


def resolve_columns(
    path: Path, header: list[str], wanted: Mapping[str, tuple[str, ...]], overrides: Mapping[str, str]
) -> dict[str, str]:
    """Map canonical column names to the file's actual header names, case-insensitively."""
    by_lower = {name.strip().lower(): name for name in header}
    resolved = {}
    for canonical, aliases in wanted.items():
        if canonical in overrides:
            candidates = [overrides[canonical].strip().lower()]
        else:
            candidates = list(aliases)
            present = [by_lower[c] for c in candidates if c in by_lower]
            if len(present) > 1:
                both = " and ".join(repr(name) for name in present)
                raise LexalignError(
                    f"{path}: has both {both} columns; "
                    f"set norms.columns.{canonical} to the one that holds the {canonical}"
                )
        found = next((by_lower[c] for c in candidates if c in by_lower), None)
        if found is None:
            shown = ", ".join(repr(h) for h in header)
            raise LexalignError(f"{path}: missing column {candidates[0]!r} (for {canonical}); header has {shown}")
        resolved[canonical] = found
    return resolved


def _scan(path: Path, separator: str) -> pl.LazyFrame:
    # No null_values: "NA" stays a string (text.is_missing_expr knows it), and parsing is faster.
    return pl.scan_csv(path, separator=separator, infer_schema=False, quote_char='"', encoding="utf8")


def _collect(frame: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        message = str(exc).splitlines()[0]
        if "utf-8" in message.lower() or "utf8" in message.lower():
            line = first_line_not_utf8(path)
            where = f"invalid byte at line {line}" if line else message
            raise LexalignError(f"{path}: not UTF-8 ({where}); re-save the file as UTF-8") from None
        raise LexalignError(f"{path}: cannot parse as CSV: {message}") from None


# --------------------------------------------------------------------------- cleaning and pooling


class _CodeBook:
    """Every distinct raw string of some columns, normalised once, with a word code and a missing flag.

    A word's code is the dense rank of its normalised form (1 = first in string order), so sorting
    codes sorts words; code 0 stands for a null (empty) field. With polars' Categories (polars >= 1.32)
    one cast both finds the distinct strings and maps every row to them; otherwise the distinct strings
    are found first and the rows are mapped through an Enum of them.
    """

    def __init__(self, frame: pl.DataFrame, columns: list[str]):
        if _USE_CATEGORIES:
            categories = pl.Categories.random()
            coded = frame.select(pl.col(columns).cast(pl.Categorical(categories)))
            self.values = categories.to_series()  # read while `coded` keeps the mapping alive
        else:
            self.values = pl.concat([frame[column] for column in columns]).unique().drop_nulls()
            coded = frame.select(pl.col(columns).cast(pl.Enum(self.values)))
        self._physical = {column: coded[column].to_physical().cast(pl.UInt32) for column in columns}
        book = (
            pl.DataFrame({"raw": self.values})
            .with_columns(normalise_expr("raw").alias("word"))
            .with_columns(
                is_missing_expr(pl.col("word"), pl.col("raw")).alias("missing"),
                pl.col("word").rank("dense").cast(pl.UInt64).alias("code"),
            )
        )
        self.code = np.append(book["code"].to_numpy(), np.uint64(0))  # index len(values): a null field
        self.missing = np.append(book["missing"].to_numpy(), True)
        self.words = book.select("code", "word").unique("code").sort("code")["word"]
        empty = book.filter(pl.col("word") == "")["code"]
        self.empty_codes = np.array([0, *empty.to_list()], dtype=np.uint64)

    def indices(self, column: str) -> np.ndarray:
        """Row-wise index of ``column``'s values in the book (``len(values)`` for null)."""
        return self._physical[column].fill_null(len(self.values)).to_numpy()


def _kept_rows(columns: list[str], filters: Mapping[str, list]) -> pl.Expr:
    """Rows ingest reads: those passing the participant filter, without blank lines (all-null rows)."""
    kept = pl.any_horizontal(pl.col(columns).is_not_null())
    for column, accepted in filters.items():
        kept = kept & pl.col(column).str.strip_chars().is_in([str(v).strip() for v in accepted])
    return kept


def _check_cues(path: Path, separator: str, kept: pl.Expr, cue_column: str, codes: np.ndarray, book: _CodeBook) -> None:
    empty = np.isin(codes, book.empty_codes)
    if not empty.any():
        return
    cue = normalise_expr(cue_column)
    rows = _scan(path, separator).with_row_index("row").filter(kept & (cue.is_null() | (cue == "")))
    first = _collect(rows.select("row").head(1), path)
    where = f" (first on line {line_of_row(path, separator, int(first['row'][0]))})" if first.height else ""
    raise LexalignError(f"{path}: {int(empty.sum())} row(s) have an empty cue{where}; every row needs a cue")


def _pool(
    cue: np.ndarray, response: np.ndarray, missing: np.ndarray, count: np.ndarray | None, words: pl.Series, stats: dict
) -> pl.DataFrame:
    """Pool response codes per cue code into rows sorted by cue, count (descending), response.

    ``count`` is each row's count (None: 1 each, raw participant rows).
    """
    same = ~missing & (response == cue)
    keep = ~missing & ~same
    weight = (lambda mask: int(mask.sum())) if count is None else (lambda mask: int(count[mask].sum()))
    stats["responses_missing"] = weight(missing)
    stats["responses_equal_to_cue"] = weight(same)
    bits = max(len(words), 1).bit_length()
    key = (cue[keep] << np.uint64(bits)) | response[keep]
    if not len(key):
        return pl.DataFrame(schema={"cue": pl.String, "response": pl.String, "count": pl.UInt32})
    order = None if count is None else pl.Series(key).arg_sort().to_numpy()
    key = pl.Series(key).sort().to_numpy() if order is None else key[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))  # one run per distinct pair
    if count is None:
        counts = np.diff(starts, append=len(key)).astype(np.uint64)
    else:
        counts = np.add.reduceat(count[keep][order], starts).astype(np.uint64)
    key = key[starts]
    word_mask = np.uint64((1 << bits) - 1)
    cues, responses = key >> np.uint64(bits), key & word_mask
    count_bits = int(counts.max(initial=0)).bit_length()
    if (
        2 * bits + count_bits <= _PACKED_BITS
    ):  # one integer holds cue, count (descending) and response: sort it, read them back
        count_mask = np.uint64((1 << count_bits) - 1)
        packed = (cues << np.uint64(bits + count_bits)) | ((count_mask - counts) << np.uint64(bits)) | responses
        packed = pl.Series(packed).sort().to_numpy()
        cues, counts, responses = (
            packed >> np.uint64(bits + count_bits),
            count_mask - ((packed >> np.uint64(bits)) & count_mask),
            packed & word_mask,
        )
    else:
        order = np.lexsort((responses, -counts.astype(np.int64), cues))
        cues, responses, counts = cues[order], responses[order], counts[order]
    stats["cues"] = int(np.count_nonzero(np.diff(cues))) + 1 if len(cues) else 0
    stats["response_types"] = pl.Series(responses).n_unique()
    return pl.DataFrame(
        {
            "cue": words.gather(pl.Series(cues - np.uint64(1))),
            "response": words.gather(pl.Series(responses - np.uint64(1))),
            "count": pl.Series(counts, dtype=pl.UInt32, strict=False),
        }
    )


def _raw_rows(path: Path, separator: str, cols: dict[str, str], filters: dict[str, list], stats: dict) -> tuple:
    kept = _kept_rows([cols[c] for c in RAW_COLUMNS], filters)
    wide = _collect(_scan(path, separator).filter(kept).select(pl.col(cols[c]).alias(c) for c in RAW_COLUMNS), path)
    stats["rows_after_filter"] = wide.height
    if wide.height == 0:
        raise LexalignError(f"{path}: no rows left after the participant filter {filters}")
    book = _CodeBook(wide, list(RAW_COLUMNS))
    cue = book.code[book.indices("cue")]
    _check_cues(path, separator, kept, cols["cue"], cue, book)
    responses = [book.indices(f"R{i}") for i in (1, 2, 3)]
    response = np.concatenate([book.code[index] for index in responses])
    missing = np.concatenate([book.missing[index] for index in responses])
    return np.tile(cue, 3), response, missing, None, book.words


def _strength_rows(path: Path, separator: str, cols: dict[str, str], filters: dict, stats: dict) -> tuple:
    kept = _kept_rows([cols[c] for c in STRENGTH_COLUMNS], {})
    table = _collect(
        _scan(path, separator).filter(kept).select(pl.col(cols[c]).alias(c) for c in STRENGTH_COLUMNS), path
    )
    counts = table["count"].str.strip_chars().cast(pl.Int64, strict=False)
    bad = table.filter((counts.is_null() & table["count"].is_not_null()) | (counts < 0))
    if bad.height:
        raise LexalignError(
            f"{path}: column {cols['count']!r} has non-integer counts (found {bad['count'][0]!r}); "
            "counts are whole numbers >= 0"
        )
    stats["pairs_with_zero_count_dropped"] = int((counts == 0).sum())
    table = table.with_columns(count=counts).filter(pl.col("count") > 0)
    stats["rows_after_filter"] = table.height
    book = _CodeBook(table, ["cue", "response"])
    cue = book.code[book.indices("cue")]
    _check_cues(path, separator, kept, cols["cue"], cue, book)
    index = book.indices("response")
    return cue, book.code[index], book.missing[index], table["count"].to_numpy().astype(np.uint64), book.words


def norms_format(path: Path, norms: Mapping) -> tuple[str, str, list[str]]:
    """(format, separator, header) of a norms file: ``raw`` or ``strength``, as ``norms.format`` says or
    its header shows."""
    check_regular_file(path)
    separator, header = sniff(path)
    fmt = norms.get("format", "auto")
    if fmt == "auto":
        fmt = detect_format(header)
    if fmt not in ("raw", "strength"):
        raise LexalignError(
            f"{path}: neither a SWOW raw file (cue, R1, R2, R3) nor a strength file (cue, response, R123); "
            "set norms.columns"
        )
    return fmt, separator, header


def pooled_counts(path: str | os.PathLike, norms: Mapping) -> tuple[pl.DataFrame, dict]:
    """Read one norms file and return (cue, response, count) rows plus the counting stats."""
    path = Path(path)
    fmt, separator, header = norms_format(path, norms)
    overrides = dict(norms.get("columns", {}))
    unknown = sorted(set(overrides) - set(RAW_COLUMNS) - set(STRENGTH_COLUMNS))
    if unknown:
        raise LexalignError(
            f"norms.columns: unknown key(s) {', '.join(unknown)}; allowed: cue, R1, R2, R3, response, count"
        )
    filters = dict(norms.get("filter", {}))
    if fmt == "strength" and filters:
        raise LexalignError(
            f"{path}: a pooled strength file has no participant columns, so norms.filter cannot apply; "
            "remove the filter or use the raw file"
        )
    cols = resolve_columns(path, header, STRENGTH_COLUMNS if fmt == "strength" else RAW_COLUMNS, overrides)
    filter_cols = resolve_columns(path, header, {k: (k.lower(),) for k in filters}, {})
    stats: dict = {"file": str(path), "format": fmt}
    read = _strength_rows if fmt == "strength" else _raw_rows
    # The field-count check runs beside polars' read (numpy releases the GIL); its verdict comes first.
    with ThreadPoolExecutor(1) as executor:
        checked = executor.submit(check_field_counts, path, separator, len(header))
        try:
            cue, response, missing, count, words = read(
                path, separator, cols, {filter_cols[k]: v for k, v in filters.items()}, stats
            )
        except LexalignError:
            checked.result()  # a bad line explains a failed read better than the read's own error
            raise
        stats = {"file": stats.pop("file"), "format": stats.pop("format"), "rows_in": checked.result(), **stats}
    stats["participant_filter"] = (filters or "none") if fmt == "raw" else "not applicable: pooled input"
    pooled = _pool(cue, response, missing, count, words, stats)
    if pooled.height == 0:
        raise LexalignError(f"{path}: no usable responses after cleaning")
    tokens = int(pooled["count"].sum())
    stats.update(
        response_tokens=tokens,
        types_per_cue=round(pooled.height / stats["cues"], 2),
        tokens_per_cue=round(tokens / stats["cues"], 2),
    )
    return pooled, stats


# --------------------------------------------------------------------------- split and the stage


def split_cues(
    cues: list[str], fractions: Mapping[str, float], seed: int, definition: str = "corrected"
) -> dict[str, str]:
    """Assign every cue to train/val/test by a seeded shuffle of the sorted cue list.

    ``definition``: ``corrected`` (Python's ``random.Random(seed)``; sizes rounded to the nearest cue)
    or ``study`` (the study's code: numpy's legacy ``RandomState(seed).shuffle``; train and val sizes
    floored, so test gets the remainder: 1,004 Mandarin test cues where rounding gives 1,002).
    """
    if definition not in SPLIT_DEFINITIONS:
        raise LexalignError(f"config split.definition: {definition!r} is not one of {', '.join(SPLIT_DEFINITIONS)}")
    shares = {}
    for name in SPLITS:
        value = fractions.get(name, 0.0)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0 <= value <= 1
        ):
            raise LexalignError(f"config split.{name}: {value!r} is not a share between 0 and 1")
        shares[name] = float(value)
    total = sum(shares.values())
    if abs(total - 1.0) > 1e-6:
        raise LexalignError(f"config split: train + val + test must sum to 1 (got {total:g})")
    order = sorted(cues)
    if definition == "study":
        if not 0 <= seed < 2**32:
            raise LexalignError(
                f"config seed: {seed} is outside 0..2**32-1, which numpy's RandomState (split.definition study) needs"
            )
        np.random.RandomState(seed).shuffle(order)
        n_train = int(shares["train"] * len(order))
        n_val = int(shares["val"] * len(order))
    else:
        random.Random(seed).shuffle(order)
        n_train = round(shares["train"] * len(order))
        n_val = round(shares["val"] * len(order))
    assignment = dict.fromkeys(order[:n_train], "train")
    assignment.update(dict.fromkeys(order[n_train : n_train + n_val], "val"))
    assignment.update(dict.fromkeys(order[n_train + n_val :], "test"))
    return assignment


def ingest(
    norms_path: str | os.PathLike,
    norms: Mapping,
    split: Mapping,
    seed: int,
    associations_out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict:
    """Run the ingest stage for one language; returns the stats written to ``stats_out``.

    ``split`` holds the train/val/test shares and ``definition`` (see :func:`split_cues`).
    """
    definition = split.get("definition", "corrected")
    pooled, stats = pooled_counts(norms_path, norms)
    runs = pooled["cue"].rle().struct.unnest()  # the table is sorted by cue: one run per cue
    assignment = split_cues(runs["value"].to_list(), split, seed, definition)
    labels = pl.Series("split", [assignment[cue] for cue in runs["value"]])
    table = pooled.with_columns(labels.gather(np.repeat(np.arange(len(labels)), runs["len"].to_numpy())))
    stats["split_cues"] = {name: sum(1 for label in assignment.values() if label == name) for name in SPLITS}
    stats["split_definition"] = definition
    check_no_leakage(table)
    stats["leakage_check"] = "passed: every cue is in exactly one split"
    with atomic_path(associations_out) as tmp:
        table.write_parquet(tmp, compression="lz4")
    write_json(stats_out, stats)
    log.info(
        "ingested %s: %d cues, %d response tokens, split %s",
        norms_path,
        stats["cues"],
        stats["response_tokens"],
        stats["split_cues"],
    )
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
