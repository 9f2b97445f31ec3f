"""Tier-2 inputs (the wvs_humans rule): the item catalog, the WVS-7 CSV reader and the GlobalOpinionQA reader."""

from __future__ import annotations

import csv
import importlib.util
import json
import textwrap
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from lexalign.config.countries import pair
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.wvs.humans import build_humans, read_humans
from lexalign.wvs.metrics import tension_distance
from lexalign.wvs.sources.catalog import load_catalog
from lexalign.wvs.sources.global_opinions import humans_from_global_opinions, parse_literal
from lexalign.wvs.sources.official import BadRows, detect_separator, humans_from_wvs_csv, humans_schema

REPO = Path(__file__).resolve().parents[2]
WVS_DIR = REPO / "data" / "illustrative" / "wvs"
WVS_CSV = WVS_DIR / "WVS_Cross-National_Wave_7_illustrative.csv"
GOQA_CSV = WVS_DIR / "global_opinions_illustrative.csv"
STUDY_PAIR = ["United States", "China"]  # the schema default, wvs.countries
US_CN = pair(STUDY_PAIR)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def small_catalog():
    return [
        {
            "item_id": "Q1",
            "topic": "t",
            "question_en": "Family?",
            "question_zh": "家庭？",
            "subject_en": None,
            "subject_zh": None,
            "options_en": ["a", "b", "c", "d"],
            "options_zh": ["甲", "乙", "丙", "丁"],
            "codes": [1, 2, 3, 4],
            "ordinal": True,
            "n_options": 4,
        },
        {
            "item_id": "Q94",
            "topic": "t",
            "question_en": "Member?",
            "question_zh": "成员？",
            "subject_en": None,
            "subject_zh": None,
            "options_en": ["no", "inactive", "active"],
            "options_zh": ["否", "不活跃", "活跃"],
            "codes": [0, 1, 2],
            "ordinal": True,
            "n_options": 3,
        },
        {
            "item_id": "Q225",
            "topic": "t",
            "question_en": "Opposition?",
            "question_zh": "反对派？",
            "subject_en": None,
            "subject_zh": None,
            "options_en": ["yes", "no"],
            "options_zh": ["是", "否"],
            "codes": [1, 2],
            "ordinal": False,
            "n_options": 2,
        },
    ]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# Catalog


def test_catalog_is_complete_and_consistent(catalog):
    assert len(catalog) >= 200
    ids = [item["item_id"] for item in catalog]
    assert len(set(ids)) == len(ids)
    for item in catalog:
        assert item["question_en"] and item["question_zh"], item["item_id"]
        assert "{x}" not in item["question_en"] + item["question_zh"]
        assert len(item["options_en"]) == len(item["options_zh"]) == len(item["codes"]) == item["n_options"] >= 2
        assert len(set(item["codes"])) == item["n_options"]
        assert item["options_en"][0] and item["options_en"][-1] and item["options_zh"][0] and item["options_zh"][-1]
    counts = Counter(min(item["n_options"], 5) for item in catalog)
    assert all(counts[k] >= 10 for k in (2, 3, 4, 5))
    by_id = {item["item_id"]: item for item in catalog}
    assert by_id["Q1"]["options_en"][0] == "Very important" and by_id["Q1"]["codes"] == [1, 2, 3, 4]
    assert by_id["Q94"]["codes"] == [0, 1, 2]
    assert by_id["Q182"]["n_options"] == 10 and by_id["Q182"]["options_en"][1] == ""
    assert by_id["Q152"]["ordinal"] is False and by_id["Q46"]["ordinal"] is True
    assert by_id["Q1"]["subject_en"] == "family" and by_id["Q57"]["subject_en"] is None


def test_catalog_file_errors(tmp_path):
    with pytest.raises(LexalignError, match="is a directory, expected the item catalog YAML file"):
        load_catalog(tmp_path)
    latin = tmp_path / "c.yaml"
    latin.write_bytes("groups: []  # café\n".encode("latin-1"))
    with pytest.raises(LexalignError, match=r"c\.yaml: not UTF-8 text"):
        load_catalog(latin)


