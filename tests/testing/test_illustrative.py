"""lexalign.testing.illustrative: the synthetic SWOW-EN files are written in the one SWOW layout, seeded."""

from __future__ import annotations

import csv

from lexalign.norms.ingest import ingest
from lexalign.testing.illustrative.layout import EN_COLUMNS
from lexalign.testing.illustrative.synthetic import SPLIT, US_FILTER, write_synthetic_swow_en


def test_synthetic_file_has_the_swow_en_layout_and_is_seeded(tmp_path):
    meta = write_synthetic_swow_en(tmp_path / "a.csv", n_cues=30, per_cue=20, n_types=600, seed=3)
    write_synthetic_swow_en(tmp_path / "b.csv", n_cues=30, per_cue=20, n_types=600, seed=3)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == EN_COLUMNS and len(rows) == meta["rows"] + 1 == 601
    assert (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(f'"{c}"' for c in EN_COLUMNS)
    stats = ingest(
        tmp_path / "a.csv",
        {"format": "raw", "filter": US_FILTER},
        SPLIT,
        42,
        tmp_path / "associations.parquet",
        tmp_path / "stats.json",
    )
    assert stats["rows_in"] == 600 and 0 < stats["rows_after_filter"] < 600
