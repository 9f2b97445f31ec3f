"""Tier-2 human data: what both sources share, and the official WVS-7 respondent CSV reader.

Shared: the table every source produces (:func:`humans_schema`: the item columns of :data:`ITEM_SCHEMA`,
then per configured country (:mod:`lexalign.config.countries`, ``wvs.countries``) its answer shares under its
key and its respondent count under ``n_<key>``, then the tension between the two; one row per item kept),
bad-row handling (:class:`BadRows`, ``wvs.bad_rows``) and :func:`finish`.

``wvs_csv`` (:func:`humans_from_wvs_csv`): the ``WVS_Cross-National_Wave_7_csv_v6_0`` respondent file,
read lazily (only the country, weight and catalog item columns), weighted by ``W_WEIGHT``. Every
line's field count is checked first, so a short or long row is reported (or skipped) instead of
realigned; decimal-comma, zero, infinite and non-numeric weights and non-integer answer codes are
reported by file, row and column. The other source is :mod:`lexalign.wvs.sources.global_opinions`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from lexalign.config.countries import Country, by_key
from lexalign.core.csvfile import (
    FieldCountError,
    any_field_size,
    check_field_counts,
    check_no_nul,
    check_regular_file,
    first_line_not_utf8,
    sniff,
)
from lexalign.core.errors import LexalignError
from lexalign.wvs.metrics import tension_distance

log = logging.getLogger(__name__)

COUNTRY_COLUMN = "B_COUNTRY_ALPHA"
WEIGHT_COLUMN = "W_WEIGHT"
NOT_ASKED = -4

#: The item columns of humans.parquet (the catalog's fields), before the per-country columns.
ITEM_SCHEMA = {
    "item_id": pl.String,
    "topic": pl.String,
    "source": pl.String,
    "question_en": pl.String,
    "question_zh": pl.String,
    "subject_en": pl.String,
    "subject_zh": pl.String,
    "options_en": pl.List(pl.String),
    "options_zh": pl.List(pl.String),
    "codes": pl.List(pl.Int64),
    "ordinal": pl.Boolean,
    "n_options": pl.Int64,
}
#: The tension columns, last: tension_distance(first country, second country), corrected and the study's.
TENSION_SCHEMA = {"tension": pl.Float64, "tension_study": pl.Float64}


def humans_schema(countries: Sequence[Country]) -> dict[str, pl.DataType]:
    """humans.parquet's columns for a country pair: items, ``<key>`` shares and ``n_<key>`` per country, tension."""
    return {
        **ITEM_SCHEMA,
        **{c.key: pl.List(pl.Float64) for c in countries},
        **{f"n_{c.key}": pl.Int64 for c in countries},
        **TENSION_SCHEMA,
    }


def humans_countries(columns: Sequence[str]) -> list[Country]:
    """The countries a humans table holds (in its column order): every ``<key>`` column with an ``n_<key>``."""
    names = set(columns)
    return by_key(c for c in columns if c not in ITEM_SCHEMA and c not in TENSION_SCHEMA and f"n_{c}" in names)


# --------------------------------------------------------------------------------------------------
# Shared helpers


class BadRows:
    """Bad input rows: raise at once (``error``) or skip them, counting reasons and keeping examples.

    A reason says what is wrong with the row (no "skipped" in it): the error names the fix, the
    skip examples say what was skipped.
    """

    def __init__(self, path: str | os.PathLike, policy: str, examples: int = 10):
        if policy not in ("skip", "error"):
            raise LexalignError(f"config wvs.bad_rows: {policy!r} is not one of ['skip', 'error']")
        self.path, self.policy, self.max_examples = str(path), policy, examples
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def __call__(self, row: int | str, reason: str, kind: str, unit: str = "row") -> None:
        self.many(kind, 1, [(row, reason)], unit)

    def many(self, kind: str, total: int, examples: list[tuple[int | str, str]], unit: str = "row") -> None:
        """``total`` bad rows of one kind, ``examples`` of them as (row, reason) pairs; ``unit``: what is skipped."""
        if total == 0:
            return
        messages = [f"{self.path}: row {row}: {reason}" for row, reason in examples]
        if self.policy == "error":
            first = messages[0] if messages else f"{self.path}: {total} bad rows ({kind})"
            raise LexalignError(f"{first} (fix the file, or set wvs.bad_rows: skip to skip and count such rows)")
        self.counts[kind] += total
        left = max(0, self.max_examples - len(self.examples))
        self.examples.extend(f"{message}; {unit} skipped" for message in messages[:left])

    def summary(self) -> dict:
        return {"policy": self.policy, "skipped": dict(self.counts), "examples": self.examples}


