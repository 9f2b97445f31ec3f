"""Tier 2 inputs: the WVS-7 item catalog and the US / China human answer distributions.

Two real sources give the human distributions:

- ``wvs_csv``: the official ``WVS_Cross-National_Wave_7_csv_v6_0`` respondent file, read lazily
  (only the country, weight and catalog item columns), weighted by ``W_WEIGHT``;
- ``global_opinions``: GlobalOpinionQA rows (question, options, selections, source) whose
  Python-literal strings are parsed with :func:`ast.literal_eval` (never ``eval``).

Both produce the same table (:data:`HUMANS_SCHEMA`), one row per item kept, plus notes on what was
dropped or skipped and why.
"""

from __future__ import annotations

import ast
import csv
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from lexalign.errors import LexalignError
from lexalign.io import atomic_path, read_parquet_table, write_json

log = logging.getLogger(__name__)

CATALOG = Path(__file__).parent / "resources" / "wvs_items.yaml"
REPO_DATA = Path("data") / "illustrative" / "wvs"
ILLUSTRATIVE_SOURCES = {
    "wvs_csv": REPO_DATA / "WVS_Cross-National_Wave_7_illustrative.csv",
    "global_opinions": REPO_DATA / "global_opinions_illustrative.csv",
}

# The two human populations every model is compared with: key -> (name used in config and
# GlobalOpinionQA, ISO alpha-3 code in B_COUNTRY_ALPHA).
COUNTRIES = {"us": ("United States", "USA"), "china": ("China", "CHN")}
COUNTRY_KEYS = {name: key for key, (name, _) in COUNTRIES.items()}

COUNTRY_COLUMN = "B_COUNTRY_ALPHA"
WEIGHT_COLUMN = "W_WEIGHT"
NOT_ASKED = -4

HUMANS_SCHEMA = {
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
    "us": pl.List(pl.Float64),
    "china": pl.List(pl.Float64),
    "n_us": pl.Int64,
    "n_china": pl.Int64,
    "tension": pl.Float64,
}

# GlobalOpinionQA option labels that are not substantive answers (dropped before renormalising).
NON_SUBSTANTIVE = re.compile(
    r"^\s*(don'?t know|dk\b|dk/|refused|no answer|not asked|not applicable|missing|none of these\b.*refused)",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------------------------------
# Catalog


def _expand_scale(scale: Any, scales: Mapping[str, Any], where: str) -> dict:
    """A scale (name or inline mapping) as {codes, en, zh, ordinal}."""
    if isinstance(scale, str):
        if scale not in scales:
            raise LexalignError(f"{where}: unknown scale {scale!r} (defined: {', '.join(sorted(scales))})")
        return _expand_scale(scales[scale], scales, f"{where} (scale {scale})")
    if not isinstance(scale, Mapping):
        raise LexalignError(f"{where}: a scale is a name or a mapping, got {type(scale).__name__}")
    if "range" in scale:
        lo, hi = scale["range"]
        codes = list(range(int(lo), int(hi) + 1))
        out = {"codes": codes, "ordinal": bool(scale.get("ordinal", True))}
        for lang in ("en", "zh"):
            ends = scale.get(f"ends_{lang}")
            if not (isinstance(ends, list) and len(ends) == 2):
                raise LexalignError(f"{where}: a range scale needs ends_{lang}: [low label, high label]")
            out[lang] = [str(ends[0])] + [""] * (len(codes) - 2) + [str(ends[1])]
        return out
    for key in ("codes", "en", "zh", "ordinal"):
        if key not in scale:
            raise LexalignError(f"{where}: scale has no {key!r} (an explicit scale needs codes, en, zh, ordinal)")
    codes = [int(c) for c in scale["codes"]]
    if len(set(codes)) != len(codes) or any(c < 0 for c in codes):
        raise LexalignError(f"{where}: codes must be distinct non-negative integers, got {codes}")
    for lang in ("en", "zh"):
        if len(scale[lang]) != len(codes):
            raise LexalignError(f"{where}: {len(scale[lang])} {lang} labels for {len(codes)} codes")
    return {"codes": codes, "en": [str(x) for x in scale["en"]], "zh": [str(x) for x in scale["zh"]], "ordinal": bool(scale["ordinal"])}


def load_catalog(path: str | os.PathLike | None = None) -> list[dict]:
    """The item catalog as a list of flat items (catalog order), validated.

    Each item: item_id, topic, question_en, question_zh, subject_en, subject_zh (the part that
    varies inside a group; None for stand-alone items), options_en, options_zh, codes, ordinal,
    n_options.
    """
    path = Path(path) if path else CATALOG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexalignError(f"{path}: catalog file not found") from None
    except yaml.YAMLError as exc:
        raise LexalignError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("groups"), list):
        raise LexalignError(f"{path}: expected a mapping with a 'groups' list")
    scales = data.get("scales") or {}
    items: list[dict] = []
    seen: set[str] = set()
    for g, group in enumerate(data["groups"]):
        topic = group.get("topic", f"group{g + 1}")
        stem = group.get("stem")
        for item_id, spec in (group.get("items") or {}).items():
            where = f"{path}: item {item_id}"
            if not re.fullmatch(r"Q\d+[A-Z_]*", str(item_id)):
                raise LexalignError(f"{where}: item ids are WVS variable names like Q1 or Q82_EU")
            if item_id in seen:
                raise LexalignError(f"{where}: duplicate item id")
            seen.add(item_id)
            if isinstance(spec, list):
                if len(spec) != 2:
                    raise LexalignError(f"{where}: expected [English text, Chinese text]")
                spec = {"en": spec[0], "zh": spec[1]}
            if not isinstance(spec, Mapping) or not spec.get("en") or not spec.get("zh"):
                raise LexalignError(f"{where}: needs English (en) and Chinese (zh) text")
            scale = _expand_scale(spec.get("scale", group.get("scale")), scales, where)
            if len(scale["codes"]) < 2:
                raise LexalignError(f"{where}: an item needs at least two options")
            text = {"en": str(spec["en"]), "zh": str(spec["zh"])}
            if stem:
                question = {lang: stem[lang].replace("{x}", text[lang]) for lang in ("en", "zh")}
                subject = text
            else:
                question, subject = text, {"en": None, "zh": None}
            items.append(
                {
                    "item_id": str(item_id),
                    "topic": topic,
                    "question_en": question["en"],
                    "question_zh": question["zh"],
                    "subject_en": subject["en"],
                    "subject_zh": subject["zh"],
                    "options_en": scale["en"],
                    "options_zh": scale["zh"],
                    "codes": scale["codes"],
                    "ordinal": bool(spec.get("ordinal", scale["ordinal"])),
                    "n_options": len(scale["codes"]),
                }
            )
    if not items:
        raise LexalignError(f"{path}: the catalog has no items")
    return items


