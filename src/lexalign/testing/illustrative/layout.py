"""The SWOW file layouts the invented files copy, and the one writer of their rows.

Both raw layouts are R ``write.csv`` output: comma-separated UTF-8, ``\\n`` line ends, strings (the header
and SWOW-EN's row-index column included) in double quotes, numbers bare, missing values a bare ``NA``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from lexalign.core.io import atomic_path
from lexalign.norms.ingest import SWOW_EN_HEADER

#: SWOW-EN 2018 raw participant file (its first column is R's unnamed row index).
EN_COLUMNS = SWOW_EN_HEADER
EN_INTEGERS = ("id", "participantID", "age", "education")
#: SWOW-ZH file: typed (``R1Raw``..) and cleaned (``R1``..) responses.
ZH_COLUMNS = (
    "id",
    "trialID",
    "participantID",
    "created_at",
    "age",
    "nativeLanguage",
    "gender",
    "education",
    "city",
    "country",
    "section",
    "cue",
    "R1Raw",
    "R2Raw",
    "R3Raw",
    "R1",
    "R2",
    "R3",
)
ZH_INTEGERS = ("id", "trialID", "participantID", "age", "education")

NA = None  # written as a bare NA
US = "United States"
NO_MORE = "No more responses"
UNKNOWN = "Unknown word"


def rows_frame(header: Sequence[str], rows: Iterable[Sequence], integers: Iterable[str]) -> pl.DataFrame:
    """Rows (lists of values in ``header`` order, None for NA) as a frame: ``integers`` Int64, the rest text."""
    numeric = set(integers)
    schema = {name: pl.Int64 if name in numeric else pl.String for name in header}
    return pl.DataFrame([list(row) for row in rows], schema=schema, orient="row")


def write_r_csv(path: str | os.PathLike, frame: pl.DataFrame) -> None:
    """Write ``frame`` as R's ``write.csv`` does (see the module docstring), atomically."""
    with atomic_path(path) as tmp:
        frame.write_csv(tmp, quote_style="non_numeric", null_value="NA")


def check_roundtrip(path: Path, n_rows: int, n_columns: int, delimiter: str = ",") -> None:
    """Re-read a written file with the csv module: every row parses and has every column."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=delimiter))
    if len(lines) != n_rows + 1 or any(len(line) != n_columns for line in lines):
        raise RuntimeError(f"{path.name}: does not read back as {n_rows} rows x {n_columns}")
