"""Other country pairs (issue 14): any two WVS-7 countries, here the United States and Germany (the third
country of the illustrative WVS file), through wvs_humans, a tiny-model wvs job and the report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from lexalign.config import countries as wvs_countries
from lexalign.config.grid import result_files
from lexalign.config.validation import load_config
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.report import build, readers
from lexalign.wvs.evaluate import evaluate
from lexalign.wvs.humans import build_humans, read_humans
from lexalign.wvs.metrics import tension_distance
from lexalign.wvs.settings import WvsJob, WvsSettings
from lexalign.wvs.sources.official import humans_countries

REPO = Path(__file__).resolve().parents[2]
WVS_DIR = REPO / "data" / "illustrative" / "wvs"
WVS_CSV = WVS_DIR / "WVS_Cross-National_Wave_7_illustrative.csv"
GOQA_CSV = WVS_DIR / "global_opinions_illustrative.csv"
SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
US_DE = ["United States", "Germany"]


def defaults(section: str | dict) -> dict:
    """A schema section's defaults (the only defaults), nested objects' (wvs.norms) included."""
    spec = SCHEMA_DOC["properties"][section] if isinstance(section, str) else section
    return {
        key: defaults(sub) if sub.get("type") == "object" and "properties" in sub else sub["default"]
        for key, sub in spec["properties"].items()
        if "default" in sub
    }


def source(kind: str = "wvs_csv", path: Path = WVS_CSV) -> dict:
    return {"type": kind, "path": str(path)}


@pytest.fixture(scope="module")
def us_de(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("us-de")
    build_humans(source(), out / "humans.parquet", out / "humans.json", catalog=None, bad_rows="skip", countries=US_DE)
    return out


def test_the_country_list():
    known = wvs_countries.wvs7()
    assert len(known) >= 60 and len(set(known.values())) == len(known)  # one code per country
    assert all(len(code) == 3 and code.isupper() for code in known.values())
    assert (known["United States"], known["China"], known["Germany"]) == ("USA", "CHN", "DEU")
    assert wvs_countries.country("germany", "x") == wvs_countries.Country("Germany", "DEU")  # any case
    assert wvs_countries.country("deu", "x").name == "Germany"  # or the code
    assert [c.key for c in wvs_countries.pair(["United States", "China"])] == ["usa", "chn"]
    with pytest.raises(LexalignError, match=r"^config wvs.countries: 'Atlantis' is not a WVS-7 country"):
        wvs_countries.pair(["United States", "Atlantis"])
    with pytest.raises(LexalignError, match="did you mean Germany"):
        wvs_countries.pair(["Germny", "China"])
    with pytest.raises(LexalignError, match="names Germany twice"):
        wvs_countries.pair(["Germany", "DEU"])


def test_wvs_humans_builds_the_configured_pair(us_de):
    table = read_humans(us_de / "humans.parquet")
    notes = json.loads((us_de / "humans.json").read_text(encoding="utf-8"))
    assert [c.key for c in humans_countries(table.columns)] == ["usa", "deu"]
    assert {"usa", "deu", "n_usa", "n_deu"} <= set(table.columns) and "chn" not in table.columns
    assert notes["countries"] == [
        {"key": "usa", "name": "United States", "code": "USA"},
        {"key": "deu", "name": "Germany", "code": "DEU"},
    ]
    assert notes["respondents"] == {"DEU": 40, "USA": 250}  # CHN rows filtered out
    assert "United States vs Germany" in notes["tension"]
    assert table.height > 100 and table["n_deu"].max() <= 40
    for us, de, n, tension in table.select("usa", "deu", "n_options", "tension").iter_rows():
        assert len(us) == len(de) == n and sum(de) == pytest.approx(1.0)
        assert tension == pytest.approx(tension_distance(us, de))  # the tension is between the configured two
    # the US column is the same whichever country it is paired with
    with_china = build_humans(
        source(),
        us_de / "c.parquet",
        us_de / "c.json",
        catalog=None,
        bad_rows="skip",
        countries=["United States", "China"],
    )
    both = table.join(with_china, on="item_id", suffix="_c")
    assert both.height > 100
    for a, b in both.select("usa", "usa_c").iter_rows():
        assert a == pytest.approx(b, abs=1e-12)


def test_global_opinions_rows_of_the_pair(tmp_path):
    humans = build_humans(
        source("global_opinions", GOQA_CSV),
        tmp_path / "h.parquet",
        tmp_path / "h.json",
        catalog=None,
        bad_rows="skip",
        countries=US_DE,
    )
    notes = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    assert humans["item_id"].to_list() == ["Q64", "Q86"]  # the two WVS rows with both (a GAS row is not used)
    assert humans["deu"][1].to_list() == pytest.approx([0.1, 0.3204, 0.393, 0.1867], abs=1e-3)  # NATO, Q86
    assert notes["rows_not_used"]["WVS row without both United States and Germany"] > 0


def test_a_country_missing_from_the_file_or_from_wvs7_is_one_line(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(LexalignError) as info:
        build_humans(
            source(), out / "h.parquet", out / "h.json", catalog=None, bad_rows="skip", countries=["USA", "Japan"]
        )
    assert str(info.value) == (
        f"{WVS_CSV}: no respondents of Japan (B_COUNTRY_ALPHA JPN) in the file (it holds CHN, DEU, USA); "
        "change wvs.countries or the source file"
    )
    with pytest.raises(LexalignError, match=r"^config wvs.countries: 'Narnia' is not a WVS-7 country") as info:
        build_humans(
            source(), out / "h.parquet", out / "h.json", catalog=None, bad_rows="skip", countries=["Narnia", "China"]
        )
    assert "\n" not in str(info.value)
    with pytest.raises(LexalignError) as info:  # GlobalOpinionQA rows name countries by name
        build_humans(
            source("global_opinions", GOQA_CSV),
            out / "h.parquet",
            out / "h.json",
            catalog=None,
            bad_rows="skip",
            countries=["United States", "Japan"],
        )
    assert str(info.value) == (
        f"{GOQA_CSV}: no WVS row has selections for Japan (as GlobalOpinionQA names countries); "
        "change wvs.countries or the source file"
    )
    assert not out.exists()  # nothing half-written


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return prepare_model("tiny", {"path": str(build_tiny_model(root / "raw"))}, root / "prepared")


def wvs_job(tiny: Path, humans: Path, results: Path, lang: str, country: str) -> Path:
    out = results / "wvs" / "tiny" / lang / "vanilla" / "interviewer-logits"
    job = WvsJob(
        tiny,
        humans,
        out / "metrics.json",
        out / "answers.parquet",
        lang=lang,
        method="vanilla",
        prompt_language="en",
        country=country,
        model_name="tiny",
        framing="interviewer",
        mode="logits",
    )
    evaluate(job, WvsSettings.from_config({**defaults("wvs"), "max_items": 24, "high_tension_n": 6}))
    return out


@pytest.fixture(scope="module")
def scored(tiny, us_de, tmp_path_factory) -> Path:
    """Results of two wvs jobs on the US/Germany pair: a German-respondent language and an American one."""
    results = tmp_path_factory.mktemp("results")
    wvs_job(tiny, us_de / "humans.parquet", results, "de", "deu")  # the code works too; prompts say Germany
    wvs_job(tiny, us_de / "humans.parquet", results, "en", "United States")
    return results


def test_a_wvs_job_scores_against_both_countries(scored):
    folder = scored / "wvs/tiny/de/vanilla/interviewer-logits"
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    answers = pl.read_parquet(folder / "answers.parquet")
    assert metrics["schema_version"] == 3
    assert metrics["countries"] == {"usa": "United States", "deu": "Germany"}
    assert "Germany" in answers["prompt"][0] and "deu" not in answers["prompt"][0]
    assert (metrics["target"], metrics["other"], metrics["target_country"], metrics["other_country"]) == (
        "deu",
        "usa",
        "Germany",
        "United States",
    )
    for answerer in ("model", "uniform", "target_majority", "other_country"):
        assert set(metrics["results"][answerer]) == {"usa", "deu"}
    assert metrics["results"]["target_majority"]["deu"]["overall"]["acc"] == 1.0  # German majority vs Germans
    assert metrics["results"]["other_country"]["usa"]["overall"]["emd"] == pytest.approx(0.0, abs=1e-9)
    tension = metrics["high_tension"]
    assert set(tension["closer_to"]) == {"usa", "deu"} and tension["n"] == 6
    assert sum(tension["closer_to"].values()) + tension["ties"] == tension["answered"]
    assert "United States-Germany" in tension["ranking"]
    assert {"human_usa", "human_deu", "distance_usa", "distance_deu", "other_country_js_usa"} <= set(answers.columns)
    chosen = answers.filter(pl.col("high_tension") & pl.col("answered"))
    assert tension["closer_to"]["deu"] == int((chosen["distance_deu"] < chosen["distance_usa"]).sum())
    high = dict(answers.filter(pl.col("high_tension")).select("item_id", "distance_deu").iter_rows())
    assert {item["item_id"]: item["distance"]["deu"] for item in tension["items"]} == pytest.approx(high)


def test_a_language_outside_the_pair_is_one_line(tiny, us_de, tmp_path):
    with pytest.raises(LexalignError) as info:
        wvs_job(tiny, us_de / "humans.parquet", tmp_path, "zh", "China")
    assert str(info.value) == (
        "config languages.zh.wvs_country: 'China' is not one of the compared countries (United States and Germany); "
        "add it to wvs.countries (two countries) or change the language's wvs_country"
    )
    assert not (tmp_path / "wvs").exists()


def test_the_report_builds_on_the_pair(scored, tmp_path):
    files = result_files(["tiny"], ["en", "de"], ["vanilla"], scored, framings=["interviewer"], modes=["logits"])
    results = readers.collect(["tiny"], ["en", "de"], ["vanilla"], wvs=files["wvs"])
    assert results.notes == [] and results.country_pair() == ("United States", "Germany")
    assert results.wvs[("tiny", "de", "vanilla")].target_key == "deu"
    report = {**defaults("report"), "bootstrap_resamples": 100, "dpi": 50, "figure_formats": ["png"]}
    index = build.build_report(
        results, tmp_path / "report" / "index.md", build.ReportSettings.from_config(report), seed=1, config={"run": {}}
    )
    tables = index.parent / "tables" / "tier2"
    distance = pl.read_csv(tables / "wvs_distance.csv")
    assert set(distance["first_country"]) == {"United States"} and set(distance["second_country"]) == {"Germany"}
    de = json.loads((scored / "wvs/tiny/de/vanilla/interviewer-logits/metrics.json").read_text(encoding="utf-8"))
    row = distance.filter(pl.col("language") == "de").row(0, named=True)
    assert row["distance_to_second"] == pytest.approx(de["results"]["model"]["deu"]["overall"]["distance"])
    assert set(pl.read_csv(tables / "wvs_metrics.csv")["humans"]) == {"United States", "Germany"}
    baselines = pl.read_csv(tables / "baselines.csv")
    assert set(baselines.filter(pl.col("language") == "de")["humans"]) == {"Germany"}
    tension = pl.read_csv(tables / "tension.csv").filter(pl.col("language") == "de").row(0, named=True)
    assert tension["closer_to_second"] == de["high_tension"]["closer_to"]["deu"]
    assert "closer to Germany" in (tables / "tension.md").read_text(encoding="utf-8")
    assert "distance to Germany humans (y)" in index.read_text(encoding="utf-8")
    assert (index.parent / "figures" / "tension" / "tiny.de.png").is_file()


def test_an_older_metrics_file_is_one_note(scored, tmp_path):
    folder = tmp_path / "wvs/tiny/en/vanilla/interviewer-logits"
    folder.mkdir(parents=True)
    metrics = json.loads((scored / "wvs/tiny/en/vanilla/interviewer-logits/metrics.json").read_text(encoding="utf-8"))
    (folder / "metrics.json").write_text(json.dumps({**metrics, "schema_version": 2}), encoding="utf-8")
    results = readers.collect(["tiny"], ["en"], ["vanilla"], wvs=[folder / "metrics.json"])
    assert results.wvs == {} and results.notes == [
        f"wvs tiny/en/vanilla/interviewer-logits: {folder / 'metrics.json'}: schema_version 2 (US/China keys) is older "
        "than this report reads (3: countries keyed by code); rerun the wvs job; left out"
    ]


def config_file(tmp_path: Path, **wvs) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["wvs"] = {**config.get("wvs", {}), **wvs}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_validate_config_checks_the_pair_and_the_languages(tmp_path):
    schema = SCHEMA
    load_config(config_file(tmp_path), schema, check_paths=False)  # the default pair fits the default languages
    path = config_file(tmp_path, countries=US_DE)
    with pytest.raises(LexalignError) as info:
        load_config(path, schema, check_paths=False)
    assert str(info.value) == (
        f"{path}: languages.zh.wvs_country: 'China' is not one of the compared countries (United States and "
        "Germany); add it to wvs.countries (two countries) or change the language's wvs_country"
    )
    with pytest.raises(LexalignError, match=r"wvs.countries: 'Prussia' is not a WVS-7 country"):
        load_config(config_file(tmp_path, countries=["Prussia", "China"]), schema, check_paths=False)
    with pytest.raises(LexalignError, match=r"wvs.countries: .*is too short"):
        load_config(config_file(tmp_path, countries=["China"]), schema, check_paths=False)


def test_validate_config_refuses_an_unknown_assoc_model_method(tmp_path):
    path = config_file(tmp_path, assoc_source="model", assoc_model_method="sft_typo")
    with pytest.raises(LexalignError) as info:
        load_config(path, SCHEMA, check_paths=False)
    assert str(info.value).startswith("config wvs.assoc_model_method: 'sft_typo' is not a method with tier-1 ")


def test_norm_templates_are_checked_like_the_others(tmp_path):
    """The norms_prompt keys are prompt templates like the rest: overridable in config, placeholders checked."""
    from lexalign.norms.templates import TEMPLATE_KEYS, prompt_templates

    assert {"wvs_norms", "wvs_norm", "wvs_norm_position"} <= set(TEMPLATE_KEYS)
    custom = prompt_templates("en", {"en": {"wvs_norms": "What people in {country} say:"}})
    assert custom["wvs_norms"] == "What people in {country} say:"
    with pytest.raises(LexalignError) as info:
        prompt_templates("en", {"en": {"wvs_norm": "{cue} -> {answer}"}})
    assert str(info.value) == (
        "config templates.prompts.en.wvs_norm: unknown placeholder(s) cue; allowed: answer, country, question"
    )
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["templates"] = {**config.get("templates", {}), "prompts": {"en": {"wvs_norm_position": "{position}/{n}"}}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    load_config(path, SCHEMA, check_paths=False)  # the schema knows the keys
