"""Ingest SWOW association norms: read raw participant files (or pooled strength files) exactly as
distributed, filter participants by culture, clean and pool responses into cue -> response counts,
and split by cue into train/val/test (:mod:`lexalign.norms.split`). The workflow's job is an
:class:`IngestJob` (``IngestJob.from_rule``, then :func:`run`); :func:`ingest` is the same for other callers.

Reading is checked before it is trusted (:mod:`lexalign.core.csvfile`): a regular UTF-8 file whose every
line has as many fields as the header, because polars, reading only the columns it needs, would
otherwise realign a ragged row in silence. Cleaning
works on integer codes: every distinct raw string is normalised once, and counting and sorting run on
the codes of the normalised words, whose order is their string order.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lexalign.core.csvfile import check_field_counts, check_regular_file, first_line_not_utf8, line_of_row, sniff
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, read_parquet_table, write_json
from lexalign.core.settings import from_section
from lexalign.core.snake import Rule
from lexalign.core.text import is_missing_expr, normalise_expr
from lexalign.norms.split import SPLITS, SplitSettings, split_cues

log = logging.getLogger(__name__)

# Canonical column -> accepted header spellings (matched case-insensitively); norms.columns overrides.
RAW_COLUMNS = {"cue": ("cue", "word"), "R1": ("r1",), "R2": ("r2",), "R3": ("r3",)}
STRENGTH_COLUMNS = {"cue": ("cue", "word"), "response": ("response",), "count": ("r123", "r1", "count")}
#: The SWOW-EN 2018 raw layout (R ``write.csv``: the first column is the unnamed row index).
SWOW_EN_HEADER = (
    "",
    "id",
    "participantID",
    "age",
    "gender",
    "nativeLanguage",
    "country",
    "education",
    "created_at",
    "cue",
    "R1",
    "R2",
    "R3",
)
#: The files of one ingest, in an output folder of the ``lexalign ingest`` command (the rule names its own).
OUTPUTS = ("associations.parquet", "stats.json")
#: The longest cue or response read (characters): a word or short phrase; a longer field is a broken file.
MAX_FIELD_CHARS = 1000
_COUNT_LIMIT = 2**63 - 1  # counts are Int64 end to end: a total above this could not be held
_PACKED_BITS = 64  # width of the integer that packs (cue, count, response) for sorting
_USE_CATEGORIES = hasattr(pl, "Categories")  # polars >= 1.32: one pass maps strings to codes


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class NormsSettings:
    """How to read one norms file: config ``languages.<lang>.norms`` without its ``path`` (the job's input)."""

    format: str = "auto"  # auto, raw or strength
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)  # canonical column -> the file's name
    filter: Mapping[str, list] = dataclasses.field(default_factory=dict)  # participant column -> accepted values

    @classmethod
    def from_config(cls, section: Mapping[str, Any], where: str = "norms") -> NormsSettings:
        return from_section(cls, section, where, ignore=("path",))

    @classmethod
    def of(cls, norms: NormsSettings | Mapping[str, Any]) -> NormsSettings:
        """A NormsSettings as it is, or from a norms mapping whose absent keys take their defaults (one
        that another stage records, a caller's partial settings); an unknown key still fails."""
        if isinstance(norms, cls):
            return norms
        return from_section(cls, {**dataclasses.asdict(cls()), **norms}, "norms", ignore=("path",))


@dataclasses.dataclass(frozen=True)
class IngestSettings:
    """What one ``ingest`` job reads of the config: its language's norms block and the split section."""

    norms: NormsSettings
    split: SplitSettings

    @classmethod
    def from_config(cls, norms: Mapping[str, Any], split: Mapping[str, Any], lang: str) -> IngestSettings:
        return cls(NormsSettings.from_config(norms, f"languages.{lang}.norms"), SplitSettings.from_config(split))


@dataclasses.dataclass(frozen=True)
class IngestJob:
    """One ``ingest`` job: a language's norms file in, ``results/ingest/{lang}/`` out."""

    norms_path: str
    associations_out: str
    stats_out: str
    settings: IngestSettings
    seed: int

    @classmethod
    def from_rule(cls, rule: Rule) -> IngestJob:
        lang = rule.wildcards["lang"]
        return cls(
            norms_path=rule.input["norms"],
            associations_out=rule.output["associations"],
            stats_out=rule.output["stats"],
            settings=IngestSettings.from_config(rule.params["norms"], rule.params["split"], lang),
            seed=rule.params["seed"],
        )


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


def _check_lengths(path: Path, separator: str, kept: pl.Expr, columns: list[str], book: _CodeBook) -> None:
    """Refuse a cue or response longer than MAX_FIELD_CHARS (checked on the distinct values), naming its line."""
    longest = book.values.str.len_chars().max()
    if longest is None or longest <= MAX_FIELD_CHARS:
        return
    long = pl.any_horizontal(pl.col(columns).str.len_chars() > MAX_FIELD_CHARS)
    first = _collect(_scan(path, separator).with_row_index("row").filter(kept & long).select("row").head(1), path)
    where = f"line {line_of_row(path, separator, int(first['row'][0]))}" if first.height else "a row"
    raise LexalignError(
        f"{path}: {where} has a cue or response longer than {MAX_FIELD_CHARS} characters (the longest: {longest}); "
        "a cue or response is a word or short phrase: is a quote left open or a column misread?"
    )


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
        return pl.DataFrame(schema={"cue": pl.String, "response": pl.String, "count": pl.Int64})
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
            "count": pl.Series(counts.astype(np.int64), dtype=pl.Int64),
        }
    )


