"""Ingestion: reading SWOW layouts, cleaning, culture filter, pooling and the cue-level split."""

from __future__ import annotations

import json

import polars as pl
import pytest

from lexalign.ingest import ingest, pooled_counts, split_cues
from lexalign.text import normalise_expr, normalise_text

SPLIT = {"train": 0.7, "val": 0.2, "test": 0.1}
HEADER = '"","id","participantID","age","gender","nativeLanguage","country","education","created_at","cue","R1","R2","R3"\n'


def write_raw(path, rows):
    lines = [HEADER]
    for i, (native, country, cue, r1, r2, r3) in enumerate(rows, 1):
        fields = [str(i), str(i), str(i), "30", '"Fe"', f'"{native}"', f'"{country}"', "2", '"2011-08-12 13:50:47"', f'"{cue}"']
        fields += ["NA" if r is None else f'"{r}"' for r in (r1, r2, r3)]
        lines.append(",".join(fields) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cat", "cat"),
        ("  Mad   Men ", "mad men"),
        ("cat.", "cat"),
        ("ｃａｔ", "cat"),
        ("小　狗", "小 狗"),
        ("猫。", "猫"),
        ("“月饼”", "月饼"),
        ("ice-cream", "ice-cream"),
    ],
)
def test_normalise_text_and_expression_agree(raw, expected):
    assert normalise_text(raw) == expected
    assert pl.DataFrame({"x": [raw]}).select(normalise_expr("x"))["x"][0] == expected


def test_cleaning_pools_counts_and_drops_markers(tmp_path):
    path = write_raw(tmp_path / "SWOW-EN.R100.test.csv", [
        ("United States", "United States", "dog", "Cat", "bark", "pet"),
        ("United States", "United States", "dog", "cat.", "Dog", "No more responses"),
        ("United States", "United States", "dog", "CAT", "0123456789abcdef0123456789abcdef", None),
        ("United States", "United States", "dog", "#Missing", "Unknown word", "pet "),
    ])
    pooled, stats = pooled_counts(path, {"format": "auto"})
    assert pooled.rows() == [("dog", "cat", 3), ("dog", "pet", 2), ("dog", "bark", 1)]
    assert stats["response_tokens"] == 6
    assert stats["responses_equal_to_cue"] == 1
    assert stats["responses_missing"] == 5
    assert stats["types_per_cue"] == 3


def test_culture_filter_keeps_only_matching_participants(tmp_path):
    path = write_raw(tmp_path / "raw.csv", [
        ("United States", "United States", "football", "quarterback", "nfl", "helmet"),
        ("United Kingdom", "United Kingdom", "football", "soccer", "goal", "pitch"),
        ("United States", "Canada", "football", "hockey", "puck", "ice"),
    ])
    pooled, stats = pooled_counts(path, {"filter": {"country": ["United States"], "NATIVELANGUAGE": ["United States"]}})
    assert set(pooled["response"]) == {"quarterback", "nfl", "helmet"}
    assert (stats["rows_in"], stats["rows_after_filter"]) == (3, 1)


def test_zh_layout_with_word_column_and_crlf(tmp_path):
    text = (
        "id,trialID,participantID,created_at,age,nativeLanguage,gender,education,city,country,section,word,R1Raw,R2Raw,R3Raw,R1,R2,R3\r\n"
        '1,1,1,2020-01-01,20,PUTON,Female,3,上海,中国,set1,狗,猫。,宠物,#,猫,宠物,#Symbol\r\n'
        '2,2,2,2020-01-01,20,WU,Male,3,上海,中国,set1,狗,ｃａｔ,骨头,x,猫,骨头,#Long\r\n'
    )
    path = tmp_path / "SWOWZH.R55.test.csv"
    path.write_bytes(text.encode("utf-8"))
    pooled, _ = pooled_counts(path, {"filter": {}})
    assert pooled.rows() == [("狗", "猫", 2), ("狗", "宠物", 1), ("狗", "骨头", 1)]
    pooled, _ = pooled_counts(path, {"filter": {"nativeLanguage": ["PUTON"]}})
    assert pooled.rows() == [("狗", "宠物", 1), ("狗", "猫", 1)]


def test_bom_is_accepted(tmp_path):
    path = write_raw(tmp_path / "raw.csv", [("United States", "United States", "sun", "moon", "hot", "star")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pooled, _ = pooled_counts(path, {})
    assert pooled.height == 3


def test_strength_file(tmp_path):
    path = tmp_path / "strength.SWOW-EN.R123.csv"
    path.write_text("cue\tresponse\tR123\tN\tR123.Strength\ndog\tcat\t40\t100\t0.4\ndog\tBone\t10\t100\t0.1\ndog\tDog\t3\t100\t0.03\n", encoding="utf-8")
    pooled, stats = pooled_counts(path, {"format": "auto"})
    assert pooled.rows() == [("dog", "cat", 40), ("dog", "bone", 10)]
    assert stats["format"] == "strength"
    assert "not applicable" in stats["participant_filter"]


def test_split_is_seeded_complete_and_disjoint():
    cues = [f"cue{i}" for i in range(1000)]
    first = split_cues(cues, SPLIT, seed=42)
    assert first == split_cues(list(reversed(cues)), SPLIT, seed=42)
    assert first != split_cues(cues, SPLIT, seed=7)
    counts = {name: sum(1 for s in first.values() if s == name) for name in SPLIT}
    assert counts == {"train": 700, "val": 200, "test": 100}


def test_ingest_writes_tables_and_stats(tmp_path, swow_en):
    stats = ingest(swow_en, {"filter": {"country": ["United States"], "nativeLanguage": ["United States"]}}, SPLIT, 42,
                   tmp_path / "associations.parquet", tmp_path / "stats.json")
    table = pl.read_parquet(tmp_path / "associations.parquet")
    assert table.columns == ["cue", "response", "count", "split"]
    assert table.group_by("cue").agg(pl.col("split").n_unique())["split"].max() == 1
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    assert stats["cues"] >= 300
    assert sum(stats["split_cues"].values()) == stats["cues"]


def test_illustrative_en_matches_generator_facts(tmp_path, swow_en, repo):
    expected = json.loads((repo / "data" / "illustrative" / "expected_en.json").read_text())
    _, everyone = pooled_counts(swow_en, {})
    _, us = pooled_counts(swow_en, {"filter": {"country": ["United States"], "nativeLanguage": ["United States"]}})
    assert everyone["rows_in"] == expected["n_rows"]
    assert us["rows_after_filter"] == expected["n_rows_us_native"]


def test_illustrative_zh_ingests(swow_zh):
    pooled, stats = pooled_counts(swow_zh, {})
    assert stats["cues"] >= 300
    assert not pooled["response"].str.contains(r"^[0-9a-f]{32}$").any()
    assert not pooled["response"].str.starts_with("#").any()