# --------------------------------------------------------------------------------------------------
# Shared helpers


def source_path(source: Mapping[str, Any]) -> str:
    """The configured source file, or the shipped illustrative file for the source type."""
    return str(source.get("path") or ILLUSTRATIVE_SOURCES[source.get("type", "wvs_csv")])


def tension(us: list[float], china: list[float]) -> float:
    """How far apart the two human distributions are: 0.5 * JS distance (base 2) + 0.5 * EMD/(N-1)."""
    from lexalign.wvs_metrics import tension_distance

    return tension_distance(us, china)


class BadRows:
    """Bad input rows: raise at once (``error``) or skip them, counting reasons and keeping examples."""

    def __init__(self, path: str | os.PathLike, policy: str = "skip", examples: int = 10):
        if policy not in ("skip", "error"):
            raise LexalignError(f"config wvs.bad_rows: {policy!r} is not one of ['skip', 'error']")
        self.path, self.policy, self.max_examples = str(path), policy, examples
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def __call__(self, row: int | str, reason: str, kind: str) -> None:
        self.many(kind, 1, [(row, reason)])

    def many(self, kind: str, total: int, examples: list[tuple[int | str, str]]) -> None:
        """``total`` bad rows of one kind, of which ``examples`` are (row, reason) pairs."""
        if total == 0:
            return
        messages = [f"{self.path}: row {row}: {reason}" for row, reason in examples]
        if self.policy == "error":
            raise LexalignError(messages[0] if messages else f"{self.path}: {total} bad rows ({kind})")
        self.counts[kind] += total
        self.examples.extend(messages[: max(0, self.max_examples - len(self.examples))])

    def summary(self) -> dict:
        return {"policy": self.policy, "skipped": dict(self.counts), "examples": self.examples}


def _finish(rows: list[dict], path: str) -> pl.DataFrame:
    if not rows:
        raise LexalignError(f"{path}: no item has answers for both United States and China")
    for row in rows:
        row["tension"] = tension(row["us"], row["china"])
    return pl.DataFrame(rows, schema=HUMANS_SCHEMA)


# --------------------------------------------------------------------------------------------------
# Source 1: the official WVS-7 respondent CSV