def _raw_rows(path: Path, separator: str, cols: dict[str, str], filters: dict[str, list], stats: dict) -> tuple:
    kept = _kept_rows([cols[c] for c in RAW_COLUMNS], filters)
    wide = _collect(_scan(path, separator).filter(kept).select(pl.col(cols[c]).alias(c) for c in RAW_COLUMNS), path)
    stats["rows_after_filter"] = wide.height
    if wide.height == 0:
        raise LexalignError(f"{path}: no rows left after the participant filter {filters}")
    book = _CodeBook(wide, list(RAW_COLUMNS))
    _check_lengths(path, separator, kept, [cols[c] for c in RAW_COLUMNS], book)
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
    text = table["count"].str.strip_chars()
    counts = text.cast(pl.Int64, strict=False)
    too_big = table.filter(counts.is_null() & text.str.contains(r"^\+?\d+$"))
    if too_big.height:
        raise LexalignError(
            f"{path}: column {cols['count']!r} has a count of {too_big['count'][0]}, above 2**63-1; "
            "counts are numbers of responses"
        )
    bad = table.filter((counts.is_null() & table["count"].is_not_null()) | (counts < 0))
    if bad.height:
        raise LexalignError(
            f"{path}: column {cols['count']!r} has non-integer counts (found {bad['count'][0]!r}); "
            "counts are whole numbers >= 0"
        )
    if counts.cast(pl.Float64).sum() > _COUNT_LIMIT:
        raise LexalignError(
            f"{path}: the counts of column {cols['count']!r} add up to more than 2**63-1; "
            "counts are numbers of responses"
        )
    stats["pairs_with_zero_count_dropped"] = int((counts == 0).sum())
    table = table.with_columns(count=counts).filter(pl.col("count") > 0)
    stats["rows_after_filter"] = table.height
    book = _CodeBook(table, ["cue", "response"])
    _check_lengths(path, separator, kept, [cols["cue"], cols["response"]], book)
    cue = book.code[book.indices("cue")]
    _check_cues(path, separator, kept, cols["cue"], cue, book)
    index = book.indices("response")
    return cue, book.code[index], book.missing[index], table["count"].to_numpy().astype(np.uint64), book.words


def norms_format(path: Path, norms: NormsSettings | Mapping) -> tuple[str, str, list[str]]:
    """(format, separator, header) of a norms file: ``raw`` or ``strength``, as ``norms.format`` says or
    its header shows."""
    check_regular_file(path)
    separator, header = sniff(path)
    fmt = NormsSettings.of(norms).format
    if fmt == "auto":
        fmt = detect_format(header)
    if fmt not in ("raw", "strength"):
        raise LexalignError(
            f"{path}: neither a SWOW raw file (cue, R1, R2, R3) nor a strength file (cue, response, R123); "
            "set norms.columns"
        )
    return fmt, separator, header


def pooled_counts(path: str | os.PathLike, norms: NormsSettings | Mapping) -> tuple[pl.DataFrame, dict]:
    """Read one norms file and return (cue, response, count) rows plus the counting stats.

    ``norms``: a NormsSettings, or a norms mapping (keys left out take their defaults), e.g. the one the
    population stage records for its participant files."""
    path = Path(path)
    norms = NormsSettings.of(norms)
    fmt, separator, header = norms_format(path, norms)
    overrides = dict(norms.columns)
    unknown = sorted(set(overrides) - set(RAW_COLUMNS) - set(STRENGTH_COLUMNS))
    if unknown:
        raise LexalignError(
            f"norms.columns: unknown key(s) {', '.join(unknown)}; allowed: cue, R1, R2, R3, response, count"
        )
    filters = dict(norms.filter)
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


# --------------------------------------------------------------------------- the stage


def run(job: IngestJob) -> dict:
    """Run the ingest stage for one language; returns the stats written to ``job.stats_out``."""
    split = job.settings.split
    pooled, stats = pooled_counts(job.norms_path, job.settings.norms)
    runs = pooled["cue"].rle().struct.unnest()  # the table is sorted by cue: one run per cue
    assignment = split_cues(runs["value"].to_list(), split, job.seed)
    labels = pl.Series("split", [assignment[cue] for cue in runs["value"]])
    table = pooled.with_columns(labels.gather(np.repeat(np.arange(len(labels)), runs["len"].to_numpy())))
    stats["split_cues"] = {name: sum(1 for label in assignment.values() if label == name) for name in SPLITS}
    for name, n in stats["split_cues"].items():
        share = getattr(split, name)
        if share > 0 and n == 0:
            raise LexalignError(
                f"{job.norms_path}: its {len(assignment)} cue(s) leave the {name} split empty "
                f"(split.{name} is {share:g}); the norms need more cues"
            )
    stats["split_definition"] = split.definition
    check_no_leakage(table)
    stats["leakage_check"] = "passed: every cue is in exactly one split"
    with atomic_path(job.associations_out) as tmp:
        table.write_parquet(tmp, compression="lz4")
    write_json(job.stats_out, stats)
    log.info(
        "ingested %s: %d cues, %d response tokens, split %s",
        job.norms_path,
        stats["cues"],
        stats["response_tokens"],
        stats["split_cues"],
    )
    return stats


def ingest(
    norms_path: str | os.PathLike,
    norms: NormsSettings | Mapping,
    split: SplitSettings | Mapping,
    seed: int,
    associations_out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict:
    """:func:`run` for callers outside the workflow; ``norms`` and ``split`` may be mappings whose absent keys
    take their defaults (see :meth:`NormsSettings.of`, :meth:`SplitSettings.of`)."""
    settings = IngestSettings(NormsSettings.of(norms), SplitSettings.of(split))
    return run(IngestJob(str(norms_path), str(associations_out), str(stats_out), settings, seed))


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