def finish(rows: list[dict], path: str, countries: Sequence[Country]) -> pl.DataFrame:
    """The humans table of ``rows`` (each with ``<key>`` shares and ``n_<key>`` per country), tension added."""
    first, second = (c.key for c in countries)
    if not rows:
        raise LexalignError(f"{path}: no item has answers for both {countries[0].name} and {countries[1].name}")
    for row in rows:
        row["tension"] = tension_distance(row[first], row[second], "corrected")
        row["tension_study"] = tension_distance(row[first], row[second], "study")
    return pl.DataFrame(rows, schema=humans_schema(countries))


# --------------------------------------------------------------------------------------------------
# Source 1: the official WVS-7 respondent CSV


def detect_separator(path: str | os.PathLike) -> str:
    """`,`, `;` or tab, whichever the header uses (WVS releases have shipped both `,` and `;`), after the
    shared checks of :mod:`lexalign.core.csvfile` (a regular UTF-8 text file, not compressed, no bare CR ends)."""
    return read_header(path)[0]


def read_header(path: str | os.PathLike) -> tuple[str, list[str]]:
    """(separator, header names) of a CSV file that passed :func:`lexalign.core.csvfile.sniff`."""
    path = Path(path)
    check_regular_file(path)
    return sniff(path)


def _header_map(path: str | os.PathLike, names: list[str], wanted: set[str]) -> dict[str, str]:
    """Normalised column name -> name in the file (case-insensitive; 'Q1: Important...' -> Q1).

    A ``wanted`` column that appears twice is an error: which of the two holds the answers is unknown.
    """
    mapping: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        key = name.split(":", 1)[0].strip().strip('"').upper()
        if key in mapping and key in wanted:
            first = names.index(mapping[key]) + 1
            raise LexalignError(
                f"{path}: column {key} appears twice in the header (columns {first} {mapping[key]!r} and "
                f"{position} {name!r}); keep one"
            )
        mapping.setdefault(key, name)
    return mapping


def _check_fields(path: str | os.PathLike, sep: str, n_fields: int, bad_rows: BadRows) -> set[int]:
    """The data rows (1-based, as polars numbers them) to skip because their field count is not the header's.

    Every line is checked (:func:`lexalign.core.csvfile.check_field_counts`): a row with an unquoted separator
    or a missing field would otherwise be realigned (a weight read as an answer). With ``bad_rows: error``
    the first such line is fatal; with ``skip`` every such row is found, counted and skipped.
    """
    try:
        check_field_counts(path, sep, n_fields)
        return set()
    except FieldCountError:
        if bad_rows.policy == "error":
            raise
    check_no_nul(path)  # the field-count check stopped at the first ragged line; skipping goes on past it
    ragged = _ragged_rows(path, sep, n_fields)
    examples = [
        (row, f"line {line}: {found} fields, the header has {n_fields}")
        for row, (line, found) in sorted(ragged.items())[: bad_rows.max_examples]
    ]
    bad_rows.many("wrong_field_count", len(ragged), examples, "respondent")
    return set(ragged)


def _ragged_rows(path: str | os.PathLike, sep: str, width: int) -> dict[int, tuple[int, int]]:
    """Data row -> (line, fields) of every row without ``width`` fields (a blank line is a row of nulls
    to polars: counted, never reported)."""
    ragged = {}
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle, any_field_size():
        reader = csv.reader(handle, delimiter=sep)
        next(reader)
        line = reader.line_num + 1
        for row, fields in enumerate(reader, start=1):
            if fields and len(fields) != width:
                ragged[row] = (line, len(fields))
            line = reader.line_num + 1
    return ragged


_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


def _collect(path: str | os.PathLike, frame: pl.LazyFrame) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        line = first_line_not_utf8(Path(path))
        if line:
            raise LexalignError(f"{path}: not UTF-8 (invalid byte at line {line}); re-save the file as UTF-8") from None
        raise LexalignError(
            f"{path}: cannot read as a CSV table ({str(exc).splitlines()[0]}); "
            "look for a quote character inside an unquoted field"
        ) from None


