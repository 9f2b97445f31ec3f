"""Ingestion: reading SWOW layouts, cleaning, culture filter, pooling and the cue-level split."""

from __future__ import annotations

import json

import polars as pl
import pytest

from lexalign.core.text import normalise_expr, normalise_text
from lexalign.norms.ingest import ingest, pooled_counts
from lexalign.norms.split import split_cues

SPLIT = {"train": 0.7, "val": 0.2, "test": 0.1}
HEADER = (
    '"","id","participantID","age","gender","nativeLanguage","country","education","created_at","cue","R1","R2","R3"\n'
)


def write_raw(path, rows):
    lines = [HEADER]
    for i, (native, country, cue, r1, r2, r3) in enumerate(rows, 1):
        fields = [
            str(i),
            str(i),
            str(i),
            "30",
            '"Fe"',
            f'"{native}"',
            f'"{country}"',
            "2",
            '"2011-08-12 13:50:47"',
            f'"{cue}"',
        ]
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
    path = write_raw(
        tmp_path / "SWOW-EN.R100.test.csv",
        [
            ("United States", "United States", "dog", "Cat", "bark", "pet"),
            ("United States", "United States", "dog", "cat.", "Dog", "No more responses"),
            ("United States", "United States", "dog", "CAT", "0123456789abcdef0123456789abcdef", None),
            ("United States", "United States", "dog", "#Missing", "Unknown word", "pet "),
        ],
    )
    pooled, stats = pooled_counts(path, {"format": "auto"})
    assert pooled.rows() == [("dog", "cat", 3), ("dog", "pet", 2), ("dog", "bark", 1)]
    assert stats["response_tokens"] == 6
    assert stats["responses_equal_to_cue"] == 1
    assert stats["responses_missing"] == 5
    assert stats["types_per_cue"] == 3


def test_culture_filter_keeps_only_matching_participants(tmp_path):
    path = write_raw(
        tmp_path / "raw.csv",
        [
            ("United States", "United States", "football", "quarterback", "nfl", "helmet"),
            ("United Kingdom", "United Kingdom", "football", "soccer", "goal", "pitch"),
            ("United States", "Canada", "football", "hockey", "puck", "ice"),
        ],
    )
    pooled, stats = pooled_counts(path, {"filter": {"country": ["United States"], "NATIVELANGUAGE": ["United States"]}})
    assert set(pooled["response"]) == {"quarterback", "nfl", "helmet"}
    assert (stats["rows_in"], stats["rows_after_filter"]) == (3, 1)