def detect_separator(path: str | os.PathLike) -> str:
    """`,` or `;`, whichever the header line uses (WVS releases have shipped both)."""
    try:
        with open(path, "rb") as handle:
            header = handle.readline().decode("utf-8-sig", errors="replace")
    except FileNotFoundError:
        raise LexalignError(f"{path}: file not found") from None
    if not header.strip():
        raise LexalignError(f"{path}: empty file (expected a CSV header line)")
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=counts.get)
    if counts[sep] == 0:
        raise LexalignError(f"{path}: header has no ',' or ';' separator; expected the WVS-7 CSV")
    return sep


def _header_map(path: str | os.PathLike, sep: str) -> dict[str, str]:
    """Normalised column name -> name in the file (case-insensitive; 'Q1: Important...' -> Q1)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        names = next(csv.reader([handle.readline()], delimiter=sep))
    mapping: dict[str, str] = {}
    for name in names:
        key = name.split(":", 1)[0].strip().strip('"').upper()
        mapping.setdefault(key, name)
    return mapping


def humans_from_wvs_csv(path: str | os.PathLike, catalog: list[dict], bad_rows: BadRows) -> tuple[pl.DataFrame, dict]:
    """US and China weighted answer shares per catalog item from the WVS-7 respondent CSV."""
    sep = detect_separator(path)
    header = _header_map(path, sep)
    for required in (COUNTRY_COLUMN, WEIGHT_COLUMN):
        if required not in header:
            raise LexalignError(f"{path}: missing column {required} (expected the WVS-7 cross-national CSV)")
    present = [item for item in catalog if item["item_id"].upper() in header]
    absent = [item["item_id"] for item in catalog if item["item_id"].upper() not in header]
    if not present:
        raise LexalignError(f"{path}: none of the {len(catalog)} catalog items (Q1 ... Q290) is a column of this file")
    alpha = {code: key for key, (_, code) in COUNTRIES.items()}
    item_cols = {header[item["item_id"].upper()]: item["item_id"] for item in present}

    lazy = (
        pl.scan_csv(path, separator=sep, infer_schema=False, row_index_name="_row", row_index_offset=1)
        .select("_row", pl.col(header[COUNTRY_COLUMN]).alias("country"), pl.col(header[WEIGHT_COLUMN]).alias("weight"), *item_cols)
        .with_columns(pl.col("country").str.strip_chars().str.to_uppercase())
        .filter(pl.col("country").is_in(list(alpha)))
        .with_columns(pl.col("weight").str.strip_chars().cast(pl.Float64, strict=False).alias("weight_value"))
    )
    # Respondents whose weight is unusable are bad rows (reported, or fatal with bad_rows=error).
    frame = lazy.collect(engine="streaming")
    usable = pl.col("weight_value").is_not_null() & pl.col("weight_value").is_not_nan() & (pl.col("weight_value") >= 0)
    bad_weight = frame.filter(~usable)
    bad_rows.many(
        "bad_weight",
        bad_weight.height,
        [(row, f"{WEIGHT_COLUMN} {weight!r} is not a non-negative number; respondent skipped")
         for row, weight in bad_weight.select("_row", "weight").head(bad_rows.max_examples).iter_rows()],
    )
    frame = frame.filter(usable)

    long = (
        frame.lazy()
        .unpivot(index=["_row", "country", "weight_value"], on=list(item_cols), variable_name="column", value_name="raw")
        .with_columns(
            pl.col("column").replace_strict(item_cols, return_dtype=pl.String).alias("item_id"),
            pl.col("raw").str.strip_chars().cast(pl.Float64, strict=False).alias("value"),
        )
    )
    # Non-numeric answer cells: skipped and counted (or fatal), never silently turned into missing.
    non_numeric = long.filter(pl.col("raw").is_not_null() & (pl.col("raw").str.strip_chars() != "") & pl.col("value").is_null())
    non_numeric = non_numeric.select("_row", "column", "raw").sort("_row").collect()
    bad_rows.many(
        "non_numeric_answer",
        non_numeric.height,
        [(row, f"column {column}: {raw!r} is not a numeric answer code; answer skipped")
         for row, column, raw in non_numeric.head(bad_rows.max_examples).iter_rows()],
    )

    counts = (
        long.filter(pl.col("value").is_not_null())
        .with_columns(pl.col("value").round(0).cast(pl.Int64).alias("code"))
        .group_by("item_id", "country", "code")
        .agg(pl.len().alias("n"), pl.col("weight_value").sum().alias("w"))
        .collect(engine="streaming")
    )
    table: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    for item_id, country, code, n, w in counts.iter_rows():
        table.setdefault((item_id, alpha[country]), {})[code] = (n, w)

    rows, dropped, unexpected = [], [], {}
    for item in present:
        item_id, valid = item["item_id"], item["codes"]
        dists, ns, reason = {}, {}, None
        for key, (name, code3) in COUNTRIES.items():
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
                if answered and not_asked == answered:
                    reason = f"not asked in {code3} (all {NOT_ASKED})"
                elif answered:
                    reason = f"no valid answer in {code3} ({answered} respondents, all missing codes or codes outside {valid})"
                else:
                    reason = f"no {code3} respondents in the file"
                break
            dists[key] = [w / total for w in weights]
            ns[key] = n_valid
        if reason:
            dropped.append({"item_id": item_id, "reason": reason})
            continue
        rows.append({**item, "source": "wvs_csv", "us": dists["us"], "china": dists["china"], "n_us": ns["us"], "n_china": ns["china"]})
    respondents = frame.group_by("country").len().rows()
    notes = {
        "separator": sep,
        "respondents": {country: n for country, n in sorted(respondents)},
        "weight": WEIGHT_COLUMN,
        "missing_codes": "negative codes (-1 don't know, -2 no answer, -3 not applicable, -4 not asked, -5 missing) excluded",
        "items_absent_from_file": absent,
        "items_dropped": dropped,
        "unexpected_codes": unexpected,
    }
    for entry in dropped:
        log.info("item %s dropped: %s", entry["item_id"], entry["reason"])
    return _finish(rows, str(path)), notes


# --------------------------------------------------------------------------------------------------
# Source 2: GlobalOpinionQA rows

_DEFAULTDICT = re.compile(r"^\s*defaultdict\(\s*<class\s+'[A-Za-z_]+'>\s*,\s*(?P<body>.*)\)\s*$", re.DOTALL)


def parse_literal(text: Any, what: str) -> Any:
    """A Python literal stored as a string (``defaultdict(<class 'list'>, {...})`` unwrapped first).

    Uses :func:`ast.literal_eval` only; raises ValueError with a short reason when it does not parse.
    """
    if not isinstance(text, str):
        if isinstance(text, (list, dict)):
            return text
        raise ValueError(f"{what} is {type(text).__name__}, expected a string")
    match = _DEFAULTDICT.match(text)
    body = match.group("body") if match else text
    try:
        return ast.literal_eval(body.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{what} does not parse as a Python literal ({type(exc).__name__})") from None


def _read_table(path: str | os.PathLike) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise LexalignError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        if path.suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        return pl.read_csv(path, separator=detect_separator(path), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise LexalignError(f"{path}: cannot read as a table ({str(exc).splitlines()[0]})") from None


def humans_from_global_opinions(path: str | os.PathLike, catalog: list[dict], bad_rows: BadRows) -> tuple[pl.DataFrame, dict]:
    """US and China answer shares from GlobalOpinionQA-style rows (WVS rows with both countries).

    An optional ``item_id`` column naming a catalog item (e.g. Q1) takes the Chinese text and the
    ordinal flag from the catalog when the option counts agree.
    """
    frame = _read_table(path)
    missing = [c for c in ("question", "options", "selections", "source") if c not in frame.columns]
    if missing:
        raise LexalignError(f"{path}: missing column(s) {', '.join(missing)}; expected GlobalOpinionQA rows (question, options, selections, source)")
    by_id = {item["item_id"]: item for item in catalog}
    has_id = "item_id" in frame.columns
    rows, kept_other = [], Counter()
    names = {name: key for key, (name, _) in COUNTRIES.items()}
    for index, record in enumerate(frame.iter_rows(named=True), start=1):
        source = str(record.get("source") or "").strip()
        if source.upper() != "WVS":
            kept_other[f"source {source or 'empty'}"] += 1
            continue
        question = str(record.get("question") or "").strip()
        if not question:
            bad_rows(index, "empty question", "empty_question")
            continue
        try:
            options = parse_literal(record["options"], "options")
            selections = parse_literal(record["selections"], "selections")
        except ValueError as exc:
            bad_rows(index, str(exc), "unparsable_literal")
            continue
        if not (isinstance(options, (list, tuple)) and options and all(isinstance(o, str) for o in options)):
            bad_rows(index, "options is not a non-empty list of strings", "bad_options")
            continue
        if not isinstance(selections, Mapping):
            bad_rows(index, "selections is not a mapping of country -> shares", "bad_selections")
            continue
        if not all(name in selections for name in names):
            kept_other["WVS row without both United States and China"] += 1
            continue
        keep = [i for i, label in enumerate(options) if not NON_SUBSTANTIVE.match(label)]
        if len(keep) < 2:
            bad_rows(index, f"fewer than two substantive options in {list(options)}", "too_few_options")
            continue
        dists, problem = {}, None
        for name, key in names.items():
            shares = selections[name]
            if not isinstance(shares, (list, tuple)) or len(shares) != len(options):
                problem = f"{name}: {len(shares) if isinstance(shares, (list, tuple)) else 'no'} shares for {len(options)} options"
                break
            if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s >= 0 for s in shares):
                problem = f"{name}: shares must be non-negative numbers"
                break
            kept = [float(shares[i]) for i in keep]
            if sum(kept) <= 0:
                problem = f"{name}: empty distribution (no share on any substantive option)"
                break
            dists[key] = [s / sum(kept) for s in kept]
        if problem:
            bad_rows(index, problem, "bad_distribution")
            continue
        labels = [str(options[i]).strip() for i in keep]
        item_id = str(record.get("item_id") or "").strip() if has_id else ""
        entry = by_id.get(item_id)
        if item_id and entry is None:
            bad_rows(index, f"item_id {item_id!r} is not in the catalog", "unknown_item_id")
            continue
        if entry is not None and entry["n_options"] != len(labels):
            bad_rows(index, f"item_id {item_id}: {len(labels)} substantive options, the catalog has {entry['n_options']}", "unknown_options")
            continue
        rows.append(
            {
                "item_id": item_id or f"GOQA{index}",
                "topic": entry["topic"] if entry else "global_opinions",
                "source": "global_opinions",
                "question_en": question,
                "question_zh": entry["question_zh"] if entry else None,
                "subject_en": None,
                "subject_zh": None,
                "options_en": labels,
                "options_zh": entry["options_zh"] if entry else None,
                "codes": entry["codes"] if entry else list(range(1, len(labels) + 1)),
                # GlobalOpinionQA carries no ordinal flag; EMD over positions is computed for every
                # item (as in the study), so unmatched rows are taken as ordinal.
                "ordinal": entry["ordinal"] if entry else True,
                "n_options": len(labels),
                "us": dists["us"],
                "china": dists["china"],
                "n_us": None,
                "n_china": None,
            }
        )
    ids = Counter(row["item_id"] for row in rows)
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    if duplicated:
        raise LexalignError(f"{path}: item_id given to more than one row: {', '.join(duplicated)}")
    notes = {"rows": frame.height, "rows_kept": len(rows), "rows_not_used": dict(kept_other), "non_substantive_options": NON_SUBSTANTIVE.pattern}
    return _finish(rows, str(path)), notes


# --------------------------------------------------------------------------------------------------
# The wvs_humans rule

READERS: dict[str, Callable[[str | os.PathLike, list[dict], BadRows], tuple[pl.DataFrame, dict]]] = {
    "wvs_csv": humans_from_wvs_csv,
    "global_opinions": humans_from_global_opinions,
}


def build_humans(
    source: Mapping[str, Any],
    humans_out: str | os.PathLike,
    notes_out: str | os.PathLike,
    catalog: str | os.PathLike | None = None,
    bad_rows: str = "skip",
) -> pl.DataFrame:
    """Write the human distributions table (Parquet) and its notes (JSON) for the configured source."""
    kind = source.get("type", "wvs_csv")
    if kind not in READERS:
        raise LexalignError(f"config wvs.source.type: {kind!r} is not one of {sorted(READERS)}")
    path = source_path(source)
    items = load_catalog(catalog)
    collector = BadRows(path, bad_rows)
    humans, notes = READERS[kind](path, items, collector)
    with atomic_path(humans_out) as tmp:
        humans.write_parquet(tmp)
    write_json(
        notes_out,
        {
            "source": {"type": kind, "path": path},
            "catalog": str(catalog or CATALOG.name),
            "catalog_items": len(items),
            "items": humans.height,
            "by_option_count": dict(sorted(Counter(humans["n_options"].to_list()).items())),
            "tension": "0.5 * Jensen-Shannon distance (base 2) + 0.5 * EMD / (N - 1), US vs China",
            **notes,
            "bad_rows": collector.summary(),
        },
    )
    log.info("%s: %d items with US and China distributions (%d catalog items)", path, humans.height, len(items))
    return humans


def read_humans(path: str | os.PathLike) -> pl.DataFrame:
    """Read the wvs_humans table, checking its columns."""
    return read_parquet_table(path, list(HUMANS_SCHEMA), "the wvs_humans table")