def _respondents(path, sep, header, item_cols: dict[str, str], skip: set[int], bad_rows: BadRows, countries):
    """The configured countries' respondents with a usable weight: _row, country, weight_value, item columns."""
    alpha = {c.code for c in countries}
    lazy = (
        pl.scan_csv(
            path,
            separator=sep,
            infer_schema=False,
            row_index_name="_row",
            row_index_offset=1,
            truncate_ragged_lines=True,
        )
        .select(
            "_row",
            pl.col(header[COUNTRY_COLUMN]).alias("country"),
            pl.col(header[WEIGHT_COLUMN]).alias("weight"),
            *item_cols,
        )
        .filter(~pl.col("_row").is_in(sorted(skip)))
        .with_columns(pl.col("country").str.strip_chars().str.to_uppercase())
        .filter(pl.col("country").is_in(sorted(alpha)))
        .with_columns(pl.col("weight").str.strip_chars().cast(pl.Float64, strict=False).alias("weight_value"))
    )
    frame = _collect(path, lazy)
    found = set(frame["country"].unique().to_list())
    for wanted in countries:
        if wanted.code not in found:
            held = _codes_in_file(path, sep, header)
            raise LexalignError(
                f"{path}: no respondents of {wanted.name} ({COUNTRY_COLUMN} {wanted.code}) in the file "
                f"(it holds {', '.join(held) or 'none'}); change wvs.countries or the source file"
            )
    comma = frame.filter(pl.col("weight").str.contains(_DECIMAL_COMMA.pattern)).head(1)
    if comma.height:
        row, weight = comma.select("_row", "weight").row(0)
        raise LexalignError(
            f"{path}: row {row}: {WEIGHT_COLUMN} {weight!r} has a decimal comma; export the CSV with decimal points"
        )
    value = pl.col("weight_value")
    usable = value.is_not_null() & value.is_finite() & (value >= 0)
    bad_weight = frame.filter(~usable)
    bad_rows.many(
        "bad_weight",
        bad_weight.height,
        [
            (row, f"{WEIGHT_COLUMN} {weight!r} is not a finite non-negative number")
            for row, weight in bad_weight.select("_row", "weight").head(bad_rows.max_examples).iter_rows()
        ],
        "respondent",
    )
    frame = frame.filter(usable)
    for code3, total, n in frame.group_by("country").agg(value.sum().alias("w"), pl.len()).sort("country").iter_rows():
        if total <= 0:
            raise LexalignError(
                f"{path}: all {n} {code3} respondents have {WEIGHT_COLUMN} 0; no distribution can be weighted"
            )
    return frame


def _codes_in_file(path, sep: str, header: dict[str, str]) -> list[str]:
    """The distinct country codes of the file (for the error naming a configured country it lacks)."""
    lazy = pl.scan_csv(path, separator=sep, infer_schema=False, truncate_ragged_lines=True)
    codes = _collect(path, lazy.select(pl.col(header[COUNTRY_COLUMN]).str.strip_chars().str.to_uppercase()).unique())
    return sorted(code for code in codes.to_series().to_list() if code)


def _answer_counts(path, frame: pl.DataFrame, item_cols: dict[str, str], bad_rows: BadRows) -> pl.DataFrame:
    """(item_id, country, code, n, w): respondents and summed weight per integer answer code."""
    long = (
        frame.lazy()
        .unpivot(
            index=["_row", "country", "weight_value"], on=list(item_cols), variable_name="column", value_name="raw"
        )
        .with_columns(
            pl.col("column").replace_strict(item_cols, return_dtype=pl.String).alias("item_id"),
            pl.col("raw").str.strip_chars().cast(pl.Float64, strict=False).alias("value"),
        )
    )
    present = pl.col("raw").is_not_null() & (pl.col("raw").str.strip_chars() != "")
    integer = (
        pl.col("value").is_finite() & (pl.col("value") == pl.col("value").round(0)) & (pl.col("value").abs() < 2**31)
    )
    for kind, condition, what in (
        ("non_numeric_answer", present & pl.col("value").is_null(), "is not a numeric answer code"),
        ("non_integer_answer", pl.col("value").is_not_null() & ~integer, "is not an integer answer code"),
    ):
        bad = _collect(path, long.filter(condition).select("_row", "column", "raw").sort("_row", "column"))
        bad_rows.many(
            kind,
            bad.height,
            [
                (row, f"column {column}: {raw!r} {what}")
                for row, column, raw in bad.head(bad_rows.max_examples).iter_rows()
            ],
            "answer",
        )
    counts = _collect(
        path,
        long.filter(pl.col("value").is_not_null() & integer)
        .with_columns(pl.col("value").cast(pl.Int64).alias("code"))
        .group_by("item_id", "country", "code")
        .agg(pl.len().alias("n"), pl.col("weight_value").alias("w")),
    )
    # math.fsum: the correctly rounded sum whatever the order the engine collected the weights in (a plain sum
    # differed in the last bit from run to run), so humans.parquet is the same bytes on every run
    return counts.with_columns(pl.col("w").map_elements(math.fsum, return_dtype=pl.Float64))


