"""The ``wvs_humans`` rule: the human answer distributions table every ``wvs`` job compares with.

:func:`build_humans` reads the configured source (:mod:`lexalign.wvs_sources`) for the catalog items
(:mod:`lexalign.wvs_catalog`) and writes ``humans.parquet`` (:data:`HUMANS_SCHEMA`, one row per item)
and ``humans.json`` (what was dropped or skipped, and why); :func:`read_humans` reads it back.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from lexalign.errors import LexalignError
from lexalign.io import atomic_path, read_parquet_table, write_json
from lexalign.wvs_catalog import CATALOG, load_catalog, source_path
from lexalign.wvs_global_opinions import humans_from_global_opinions
from lexalign.wvs_metrics import definitions
from lexalign.wvs_sources import HUMANS_SCHEMA, BadRows, humans_from_wvs_csv

log = logging.getLogger(__name__)


READERS: dict[str, Callable[[str | os.PathLike, list[dict], BadRows], tuple[pl.DataFrame, dict]]] = {
    "wvs_csv": humans_from_wvs_csv,
    "global_opinions": humans_from_global_opinions,
}


def build_humans(
    source: Mapping[str, Any],
    humans_out: str | os.PathLike,
    notes_out: str | os.PathLike,
    *,
    catalog: str | os.PathLike | None,
    bad_rows: str,
) -> pl.DataFrame:
    """Write the human distributions table (Parquet) and its notes (JSON) for the configured source.

    ``source``, ``catalog`` (None: the built-in one) and ``bad_rows`` are the ``wvs`` config keys.
    """
    kind = source["type"]
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
            "tension": definitions(0.0)["distance"] + ", US vs China",
            "tension_study": definitions(0.0, "study")["distance"],
            **notes,
            "bad_rows": collector.summary(),
        },
    )
    log.info("%s: %d items with US and China distributions (%d catalog items)", path, humans.height, len(items))
    return humans


def read_humans(path: str | os.PathLike) -> pl.DataFrame:
    """Read the wvs_humans table, checking its columns."""
    return read_parquet_table(path, list(HUMANS_SCHEMA), "the wvs_humans table")
