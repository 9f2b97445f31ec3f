"""``lexalign score-associations``: score anyone's association lists (a file of model outputs) against
human norms, without Snakemake and without a GPU.

The scores file has the shape of the ``lexical`` rule's scores.json (schema_version 2): the corrected
numbers at the top level and the study's definitions in its ``study`` block; ``--definitions`` picks
which one is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from lexalign.core.errors import LexalignError
from lexalign.core.io import check_output, check_replaceable, read_parquet_table, record_written, write_json
from lexalign.core.text import normalise_expr, normalise_text
from lexalign.lexical import evaluate as lexical
from lexalign.lexical.parse import parse_associations

DEFAULT_K = (5, 10, 20, 30, 40, 50)
MAX_BOOTSTRAP = 100000  # the schema's lexical.bootstrap_samples maximum: each CI holds one mean per resample
SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet")


def read_generations(
    path: str | os.PathLike,
    lang: str,
    columns: Mapping[str, str] | None = None,
    where: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """A generations file (CSV/TSV, JSONL, JSON, Parquet) with ``cue`` and ``raw`` or ``parsed``,
    as one row per normalised cue with its parsed list.

    ``columns`` names other columns for the roles ``cue``, ``raw``, ``parsed`` (e.g. the study's
    released outputs: ``{"cue": "Cue Word", "parsed": "Parsed Associated Words"}``; naming ``parsed``
    alone ignores any ``raw`` column); ``where`` keeps the rows whose column equals a value (one model
    and prompt type of a file that holds several). A ``parsed`` text is an already parsed list: it is
    split at commas (, or ，) and normalised, not parsed again."""
    path = Path(path)
    table = _select_rows(_read_table(path), where or {}, path)
    columns = _role_columns(table, dict(columns or {}), path)
    if "cue" not in columns or not ({"raw", "parsed"} & set(columns)):
        found = ", ".join(table.columns) or "none"
        raise LexalignError(f"{path}: generations need a 'cue' column and a 'raw' or 'parsed' column (found: {found})")
    cues = _text_column(table, columns["cue"], path)
    empty = [i for i, cue in enumerate(cues) if cue is None or not normalise_text(cue)]
    if empty:
        raise LexalignError(f"{path}: {len(empty)} row(s) have an empty cue (first at data row {empty[0] + 1})")
    cue_list = [normalise_text(cue) for cue in cues]
    finished = _booleans(table[columns["finished"]]) if "finished" in columns else [True] * table.height
    prompts = _prompt_texts(table[columns["prompt"]]) if "prompt" in columns else [[]] * table.height
    raw = _text_column(table, columns["raw"], path) if "raw" in columns else [None] * table.height
    parsed_column = table[columns["parsed"]] if "parsed" in columns else pl.Series([None] * table.height)
    if isinstance(parsed_column.dtype, pl.List):
        parsed_values = parsed_column.cast(pl.List(pl.String)).to_list()
    elif "parsed" in columns:
        parsed_values = _text_column(table, columns["parsed"], path)
    else:
        parsed_values = [None] * table.height
    parsed = []
    for row, (text, given, cue, done, echo) in enumerate(zip(raw, parsed_values, cue_list, finished, prompts), 1):
        if text is not None:
            parsed.append(parse_associations(text, lang, cue=cue, truncated=done is False, echo=echo))
        elif isinstance(given, list):
            parsed.append(_clean_list(given, cue))
        elif given is not None:
            parsed.append(_clean_list(re.split(r"\s*[,，]\s*", given), cue))
        else:
            raise LexalignError(
                f"{path}: data row {row} (cue {cue!r}) has neither a 'raw' text nor a 'parsed' list; "
                "give the model's text (an empty string for an empty answer) or its word list"
            )
    frame = pl.DataFrame({"cue": cue_list, "parsed": parsed}, schema={"cue": pl.String, "parsed": pl.List(pl.String)})
    duplicated = frame.filter(pl.col("cue").is_duplicated())["cue"].unique().sort().to_list()
    if duplicated:
        raise LexalignError(f"{path}: cue {duplicated[0]!r} appears more than once; give one generation per cue")
    return frame


def _role_columns(table: pl.DataFrame, named: dict[str, str], path: Path) -> dict[str, str]:
    """Role (cue, raw, parsed, finished, prompt) -> column name, case-insensitively; named ones first."""
    by_lower = {name.strip().lower(): name for name in table.columns}
    roles = {role: by_lower[role] for role in ("cue", "raw", "parsed", "finished", "prompt") if role in by_lower}
    if "parsed" in named and "raw" not in named:
        roles.pop("raw", None)
    for role, name in named.items():
        found = name if name in table.columns else by_lower.get(name.strip().lower())
        if found is None:
            raise LexalignError(f"{path}: no column {name!r} for the {role} (columns: {', '.join(table.columns)})")
        roles[role] = found
    return roles


def _select_rows(table: pl.DataFrame, where: Mapping[str, str], path: Path) -> pl.DataFrame:
    for name, value in where.items():
        if name not in table.columns:
            raise LexalignError(
                f"{path}: --where {name}={value}: no column {name!r} (columns: {', '.join(table.columns)})"
            )
        table = table.filter(pl.col(name).cast(pl.String, strict=False) == value)
        if table.height == 0:
            raise LexalignError(f"{path}: --where {name}={value}: no row has this value")
    return table


def _text_column(table: pl.DataFrame, name: str, path: Path) -> list[str | None]:
    """A column that must hold text (or nulls): numbers, lists or records are an error, never cast."""
    column = table[name]
    if column.dtype in (pl.String, pl.Null):
        return column.cast(pl.String).to_list()
    raise LexalignError(f"{path}: column {name!r} must hold text, found {column.dtype} values; quote them as strings")


def _prompt_texts(column: pl.Series) -> list[list[str]]:
    """The prompt column of a generations file: chat messages (as the rule writes them) or plain text."""
    if isinstance(column.dtype, pl.List) and isinstance(column.dtype.inner, pl.Struct):
        return [lexical.message_texts(messages) for messages in column.to_list()]
    return [[text] if text else [] for text in column.cast(pl.String, strict=False).to_list()]


def _booleans(column: pl.Series) -> list[bool | None]:
    """A ``finished`` column as booleans, from Parquet/JSON booleans or CSV text ("true", "False", "1")."""
    if column.dtype == pl.Boolean:
        return column.to_list()
    text = column.cast(pl.String, strict=False).str.strip_chars().str.to_lowercase()
    mapping = {"true": True, "1": True, "false": False, "0": False}
    return text.replace_strict(mapping, default=None, return_dtype=pl.Boolean).to_list()


def _clean_list(words: Iterable[str | None], cue: str) -> list[str]:
    cleaned = (normalise_text(w) for w in words if w)
    return list(dict.fromkeys(w for w in cleaned if w and w != cue))


def _json_records(path: Path, lines: bool) -> pl.DataFrame:
    """JSON (a list of records) or JSON Lines (one record per line), read with the standard library so
    that a value's type is checked, never coerced."""
    text = path.read_text(encoding="utf-8-sig")
    if lines:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LexalignError(f"{path}: cannot read as jsonl (line {number}: {exc.msg})") from None
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LexalignError(f"{path}: cannot read as json (line {exc.lineno}: {exc.msg})") from None
        if isinstance(records, dict):
            raise LexalignError(
                f'{path}: JSON must be a list of records like [{{"cue": ..., "raw": ...}}, ...], '
                "not a mapping of columns; write one object per generation"
            )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise LexalignError(f'{path}: expected one JSON object per generation, e.g. {{"cue": ..., "raw": ...}}')
    for number, record in enumerate(records, 1):
        for key in ("cue", "raw"):
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                raise LexalignError(f"{path}: record {number}: {key!r} must be a string, got {type(value).__name__}")
        parsed = record.get("parsed")
        if (
            parsed is not None
            and not isinstance(parsed, str)
            and not (isinstance(parsed, list) and all(isinstance(w, str) or w is None for w in parsed))
        ):
            raise LexalignError(f"{path}: record {number}: 'parsed' must be a list of strings or a string")
    if not records:
        return pl.DataFrame()
    names = list(dict.fromkeys(key for record in records for key in record))
    data = {name: [record.get(name) for record in records] for name in names}
    try:
        return pl.DataFrame(data, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise LexalignError(f"{path}: cannot read as json ({str(exc).splitlines()[0]})") from None


def _read_table(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LexalignError(
            f"{path}: unknown file type {suffix or '(none)'}; use .csv, .tsv, .jsonl, .json or .parquet"
        )
    if path.is_dir():
        raise LexalignError(f"{path}: is a directory, not a generations file")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return _json_records(path, lines=suffix != ".json")
        with open(path, encoding="utf-8-sig") as handle:
            header = handle.readline()
        separator = "\t" if suffix == ".tsv" or header.count("\t") > header.count(",") else ","
        table = pl.read_csv(path, separator=separator, infer_schema=False, encoding="utf8-lossy")
        return table.with_columns(pl.all().fill_null(""))  # CSV has no null: an empty field is an empty text
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise LexalignError(f"{path}: cannot read as {suffix.lstrip('.')} ({str(exc).splitlines()[0]})") from None


def read_norms(path: str | os.PathLike) -> pl.DataFrame:
    """Human responses as ``cue, response, count``: an ingested associations Parquet, or a SWOW
    pooled strength file / raw participant file read and cleaned exactly like the ingest stage."""
    from lexalign.norms.ingest import pooled_counts

    path = Path(path)
    if path.suffix.lower() == ".parquet":
        table = read_parquet_table(path, ("cue", "response", "count"), "an ingested associations table")
        return (
            table.select(
                normalise_expr("cue").alias("cue"),
                normalise_expr("response").alias("response"),
                pl.col("count").cast(pl.Int64),
            )
            .filter((pl.col("response") != "") & (pl.col("response") != pl.col("cue")))
            .group_by("cue", "response")
            .agg(pl.col("count").sum())
        )
    pooled, _ = pooled_counts(path, {"format": "auto"})
    return pooled.select("cue", "response", pl.col("count").cast(pl.Int64))


def _known_languages() -> list[str]:
    from lexalign.norms.templates import builtin_prompts

    return sorted(builtin_prompts())


def main(argv: list[str] | None = None) -> int:
    """``lexalign score-associations``: score anyone's association lists against norms."""
    parser = argparse.ArgumentParser(
        prog="lexalign score-associations",
        description="Score generated association lists against human norms: P@k, Spearman rank agreement, "
        "bootstrap CIs over cues, and the psycholinguistic profile where norms are available. The JSON holds "
        "lexalign's corrected definitions and, in its 'study' block, the study's.",
    )
    parser.add_argument(
        "--generations",
        required=True,
        metavar="FILE",
        help="CSV/TSV/JSONL/JSON/Parquet with a 'cue' column and a 'raw' (model text) or 'parsed' (word list) column",
    )
    parser.add_argument(
        "--norms",
        required=True,
        metavar="FILE",
        help="ingested associations.parquet, a SWOW pooled strength file (cue, response, R123, N, "
        "R123.Strength), or a raw SWOW participant file (all participants: no culture filter)",
    )
    parser.add_argument("--lang", required=True, help="prompt language of the generations (en, zh)")
    for role, example in (
        ("cue", "Cue Word"),
        ("raw", "Generated Associated Words"),
        ("parsed", "Parsed Associated Words"),
    ):
        parser.add_argument(
            f"--{role}-column", metavar="NAME", help=f"the column holding the {role} (e.g. {example!r})"
        )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep only rows whose COLUMN equals VALUE (repeatable; e.g. one model of a file of several)",
    )
    parser.add_argument("--out", metavar="FILE", help="JSON to write (default: <generations>.scores.json)")
    parser.add_argument("--force", action="store_true", help="replace --out even if lexalign did not write it")
    parser.add_argument(
        "--k",
        type=int,
        nargs="+",
        default=list(DEFAULT_K),
        metavar="K",
        help="P@k cut-offs (default: 5 10 20 30 40 50)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help=f"bootstrap resamples for the CIs (default 1000, at most {MAX_BOOTSTRAP})",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--definitions",
        choices=lexical.DEFINITIONS,
        default="corrected",
        help="which definitions to print: corrected (lexalign's) or study (the study's code, "
        "to regenerate its tier-1 table); the JSON always holds both",
    )
    parser.add_argument(
        "--profile-words",
        type=int,
        default=10,
        metavar="N",
        help="first model words and human top words per cue in the profile (default 10)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the psycholinguistic profile")
    args = parser.parse_args(argv)
    for flag, value, low in (
        ("--bootstrap", args.bootstrap, 0),
        ("--seed", args.seed, 0),
        ("--profile-words", args.profile_words, 1),
    ):
        if value < low:
            raise LexalignError(f"{flag}: must be {low} or more, got {value}")
    if args.bootstrap > MAX_BOOTSTRAP:
        raise LexalignError(
            f"--bootstrap: at most {MAX_BOOTSTRAP} resamples (as lexical.bootstrap_samples), got {args.bootstrap}"
        )
    if args.seed >= 2**32:
        raise LexalignError(f"--seed: must be below 2**32, got {args.seed}")
    if any(k < 1 for k in args.k):
        raise LexalignError(f"--k: every cut-off must be at least 1, got {' '.join(map(str, args.k))}")
    known = _known_languages()
    if args.lang not in known:
        raise LexalignError(f"--lang {args.lang!r}: unknown prompt language (known: {', '.join(known)})")
    generations_path, norms_path = Path(args.generations), Path(args.norms)
    out = Path(args.out) if args.out else generations_path.with_suffix(".scores.json")
    check_output(out, (generations_path, norms_path), kind="file", what="--out")
    check_replaceable(out, args.force, what="--out")
    from lexalign.lexical.profile import profile

    where = {}
    for item in args.where:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LexalignError(f"--where {item!r}: expected COLUMN=VALUE")
        where[name] = value
    named = {
        role: getattr(args, f"{role}_column") for role in ("cue", "raw", "parsed") if getattr(args, f"{role}_column")
    }
    generations = read_generations(generations_path, args.lang, named, where)
    human = read_norms(norms_path).join(generations.select("cue"), on="cue", how="semi")
    if human.height == 0:
        raise LexalignError(
            f"{norms_path}: none of the {generations.height} cues in {generations_path} has responses in these norms"
        )
    per_cue, summary = lexical.score_table(generations, human, args.k, args.bootstrap, args.seed)
    scores = {
        "schema_version": lexical.SCHEMA_VERSION,
        "generations": str(generations_path),
        "norms": str(norms_path),
        "prompt_language": args.lang,
        **summary,
    }
    if not args.no_profile:
        psycho, _ = profile(
            generations,
            human,
            args.lang,
            {},
            n_words=args.profile_words,
            bootstrap_samples=args.bootstrap,
            seed=args.seed,
        )
        scores["psycholinguistic"] = psycho
    scores["notes"] = lexical.notes_for(summary, scores.get("psycholinguistic", {}), generations)
    scores["per_cue"] = [
        {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
        for row in per_cue.to_dicts()
    ]
    write_json(out, scores)
    record_written([out])
    print(lexical.format_scores(scores, args.definitions))
    for note in scores["notes"] + (scores["study"]["notes"] if args.definitions == "study" else []):
        print(f"note: {note}")
    print(f"wrote {out}")
    return 0
