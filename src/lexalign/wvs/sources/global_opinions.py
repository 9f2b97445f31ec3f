"""GlobalOpinionQA rows as the tier-2 human source (``wvs.source.type: global_opinions``).

Rows carry ``question``, ``options`` (a Python list literal), ``selections`` (a
``defaultdict(<class 'list'>, {...})`` literal) and ``source``; the literals are parsed with
:func:`ast.literal_eval` only (never ``eval``). The WVS rows with both configured countries (``wvs.countries``,
as GlobalOpinionQA names them: United States, China, Germany ...) are used.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lexalign.config.countries import Country
from lexalign.core.csvfile import check_no_nul
from lexalign.core.errors import LexalignError
from lexalign.wvs.sources.official import BadRows, detect_separator, finish

# GlobalOpinionQA option labels that are not substantive answers (dropped before renormalising).
NON_SUBSTANTIVE = re.compile(
    r"^\s*(don'?t know|dk\b|dk/|refused|no answer|not asked|not applicable|missing|none of these\b.*refused)",
    re.IGNORECASE,
)

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
        raise LexalignError(f"{path}: " + ("is a folder, not a file" if path.is_dir() else "file not found"))
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        check_no_nul(path)
        if path.suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        return pl.read_csv(path, separator=detect_separator(path), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise LexalignError(f"{path}: cannot read as a table ({str(exc).splitlines()[0]})") from None


def humans_from_global_opinions(
    path: str | os.PathLike, catalog: list[dict], bad_rows: BadRows, countries: Sequence[Country]
) -> tuple[pl.DataFrame, dict]:
    """The two countries' answer shares from GlobalOpinionQA-style rows (WVS rows with both countries).

    An optional ``item_id`` column naming a catalog item (e.g. Q1) takes the Chinese text and the
    ordinal flag from the catalog when the option counts agree.
    """
    frame = _read_table(path)
    missing = [c for c in ("question", "options", "selections", "source") if c not in frame.columns]
    if missing:
        raise LexalignError(
            f"{path}: missing column(s) {', '.join(missing)}; expected GlobalOpinionQA rows "
            "(question, options, selections, source)"
        )
    by_id = {item["item_id"]: item for item in catalog}
    has_id = "item_id" in frame.columns
    rows, kept_other, seen = [], Counter(), set()
    names = {c.name: c.key for c in countries}
    both = " and ".join(names)
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
        seen.update(name for name in names if name in selections)
        if not all(name in selections for name in names):
            kept_other[f"WVS row without both {both}"] += 1
            continue
        keep = [i for i, label in enumerate(options) if not NON_SUBSTANTIVE.match(label)]
        if len(keep) < 2:
            bad_rows(index, f"fewer than two substantive options in {list(options)}", "too_few_options")
            continue
        dists, problem = {}, None
        for name, key in names.items():
            shares = selections[name]
            if not isinstance(shares, (list, tuple)) or len(shares) != len(options):
                given = len(shares) if isinstance(shares, (list, tuple)) else "no"
                problem = f"{name}: {given} shares for {len(options)} options"
                break
            if not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s >= 0 for s in shares
            ):
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
            bad_rows(
                index,
                f"item_id {item_id}: {len(labels)} substantive options, the catalog has {entry['n_options']}",
                "unknown_options",
            )
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
                **dists,
                **{f"n_{key}": None for key in dists},
            }
        )
    absent = [name for name in names if name not in seen]
    if not rows and absent:
        raise LexalignError(
            f"{path}: no WVS row has selections for {', '.join(absent)} (as GlobalOpinionQA names countries); "
            "change wvs.countries or the source file"
        )
    ids = Counter(row["item_id"] for row in rows)
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    if duplicated:
        raise LexalignError(f"{path}: item_id given to more than one row: {', '.join(duplicated)}")
    notes = {
        "rows": frame.height,
        "rows_kept": len(rows),
        "rows_not_used": dict(kept_other),
        "non_substantive_options": NON_SUBSTANTIVE.pattern,
    }
    return finish(rows, str(path), countries), notes