def humans_from_wvs_csv(
    path: str | os.PathLike, catalog: list[dict], bad_rows: BadRows, countries: Sequence[Country]
) -> tuple[pl.DataFrame, dict]:
    """The two countries' weighted answer shares per catalog item from the WVS-7 respondent CSV."""
    sep, names = read_header(path)
    skip = _check_fields(path, sep, len(names), bad_rows)
    wanted = {COUNTRY_COLUMN, WEIGHT_COLUMN, *(item["item_id"].upper() for item in catalog)}
    header = _header_map(path, names, wanted)
    for required in (COUNTRY_COLUMN, WEIGHT_COLUMN):
        if required not in header:
            raise LexalignError(f"{path}: missing column {required} (expected the WVS-7 cross-national CSV)")
    present = [item for item in catalog if item["item_id"].upper() in header]
    absent = [item["item_id"] for item in catalog if item["item_id"].upper() not in header]
    if not present:
        raise LexalignError(f"{path}: none of the {len(catalog)} catalog items (Q1 ... Q290) is a column of this file")
    alpha = {c.code: c.key for c in countries}
    item_cols = {header[item["item_id"].upper()]: item["item_id"] for item in present}
    frame = _respondents(path, sep, header, item_cols, skip, bad_rows, countries)
    counts = _answer_counts(path, frame, item_cols, bad_rows)
    table: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    for item_id, country, code, n, w in counts.iter_rows():
        table.setdefault((item_id, alpha[country]), {})[code] = (n, w)

    rows, dropped, unexpected = [], [], {}
    for item in present:
        item_id, valid = item["item_id"], item["codes"]
        dists, ns, reason = {}, {}, None
        for key, code3 in ((c.key, c.code) for c in countries):
            cells = table.get((item_id, key), {})
            extra = {c: n for c, (n, _) in cells.items() if c >= 0 and c not in valid}
            if extra:
                unexpected.setdefault(item_id, {})[code3] = {str(c): n for c, n in sorted(extra.items())}
            weights = [cells.get(c, (0, 0.0))[1] for c in valid]
            n_valid = sum(cells.get(c, (0, 0.0))[0] for c in valid)
            total = sum(weights)
            if n_valid == 0 or total <= 0:
                answered = sum(n for c, (n, _) in cells.items())
                not_asked = cells.get(NOT_ASKED, (0, 0.0))[0]
                if n_valid:
                    reason = f"the {n_valid} valid {code3} answers all have {WEIGHT_COLUMN} 0"
                elif answered and not_asked == answered:
                    reason = f"not asked in {code3} (all {NOT_ASKED})"
                elif answered:
                    reason = (
                        f"no valid answer in {code3} ({answered} respondents, "
                        f"all missing codes or codes outside {valid})"
                    )
                else:
                    reason = f"no {code3} respondents in the file"
                break
            dists[key] = [w / total for w in weights]
            ns[key] = n_valid
        if reason:
            dropped.append({"item_id": item_id, "reason": reason})
            continue
        rows.append(
            {**item, "source": "wvs_csv", **dists, **{f"n_{key}": n for key, n in ns.items()}},
        )
    respondents = frame.group_by("country").len().rows()
    notes = {
        "separator": sep,
        "respondents": {country: n for country, n in sorted(respondents)},
        "weight": WEIGHT_COLUMN,
        "missing_codes": "negative codes (-1 don't know, -2 no answer, -3 not applicable, -4 not asked, -5 missing) "
        "excluded",
        "items_absent_from_file": absent,
        "items_dropped": dropped,
        "unexpected_codes": unexpected,
    }
    for entry in dropped:
        log.info("item %s dropped: %s", entry["item_id"], entry["reason"])
    return finish(rows, str(path), countries), notes