@pytest.mark.parametrize(
    "body, message",
    [
        ("groups: [{scale: s, items: {Q1: [a, b], Q1x: [c, d]}}]", "item ids are WVS variable names"),
        ("groups: [{scale: s, items: {Q1: [a, b]}}, {scale: s, items: {Q1: [c, d]}}]", "Q1: duplicate item id"),
        ("groups: [{scale: nope, items: {Q1: [a, b]}}]", "unknown scale 'nope'"),
        (
            "groups: [{scale: {codes: [1, 2], en: [x], zh: [y, z], ordinal: true}, items: {Q1: [a, b]}}]",
            "1 en labels for 2 codes",
        ),
        ("groups: [{scale: s, items: {Q1: [a]}}]", "expected [English text, Chinese text]"),
        ("groups: [[Q1, Q2]]", "group 1 must be a mapping with an 'items' mapping"),
        ("groups: [{scale: s, items: [Q1]}]", "group 1 must be a mapping with an 'items' mapping"),
        ("groups: [{scale: s, stem: x, items: {Q1: [a, b]}}]", "group 1: stem must give en and zh text"),
    ],
)
def test_catalog_errors_name_the_item(tmp_path, body, message):
    path = write(
        tmp_path / "c.yaml", "scales: {s: {codes: [1, 2], en: [x, y], zh: [x, y], ordinal: true}}\n" + body + "\n"
    )
    with pytest.raises(LexalignError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(path)


# --------------------------------------------------------------------------------------------------
# WVS-7 CSV


def test_illustrative_csv_end_to_end(tmp_path, catalog):
    out, notes_path = tmp_path / "humans.parquet", tmp_path / "humans.json"
    humans = build_humans(
        {"type": "wvs_csv", "path": str(WVS_CSV)}, out, notes_path, catalog=None, bad_rows="skip", countries=STUDY_PAIR
    )
    notes = json.loads(notes_path.read_text(encoding="utf-8"))
    assert humans.height == len(catalog) - 2
    assert {d["item_id"] for d in notes["items_dropped"]} == {"Q225", "Q227"}
    assert all("not asked in CHN (all -4)" in d["reason"] for d in notes["items_dropped"])
    assert notes["respondents"] == {"CHN": 250, "USA": 250}  # DEU rows filtered out
    table = read_humans(out)
    assert dict(table.schema) == humans_schema(US_CN)
    assert [c["key"] for c in notes["countries"]] == ["usa", "chn"]
    for us, cn, n in table.select("usa", "chn", "n_options").iter_rows():
        assert len(us) == len(cn) == n
        assert sum(us) == pytest.approx(1.0) and sum(cn) == pytest.approx(1.0)
    assert table["tension"].min() >= 0 and table["tension"].max() <= 1
    # the study's tension (values-based EMD) beside the corrected one, and both described in the notes
    for us, cn, corrected, study in table.select("usa", "chn", "tension", "tension_study").iter_rows():
        assert corrected == pytest.approx(tension_distance(us, cn)) and study == pytest.approx(
            tension_distance(us, cn, "study")
        )
    assert "values" in notes["tension_study"] and "positions" in notes["tension"]


def test_csv_weighting_missing_codes_and_separator(tmp_path):
    csv_text = """
        B_COUNTRY_ALPHA;W_WEIGHT;Q1;Q94;Q225;Q7
        USA;1.0;1;0;1;1
        USA;3.0;2;2;2;1
        USA;2.0;-1;1;2;1
        CHN;1.0;4;0;-4;1
        CHN;1.0;4;9;-4;1
        DEU;5.0;1;1;1;1
    """
    path = write(tmp_path / "wvs.csv", csv_text)
    assert detect_separator(path) == ";"
    bad = BadRows(path, "skip")
    humans, notes = humans_from_wvs_csv(path, small_catalog(), bad, US_CN)
    rows = {r["item_id"]: r for r in humans.to_dicts()}
    assert rows["Q1"]["usa"] == pytest.approx([0.25, 0.75, 0, 0])  # weights 1 and 3; the -1 is excluded
    assert rows["Q1"]["n_usa"] == 2
    assert rows["Q1"]["chn"] == pytest.approx([0, 0, 0, 1])
    assert rows["Q94"]["usa"] == pytest.approx([1 / 6, 2 / 6, 3 / 6])  # code 0 is a valid code here
    assert rows["Q94"]["chn"] == pytest.approx([1, 0, 0])  # the unexpected code 9 is excluded ...
    assert notes["unexpected_codes"] == {"Q94": {"CHN": {"9": 1}}}  # ... and counted
    assert "Q225" not in rows
    assert notes["items_dropped"] == [{"item_id": "Q225", "reason": "not asked in CHN (all -4)"}]


def test_csv_comma_and_long_header_names(tmp_path):
    path = write(
        tmp_path / "wvs.csv",
        """
        "B_COUNTRY_ALPHA","W_WEIGHT","Q1: Important in life: Family"
        "USA","1","1"
        "CHN","1","2"
    """,
    )
    humans, _ = humans_from_wvs_csv(path, small_catalog()[:1], BadRows(path, "skip"), US_CN)
    assert humans["usa"][0].to_list() == [1.0, 0.0, 0.0, 0.0]


def test_csv_missing_column_and_bad_cells(tmp_path):
    no_weight = write(tmp_path / "a.csv", "B_COUNTRY_ALPHA,Q1\nUSA,1\n")
    with pytest.raises(LexalignError, match=r"a\.csv: missing column W_WEIGHT"):
        humans_from_wvs_csv(no_weight, small_catalog(), BadRows(no_weight, "skip"), US_CN)
    no_items = write(tmp_path / "b.csv", "B_COUNTRY_ALPHA,W_WEIGHT,X1\nUSA,1,1\n")
    with pytest.raises(LexalignError, match="none of the 3 catalog items"):
        humans_from_wvs_csv(no_items, small_catalog(), BadRows(no_items, "skip"), US_CN)
    bad_cells = write(tmp_path / "c.csv", "B_COUNTRY_ALPHA,W_WEIGHT,Q1\nUSA,1,1\nUSA,x,2\nCHN,1,abc\nCHN,1,3\n")
    skip = BadRows(bad_cells, "skip")
    humans, _ = humans_from_wvs_csv(bad_cells, small_catalog()[:1], skip, US_CN)
    assert skip.counts == {"bad_weight": 1, "non_numeric_answer": 1}
    assert any("row 2" in e and "W_WEIGHT" in e for e in skip.examples)
    assert any("row 3" in e and "'abc'" in e for e in skip.examples)
    assert humans["usa"][0].to_list() == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(LexalignError, match=r"c\.csv: row 2: W_WEIGHT 'x'"):
        humans_from_wvs_csv(bad_cells, small_catalog()[:1], BadRows(bad_cells, "error"), US_CN)


# --------------------------------------------------------------------------------------------------
# GlobalOpinionQA


def test_parse_literal_is_safe():
    value = parse_literal(
        "defaultdict(<class 'list'>, {'United States': [0.5, 0.5], 'China': [0.1, 0.9]})", "selections"
    )
    assert value == {"United States": [0.5, 0.5], "China": [0.1, 0.9]}
    assert parse_literal("['a', \"Don't know\"]", "options") == ["a", "Don't know"]
    for hostile in (
        "__import__('os').system('echo pwned')",
        "defaultdict(<class 'list'>, {'a': open('x')})",
        "{'a': [1, 2]",
    ):
        with pytest.raises(ValueError, match="does not parse as a Python literal"):
            parse_literal(hostile, "selections")


def test_illustrative_global_opinions(tmp_path):
    out, notes_path = tmp_path / "h.parquet", tmp_path / "h.json"
    humans = build_humans(
        {"type": "global_opinions", "path": str(GOQA_CSV)},
        out,
        notes_path,
        catalog=None,
        bad_rows="skip",
        countries=STUDY_PAIR,
    )
    notes = json.loads(notes_path.read_text(encoding="utf-8"))
    assert humans.height == 24
    assert notes["rows_not_used"] == {"source GAS": 2, "WVS row without both United States and China": 2}
    q1 = humans.filter(pl.col("item_id") == "Q1").to_dicts()[0]
    assert q1["n_options"] == 4 and q1["question_zh"]  # Don't know / No answer dropped, catalog Chinese text used
    assert sum(q1["usa"]) == pytest.approx(1.0)
    unmatched = humans.filter(pl.col("item_id").str.starts_with("GOQA"))
    assert unmatched.height == 3 and unmatched["question_zh"].null_count() == 3


def write_goqa(path: Path, rows: list[list[str]], header=("question", "options", "selections", "source")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_global_opinions_bad_rows(tmp_path, catalog):
    wrap = "defaultdict(<class 'list'>, {})"
    good = ["Good?", "['Yes', 'No']", wrap.replace("{}", "{'United States': [0.6, 0.4], 'China': [0.3, 0.7]}"), "WVS"]
    rows = [
        good,
        ["Broken?", "['Yes', 'No']", "defaultdict(<class 'list'>, {'United States': [0.6, 0.4]", "WVS"],
        ["Empty?", "['Yes', 'No', \"Don't know\"]", "{'United States': [0, 0, 1], 'China': [0.5, 0.5, 0]}", "WVS"],
        ["Mismatch?", "['Yes', 'No']", "{'United States': [0.2, 0.3, 0.5], 'China': [0.5, 0.5]}", "WVS"],
    ]
    path = write_goqa(tmp_path / "goqa.csv", rows)
    skip = BadRows(path, "skip")
    humans, _ = humans_from_global_opinions(path, catalog, skip, US_CN)
    assert humans["item_id"].to_list() == ["GOQA1"]
    assert skip.counts == {"unparsable_literal": 1, "bad_distribution": 2}
    assert any("row 3" in e and "empty distribution" in e for e in skip.examples)
    assert any("row 4" in e and "3 shares for 2 options" in e for e in skip.examples)
    with pytest.raises(LexalignError, match=r"goqa\.csv: row 2: selections does not parse"):
        humans_from_global_opinions(path, catalog, BadRows(path, "error"), US_CN)
    missing = write_goqa(tmp_path / "m.csv", [["q", "['a', 'b']", "WVS"]], header=("question", "options", "source"))
    with pytest.raises(LexalignError, match="missing column.*selections"):
        humans_from_global_opinions(missing, catalog, BadRows(missing, "skip"), US_CN)
    unknown = write_goqa(
        tmp_path / "u.csv", [good + ["Q9999"]], header=("question", "options", "selections", "source", "item_id")
    )
    with pytest.raises(LexalignError, match=r"row 1: item_id 'Q9999' is not in the catalog"):
        humans_from_global_opinions(unknown, catalog, BadRows(unknown, "error"), US_CN)


def test_illustrative_files_are_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location("make_illustrative", WVS_DIR / "make_illustrative.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in (WVS_CSV.name, GOQA_CSV.name):
        assert (tmp_path / name).read_bytes() == (WVS_DIR / name).read_bytes(), name


def test_config_schema_wvs_block(monkeypatch):
    import yaml

    monkeypatch.chdir(REPO)  # the config's data paths are relative to the repository

    from lexalign.config.validation import validate_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config.pop("wvs", None)
    wvs = validate_config(config, SCHEMA)["wvs"]
    assert wvs["source"] == {"type": "wvs_csv", "path": None}
    assert (wvs["framings"], wvs["modes"], wvs["max_items"], wvs["high_tension_n"], wvs["kl_epsilon"]) == (
        ["interviewer"],
        ["logits"],
        None,
        50,
        1e-6,
    )
    config["wvs"] = {"framings": ["gossip"]}
    with pytest.raises(LexalignError, match=r"wvs\.framings\.0: 'gossip' is not one of"):
        validate_config(config, SCHEMA)
    # a config still using the singular keys: one line naming the key that replaced it
    for old, new in (("framing", "framings"), ("mode", "modes")):
        config["wvs"] = {old: "interviewer" if old == "framing" else "logits"}
        with pytest.raises(LexalignError) as info:
            validate_config(config, SCHEMA)
        assert str(info.value).startswith(f"config: wvs.{old} was replaced by wvs.{new} (a list, e.g. [")
        assert "\n" not in str(info.value)
