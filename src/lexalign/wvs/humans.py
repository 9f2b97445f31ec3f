"""The ``wvs_humans`` rule: the human answer distributions table every ``wvs`` job compares with.

:func:`run` (the rule's :class:`HumansJob`, settings :class:`lexalign.wvs.settings.HumansSettings`) calls
:func:`build_humans`: it reads the configured source (:mod:`lexalign.wvs.sources.official`) for the catalog
items (:mod:`lexalign.wvs.sources.catalog`) and the two configured countries (``wvs.countries``,
:mod:`lexalign.config.countries`) and writes ``humans.parquet``
(:func:`lexalign.wvs.sources.official.humans_schema`, one row per item) and ``humans.json`` (the countries,
what was dropped or skipped, and why); :func:`read_humans` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from lexalign.config.countries import Country, pair
from lexalign.config.derive import wvs_source_path
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, file_signature, read_parquet_table, write_json
from lexalign.core.snake import Rule
from lexalign.wvs.metrics import definitions
from lexalign.wvs.settings import HumansSettings, WvsSource
from lexalign.wvs.sources.catalog import CATALOG, load_catalog
from lexalign.wvs.sources.global_opinions import humans_from_global_opinions
from lexalign.wvs.sources.official import ITEM_SCHEMA, TENSION_SCHEMA, BadRows, humans_countries, humans_from_wvs_csv

log = logging.getLogger(__name__)


READERS: dict[str, Callable[[str | os.PathLike, list[dict], BadRows, Sequence[Country]], tuple[pl.DataFrame, dict]]] = {
    "wvs_csv": humans_from_wvs_csv,
    "global_opinions": humans_from_global_opinions,
}


@dataclasses.dataclass(frozen=True)
class HumansJob:
    """The ``wvs_humans`` rule's job: its settings and the two files it writes."""

    settings: HumansSettings
    humans_out: str
    notes_out: str

    @classmethod
    def from_rule(cls, rule: Rule) -> HumansJob:
        """The rule's params are the ``wvs`` keys it reads (source with its path resolved) and ``files``, the
        source and catalog files' sizes and mtimes, there for Snakemake's rerun check only."""
        keys = {key: value for key, value in rule.params.items() if key != "files"}
        return cls(HumansSettings.from_config(keys), rule.output["humans"], rule.output["notes"])


def run(job: HumansJob) -> pl.DataFrame:
    settings = job.settings
    return build_humans(
        settings.source,
        job.humans_out,
        job.notes_out,
        catalog=settings.catalog,
        bad_rows=settings.bad_rows,
        countries=settings.countries,
    )


def build_humans(
    source: WvsSource | Mapping[str, Any],
    humans_out: str | os.PathLike,
    notes_out: str | os.PathLike,
    *,
    catalog: str | os.PathLike | None,
    bad_rows: str,
    countries: Sequence[str],
) -> pl.DataFrame:
    """Write the human distributions table (Parquet) and its notes (JSON) for the configured source.

    ``source`` (``wvs.source``, typed or as its mapping), ``catalog`` (None: the built-in one), ``bad_rows`` and
    ``countries`` (two WVS-7 country names) are the ``wvs`` config keys.
    """
    if not isinstance(source, WvsSource):
        source = WvsSource.from_config(source)
    if source.type not in READERS:
        raise LexalignError(f"config wvs.source.type: {source.type!r} is not one of {sorted(READERS)}")
    compared = pair(countries)
    path = wvs_source_path(dataclasses.asdict(source))
    items = load_catalog(catalog)
    collector = BadRows(path, bad_rows)
    humans, notes = READERS[source.type](path, items, collector, compared)
    _log_skipped(path, collector)
    both = f"{compared[0].name} vs {compared[1].name}"
    with atomic_path(humans_out) as tmp:
        humans.write_parquet(tmp)
    write_json(
        notes_out,
        {
            "source": {"type": source.type, "path": path},
            "countries": [{"key": c.key, "name": c.name, "code": c.code} for c in compared],
            "catalog": str(catalog or CATALOG.name),
            "catalog_items": len(items),
            "items": humans.height,
            "by_option_count": dict(sorted(Counter(humans["n_options"].to_list()).items())),
            "tension": definitions(0.0)["distance"] + ", " + both,
            "tension_study": definitions(0.0, "study")["distance"] + ", " + both,
            **notes,
            "bad_rows": collector.summary(),
            "files": input_files(path, catalog),
        },
    )
    log.info("%s: %d items with %s distributions (%d catalog items)", path, humans.height, both, len(items))
    return humans


def input_files(source_path: str | os.PathLike, catalog: str | os.PathLike | None) -> dict:
    """The source's and the catalog's (None: the built-in one) sizes and mtimes: what one table was read from."""
    return {"source": file_signature(source_path), "catalog": file_signature(catalog) if catalog else None}


def unchanged_policy(
    notes_path: str | os.PathLike,
    source_path: str | os.PathLike,
    catalog: str | os.PathLike | None,
    countries: Sequence[str],
) -> str | None:
    """The ``wvs.bad_rows`` policy of the run that wrote ``notes_path`` (humans.json) when no policy can change
    its table: it read these very files (size and mtime) for these countries and skipped no row, so skip
    and error give the same table. None otherwise (no such run, other files, or rows were skipped)."""
    try:
        notes = json.loads(Path(notes_path).read_text(encoding="utf-8"))
        compared = [c.name for c in pair(countries)]
        same = (
            notes["files"] == input_files(source_path, catalog)
            and [c["name"] for c in notes["countries"]] == compared
            and not notes["bad_rows"]["skipped"]
        )
        return str(notes["bad_rows"]["policy"]) if same else None
    except (OSError, ValueError, KeyError, TypeError, LexalignError):
        return None


def _log_skipped(path: str, collector: BadRows) -> None:
    """Say on the console and in the rule's log what ``wvs.bad_rows: skip`` left out (humans.json has it all)."""
    if not collector.counts:
        return
    reasons = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(collector.counts.items()))
    first = "; ".join(example.removeprefix(f"{path}: ") for example in collector.examples[:3])
    log.warning("%s: wvs.bad_rows is skip: skipped %s; first: %s", path, reasons, first)


def read_humans(path: str | os.PathLike) -> pl.DataFrame:
    """Read the wvs_humans table, checking its columns (:func:`countries_of` names its two countries)."""
    table = read_parquet_table(path, [*ITEM_SCHEMA, *TENSION_SCHEMA], "the wvs_humans table")
    countries_of(table, path)
    return table


def countries_of(table: pl.DataFrame, path: str | os.PathLike = "the wvs_humans table") -> list[Country]:
    """The two countries a humans table holds, in config order; one line when it does not hold two."""
    countries = humans_countries(table.columns)
    if len(countries) != 2:
        found = ", ".join(c.key for c in countries) or "none"
        raise LexalignError(
            f"{path}: holds {found} as country columns, expected two (<key> shares and n_<key>; an older layout "
            "with us/china columns?); rerun the wvs_humans rule"
        )
    return countries