def test_zh_layout_with_word_column_and_crlf(tmp_path):
    text = (
        "id,trialID,participantID,created_at,age,nativeLanguage,gender,education,city,country,section,word,R1Raw,R2Raw,R3Raw,R1,R2,R3\r\n"
        "1,1,1,2020-01-01,20,PUTON,Female,3,上海,中国,set1,狗,猫。,宠物,#,猫,宠物,#Symbol\r\n"
        "2,2,2,2020-01-01,20,WU,Male,3,上海,中国,set1,狗,ｃａｔ,骨头,x,猫,骨头,#Long\r\n"
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
    path.write_text(
        "cue\tresponse\tR123\tN\tR123.Strength\ndog\tcat\t40\t100\t0.4\ndog\tBone\t10\t100\t0.1\ndog\tDog\t3\t100\t0.03\n",
        encoding="utf-8",
    )
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
    stats = ingest(
        swow_en,
        {"filter": {"country": ["United States"], "nativeLanguage": ["United States"]}},
        SPLIT,
        42,
        tmp_path / "associations.parquet",
        tmp_path / "stats.json",
    )
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


# --------------------------------------------------------------------------- field counts, missing values, split


def csv_module_verdict(text: str, separator: str, n_fields: int):
    """The reference: Python's csv module, record by record (blank lines skipped)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    start, rows = 1, -1
    for record in reader:
        if record:
            if len(record) != n_fields:
                return ("bad", start, len(record))
            rows += 1
        start = reader.line_num + 1
    return ("ok", rows)


def test_field_counts_agree_with_the_csv_module(tmp_path, monkeypatch):
    import random

    import lexalign.core.csvfile as csvfile
    from lexalign.core.errors import LexalignError

    rng = random.Random(7)
    values = ["a", "bb", "", '"q,x"', '"l\nm"', '"e""s"', "é", "ccc,d"]
    checked = bad_seen = 0
    path = tmp_path / "f.csv"
    for _ in range(600):
        separator = rng.choice([",", "\t"])
        n_fields = rng.randint(2, 6)
        lines = []
        for _ in range(rng.randint(1, 8)):
            k = n_fields if rng.random() < 0.8 else rng.randint(1, n_fields + 2)
            lines.append(separator.join(rng.choice(values).replace(",", separator) for _ in range(k)))
            if rng.random() < 0.1:
                lines.append("")
        eol = rng.choice(["\n", "\r\n"])
        text = eol.join(lines) + (eol if rng.random() < 0.8 else "")
        if not text.strip():
            continue
        path.write_bytes(text.encode("utf-8"))
        expected = csv_module_verdict(text, separator, n_fields)
        monkeypatch.setattr(csvfile, "_CHUNK", rng.choice([1, 2, 3, 7, 64, 1 << 20]))
        if expected[0] == "ok":
            assert csvfile.check_field_counts(path, separator, n_fields) == expected[1], text
        else:
            bad_seen += 1
            with pytest.raises(LexalignError) as info:
                csvfile.check_field_counts(path, separator, n_fields)
            message = str(info.value)
            assert f"line {expected[1]} has {expected[2]} fields" in message or "truncated" in message, (text, message)
        checked += 1
    assert checked > 500 and bad_seen > 100


@pytest.mark.parametrize(
    "row",
    [
        # an unquoted comma in a response; an extra education field; a field missing
        '2,2,2,30,"Fe","United States","United States",2,"2011-08-12","dog",cat, and mouse,"bark","pet"',
        '2,2,2,30,"Fe","United States","United States",2,5,"2011-08-12","dog","cat","bark","pet"',
        '2,2,2,30,"Fe","United States","United States","2011-08-12","dog","cat","bark","pet"',
    ],
)
def test_ragged_rows_are_refused_even_when_columns_are_projected(tmp_path, row):
    from lexalign.core.errors import LexalignError

    header = HEADER.strip()
    good = '1,1,1,30,"Fe","United States","United States",2,"2011-08-12","dog","cat","bark","pet"'
    path = tmp_path / "raw.csv"
    path.write_text("\n".join([header, good, row, good]) + "\n", encoding="utf-8")
    found = len(next(__import__("csv").reader([row])))
    with pytest.raises(LexalignError) as info:
        pooled_counts(path, {"filter": {"country": ["United States"]}})
    assert str(info.value) == (
        f"{path}: line 3 has {found} fields but the header has 13 (an unquoted comma or a stray quote in "
        "a value?); quote the value or fix the line"
    )


def test_quoted_separators_line_breaks_and_blank_lines_are_fine(tmp_path):
    header = HEADER.strip()
    rows = [
        '1,1,1,30,"Fe","United States","United States",2,"2011-08-12","dog","cat, big","bark","pet"',
        "",
        '2,2,2,30,"Fe","United States","United States",2,"2011-08-12","dog","two\nlines","say ""woof""",NA',
    ]
    path = tmp_path / "raw.csv"
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n\r\n").encode("utf-8"))
    pooled, stats = pooled_counts(path, {})
    assert stats["rows_in"] == 2
    assert sorted(pooled["response"]) == ["bark", "cat, big", "pet", 'say "woof', "two lines"]


def test_only_swow_markers_are_missing(tmp_path):
    path = write_raw(
        tmp_path / "raw.csv",
        [
            ("United States", "United States", "nothing", "none", "null", "nan"),
            ("United States", "United States", "nothing", "None", "NA", "N/A"),
            ("United States", "United States", "salt", "Na", "#Missing", "No more responses"),
        ],
    )
    pooled, stats = pooled_counts(path, {})
    assert dict(zip(pooled["response"], pooled["count"])) == {"none": 2, "nan": 1, "null": 1, "n/a": 1, "na": 1}
    assert stats["responses_missing"] == 3  # NA, #Missing, No more responses


def test_zero_count_strength_pairs_are_dropped_and_counted(tmp_path):
    path = tmp_path / "strength.SWOW-EN.R1.csv"
    path.write_text("cue\tresponse\tR1\tN\nDog\tcat\t4\t10\ndog\tbone\t0\t10\ndog\tpuppy\t2\t10\n", encoding="utf-8")
    pooled, stats = pooled_counts(path, {})
    assert pooled.rows() == [("dog", "cat", 4), ("dog", "puppy", 2)]
    assert stats["pairs_with_zero_count_dropped"] == 1


def test_cue_and_word_columns_need_a_mapping(tmp_path):
    from lexalign.core.errors import LexalignError

    path = tmp_path / "SWOWZH.csv"
    path.write_text("id,word,cue,R1,R2,R3\n1,狗,2020-01-01,猫,宠物,骨头\n", encoding="utf-8")
    with pytest.raises(LexalignError) as info:
        pooled_counts(path, {})
    assert (
        str(info.value)
        == f"{path}: has both 'cue' and 'word' columns; set norms.columns.cue to the one that holds the cue"
    )
    pooled, _ = pooled_counts(path, {"columns": {"cue": "WORD"}})
    assert pooled["cue"].unique().to_list() == ["狗"]


def test_packed_and_plain_sorts_agree(swow_en, monkeypatch):
    import lexalign.norms.ingest as ingest_module

    packed, _ = pooled_counts(swow_en, {})
    monkeypatch.setattr(ingest_module, "_PACKED_BITS", 0)  # force the three-key sort
    plain, _ = pooled_counts(swow_en, {})
    assert packed.equals(plain)
    assert packed.equals(packed.sort(["cue", "count", "response"], descending=[False, True, False]))


def study_split(cues, train, val, seed):
    """The study's split, written from its description: numpy's global legacy RNG seeded, shuffle the
    sorted cue list in place, floor the train and val sizes, the rest is test."""
    import numpy as np

    keys = sorted(cues)
    np.random.seed(seed)
    np.random.shuffle(keys)
    train_end = int(train * len(keys))
    val_end = int(val * len(keys)) + train_end
    return keys[:train_end], keys[train_end:val_end], keys[val_end:]


@pytest.mark.parametrize("n", [7, 10, 1003, 10024])
def test_study_split_reproduces_the_study(n):
    cues = [f"w{i:05d}" for i in range(n)][::-1]
    assignment = split_cues(cues, {**SPLIT, "definition": "study"}, seed=42)
    train, val, test = study_split(cues, 0.7, 0.2, 42)
    assert [c for c in sorted(assignment) if assignment[c] == "train"] == sorted(train)
    assert [c for c in sorted(assignment) if assignment[c] == "val"] == sorted(val)
    assert [c for c in sorted(assignment) if assignment[c] == "test"] == sorted(test)


def test_split_sizes_by_definition():
    cues = [f"w{i}" for i in range(10024)]  # the study's Mandarin cue count
    sizes = {}
    for definition in ("corrected", "study"):
        labels = list(split_cues(cues, {**SPLIT, "definition": definition}, 42).values())
        sizes[definition] = tuple(labels.count(name) for name in ("train", "val", "test"))
    assert sizes == {"corrected": (7017, 2005, 1002), "study": (7016, 2004, 1004)}


@pytest.mark.parametrize(
    ("split", "seed", "definition", "message"),
    [
        (
            {"train": float("nan"), "val": 0.2, "test": 0.1},
            42,
            "corrected",
            "config split.train: nan is not a share between 0 and 1",
        ),
        (
            {"train": 0.7, "val": 0.2, "test": "0.1"},
            42,
            "corrected",
            "config split.test: '0.1' is not a share between 0 and 1",
        ),
        (
            SPLIT,
            2**32,
            "study",
            "config seed: 4294967296 is outside 0..2**32-1, which numpy's RandomState (split.definition study) needs",
        ),
        (SPLIT, 42, "paper", "config split.definition: 'paper' is not one of corrected, study"),
    ],
)
def test_split_refuses_bad_settings(split, seed, definition, message):
    from lexalign.core.errors import LexalignError

    with pytest.raises(LexalignError) as info:
        split_cues(["a", "b"], {**split, "definition": definition}, seed)
    assert str(info.value) == message


def test_stats_record_the_split_definition(tmp_path, swow_en):
    stats = ingest(swow_en, {}, {**SPLIT, "definition": "study"}, 42, tmp_path / "a.parquet", tmp_path / "s.json")
    assert stats["split_definition"] == "study"
    assert json.loads((tmp_path / "s.json").read_text())["split_definition"] == "study"


def test_code_books_with_and_without_polars_categories_agree(swow_zh, monkeypatch):
    import lexalign.norms.ingest as ingest_module

    first, _ = pooled_counts(swow_zh, {})
    monkeypatch.setattr(ingest_module, "_USE_CATEGORIES", not ingest_module._USE_CATEGORIES)
    second, _ = pooled_counts(swow_zh, {})
    assert first.equals(second)


def test_empty_cue_is_reported_on_its_own_line(tmp_path):
    from lexalign.core.errors import LexalignError

    good = '1,1,1,30,"Fe","United States","United States",2,"2011-08-12","dog","cat","bark","pet"'
    other = good.replace('"United States","United States"', '"Canada","Canada"').replace('"dog"', '""')
    empty = good.replace('"dog"', '""')
    path = tmp_path / "raw.csv"
    path.write_text("\n".join([HEADER.strip(), good, "", other, empty, good]) + "\n", encoding="utf-8")
    with pytest.raises(LexalignError) as info:
        pooled_counts(path, {"filter": {"country": ["United States"]}})
    assert str(info.value) == f"{path}: 1 row(s) have an empty cue (first on line 5); every row needs a cue"


# ---- the job's typed settings -------------------------------------------------------------------------

NORMS_BLOCK = {"path": "norms.csv", "format": "auto", "columns": {}, "filter": {"country": ["United States"]}}
SPLIT_SECTION = {**SPLIT, "definition": "corrected"}


@pytest.mark.parametrize(
    ("norms", "split", "message"),
    [
        (
            {**NORMS_BLOCK, "filtre": {}},
            SPLIT_SECTION,
            "config languages.en.norms: unknown key languages.en.norms.filtre",
        ),
        (
            {k: v for k, v in NORMS_BLOCK.items() if k != "columns"},
            SPLIT_SECTION,
            "config languages.en.norms: no languages.en.norms.columns ",
        ),
        (NORMS_BLOCK, SPLIT, "config split: no split.definition "),
        (NORMS_BLOCK, {**SPLIT_SECTION, "tset": 0.1}, "config split: unknown key split.tset"),
    ],
)
def test_ingest_settings_name_a_misspelt_or_missing_key(norms, split, message):
    from lexalign.core.errors import LexalignError
    from lexalign.norms.ingest import IngestSettings

    with pytest.raises(LexalignError) as info:
        IngestSettings.from_config(norms, split, "en")
    assert str(info.value).startswith(message)


def test_ingest_job_from_the_rule_runs_as_ingest_does(tmp_path, swow_en):
    from lexalign.core.snake import Rule
    from lexalign.norms.ingest import IngestJob, NormsSettings, run

    rule = Rule(
        input={"norms": str(swow_en)},
        output={"associations": str(tmp_path / "a.parquet"), "stats": str(tmp_path / "s.json")},
        params={"norms": {**NORMS_BLOCK, "path": str(swow_en)}, "split": SPLIT_SECTION, "seed": 42, "norms_file": {}},
        wildcards={"lang": "en"},
    )
    job = IngestJob.from_rule(rule)
    assert job.settings.norms == NormsSettings(filter={"country": ["United States"]})
    stats = run(job)
    expected = ingest(swow_en, NORMS_BLOCK, SPLIT, 42, tmp_path / "b.parquet", tmp_path / "t.json")
    assert stats == expected
    assert pl.read_parquet(tmp_path / "a.parquet").equals(pl.read_parquet(tmp_path / "b.parquet"))


def test_a_partial_norms_mapping_still_names_an_unknown_key(swow_en):
    from lexalign.core.errors import LexalignError

    with pytest.raises(LexalignError, match=r"^config norms: unknown key norms.colums$"):
        pooled_counts(swow_en, {"colums": {}})


def test_the_swow_en_header_is_a_raw_layout_ingest_reads(tmp_path):
    from lexalign.norms.ingest import RAW_COLUMNS, SWOW_EN_HEADER, detect_format, resolve_columns

    header = list(SWOW_EN_HEADER)
    assert detect_format(header) == "raw"
    assert resolve_columns(tmp_path, header, RAW_COLUMNS, {}) == {"cue": "cue", "R1": "R1", "R2": "R2", "R3": "R3"}
    assert HEADER.strip() == ",".join(f'"{name}"' for name in header)
