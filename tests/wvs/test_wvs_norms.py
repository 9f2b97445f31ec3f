"""norms_prompt (WVS items split into norm sources and evaluated items) and assoc_prompt's assoc_source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import tiny_config_dict

from lexalign.config import methods
from lexalign.config.derive import assoc_model_method
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.norms.templates import prompt_templates
from lexalign.wvs.evaluate import evaluate
from lexalign.wvs.humans import read_humans
from lexalign.wvs.norms import (
    EVALUATION,
    SOURCE,
    check_no_leakage,
    norm_sentence,
    norm_sentences,
    on_shared_items,
    plan,
    shared_items,
    split_items,
)
from lexalign.wvs.prompts import AssociationContext
from lexalign.wvs.settings import NormsPromptSettings, WvsJob, WvsSettings
from lexalign.wvs.sources.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
WVS_CSV = REPO / "data" / "illustrative" / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv"
SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
EN, ZH = prompt_templates("en"), prompt_templates("zh")
ITEMS = {item["item_id"]: item for item in load_catalog()}
NORMS_METHOD = next(name for name, m in methods.REGISTRY.items() if m.context == "norms")
ASSOC_METHOD = next(name for name, m in methods.REGISTRY.items() if m.context == "associations")


def defaults(spec: dict) -> dict:
    """The schema's defaults of an object, nested objects included (the only defaults)."""
    out = {}
    for key, sub in spec["properties"].items():
        if "default" in sub:
            out[key] = defaults(sub) if sub.get("type") == "object" and "properties" in sub else sub["default"]
    return out


def settings(**overrides) -> WvsSettings:
    return WvsSettings.from_config({**defaults(SCHEMA_DOC["properties"]["wvs"]), **overrides})


def with_shares(item_id: str, us: list[float], china: list[float]) -> dict:
    return {**ITEMS[item_id], "us": us, "china": china}


# --------------------------------------------------------------------------------------------------
# The split, the leakage check, the norm sentences


def test_registry_has_norms_prompt_in_both_tiers():
    method = methods.get(NORMS_METHOD)
    assert method.tiers == {methods.WVS, methods.LEXICAL} and not method.trained and method.context == "norms"
    assert NORMS_METHOD in methods.evaluated_by(methods.WVS) and NORMS_METHOD in methods.evaluated_by("lexical")


def test_split_is_seeded_disjoint_and_order_free():
    ids = [f"Q{i}" for i in range(1, 101)]
    parts = split_items(ids, 0.3, 42)
    assert set(parts) == set(ids) and set(parts.values()) == {SOURCE, EVALUATION}
    assert sum(p == SOURCE for p in parts.values()) == 30
    assert split_items(reversed(ids), 0.3, 42) == parts  # the set decides, not the order
    assert split_items(ids, 0.3, 43) != parts
    # at least one item on each side, whatever the share
    assert sum(p == SOURCE for p in split_items(ids[:3], 0.01, 1).values()) == 1
    assert sum(p == EVALUATION for p in split_items(ids[:3], 0.99, 1).values()) == 1
    with pytest.raises(LexalignError, match="at least 2 items"):
        split_items(["Q1"], 0.5, 1)


def test_leakage_check_fires_on_an_overlap():
    check_no_leakage(["Q1", "Q2"], ["Q3"])
    with pytest.raises(RuntimeError, match=r"norms split leakage: 1 items .*\(Q2\)"):
        check_no_leakage(["Q1", "Q2"], ["Q2", "Q3"])


def test_norm_sentences_in_english_and_chinese():
    item = with_shares("Q1", [0.6, 0.3, 0.05, 0.05], [0.2, 0.5, 0.2, 0.1])
    assert norm_sentence(item, "us", EN, "en", "United States") == (
        '- Asked "How important is the following in your life: family?", people in the United States '
        'most often answer "Very important".'
    )
    assert norm_sentence(item, "china", ZH, "zh", "China") == (
        "- 被问到“以下这一项在您的生活中有多重要：家庭？”时，中国的人最常回答“比较重要”。"
    )
    # a scale point without a label is named by its position
    scale = with_shares("Q106", [0.0] * 4 + [1.0] + [0.0] * 5, [0.1] * 10)
    assert 'most often answer "5 on a scale from 1 to 10"' in norm_sentence(scale, "us", EN, "en", "United States")
    assert "“1到10的量表上的5”" in norm_sentence(scale, "us", ZH, "zh", "China")
    # the clearest majorities first, at most max_norms of them
    weak = with_shares("Q2", [0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1])
    sentences, used = norm_sentences([weak, item, scale], "us", EN, "en", "United States", 2)
    assert used == ["Q106", "Q1"] and len(sentences) == 2
    # a prompt language without the templates, or with a wrong placeholder: one line naming the key
    with pytest.raises(LexalignError, match=r"templates.prompts.xx: no wvs_norms template"):
        norm_sentence(item, "us", {k: v for k, v in EN.items() if k != "wvs_norms"}, "xx", "United States")
    with pytest.raises(LexalignError, match=r"wvs_norm: unknown placeholder\(s\) cue"):
        norm_sentence(item, "us", {**EN, "wvs_norm": "{cue}"}, "en", "United States")


def test_plan_asks_the_evaluation_part_of_the_selected_items(humans):
    table = read_humans(humans).to_dicts()
    selected = table[::10]
    norms = NormsPromptSettings.from_config(defaults(SCHEMA_DOC["properties"]["wvs"])["norms"])
    asked, sentences, record = plan(table, selected, "usa", norms, EN, "en", "United States")
    parts = split_items((i["item_id"] for i in table), record["source_share"], record["seed"])
    assert [i["item_id"] for i in asked] == [i["item_id"] for i in selected if parts[i["item_id"]] == EVALUATION]
    assert record["n_asked"] + record["n_not_asked"] == len(selected) and record["n_asked"] >= 1
    assert all(parts[i] == SOURCE for i in record["norm_items"]) and len(sentences) == record["max_norms"]
    assert record["n_source_items"] == round(record["source_share"] * len(table))
    with pytest.raises(LexalignError, match=r"wvs.norms.source_share: 0.99 leaves none of the 1 items"):
        only = [next(i for i in table if parts[i["item_id"]] == SOURCE)]
        plan(table, only, "usa", NormsPromptSettings(0.99, 42, 3), EN, "en", "United States")


def test_bad_norms_settings_are_one_line():
    for bad, key in (({"source_share": 1.5}, "source_share"), ({"seed": -1}, "seed"), ({"max_norms": 0}, "max_norms")):
        with pytest.raises(LexalignError, match=f"config wvs.norms.{key}: ") as err:
            NormsPromptSettings.from_config({"source_share": 0.3, "seed": 1, "max_norms": 3, **bad})
        assert "\n" not in str(err.value)
    with pytest.raises(LexalignError, match=r"^config wvs.norms: unknown key wvs.norms.max_norm$"):
        NormsPromptSettings.from_config({"source_share": 0.3, "seed": 1, "max_norms": 3, "max_norm": 2})
    with pytest.raises(LexalignError, match=r"^config wvs.norms: no wvs.norms.seed "):
        NormsPromptSettings.from_config({"source_share": 0.3, "max_norms": 3})


def test_shared_items():
    assert shared_items({"vanilla": ["Q1", "Q2", "Q3"], "norms": ["Q3", "Q1"]}) == ["Q1", "Q3"]
    assert shared_items({}) == []


def test_answers_on_shared_items():
    full = pl.DataFrame({"item_id": ["Q1", "Q2", "Q3"], "js_us": [0.1, 0.2, 0.3]})
    part = pl.DataFrame({"item_id": ["Q3", "Q1"], "js_us": [0.5, 0.6]})
    other = pl.DataFrame({"item_id": ["Q2"], "js_us": [0.9]})
    answers = {
        ("m", "en", "vanilla"): full,
        ("m", "en", "norms"): part,
        ("m", "zh", "vanilla"): other,
        ("m", "zh", "x"): None,
    }
    out = on_shared_items(answers, lambda key: key[:2])
    assert out[("m", "en", "vanilla")]["item_id"].to_list() == ["Q1", "Q3"]
    assert out[("m", "en", "norms")] is part and out[("m", "zh", "vanilla")] is other and out[("m", "zh", "x")] is None


# --------------------------------------------------------------------------------------------------
# End to end on a tiny model


@pytest.fixture(scope="module")
def wvs_model(tmp_path_factory) -> Path:
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("norms-model")
    return prepare_model("tiny", {"path": str(build_tiny_model(root / "raw"))}, root / "prepared")


def run(wvs_model, humans, tmp_path, overrides=None, **kwargs):
    args = {"lang": "en", "method": "vanilla", "prompt_language": "en", "country": "United States", **kwargs}
    out = tmp_path / args["method"] / args["lang"]
    job = WvsJob(
        wvs_model,
        humans,
        out / "metrics.json",
        out / "answers.parquet",
        model_name="tiny",
        framing="interviewer",
        mode="logits",
        **args,
    )
    evaluate(job, settings(**{"max_items": 24, "high_tension_n": 3, **(overrides or {})}))
    return json.loads((out / "metrics.json").read_text(encoding="utf-8")), pl.read_parquet(out / "answers.parquet")


def test_norms_prompt_end_to_end(wvs_model, humans, tmp_path):
    vanilla, _ = run(wvs_model, humans, tmp_path)
    metrics, answers = run(wvs_model, humans, tmp_path, method=NORMS_METHOD)
    context = metrics["norms_context"]
    assert vanilla["norms_context"] is None and len(vanilla["items_evaluated"]) == 24
    evaluated = metrics["items_evaluated"]
    assert evaluated == answers["item_id"].to_list() and metrics["n_items"] == len(evaluated) == context["n_asked"]
    assert 0 < len(evaluated) < 24 and set(evaluated) < set(vanilla["items_evaluated"])
    assert not set(evaluated) & set(context["norm_items"]) and context["leakage_check"].startswith("passed")
    assert shared_items({"vanilla": vanilla["items_evaluated"], "norms": evaluated}) == sorted(evaluated)
    prompt = answers["prompt"][0]
    assert "How people in the United States most often answered some other questions of this survey:\n- Asked" in prompt
    assert all(sentence in prompt for sentence in context["norms"]) and len(context["norms"]) == 12
    # Chinese norms for China
    zh, zh_answers = run(
        wvs_model, humans, tmp_path, method=NORMS_METHOD, lang="zh", prompt_language="zh", country="China"
    )
    assert "中国的人对本调查中其他一些问题最常见的回答：\n- 被问到“" in zh_answers["prompt"][0]
    assert zh["items_evaluated"] == evaluated  # the same split whatever the language


def test_assoc_source_model_reads_the_models_own_lists(wvs_model, humans, tmp_path):
    generations = tmp_path / "generations.parquet"
    pl.DataFrame(
        {
            "cue": ["family", "Work", "empty"],
            "prompt": [[], [], []],
            "raw": ["Love, home, love", "job, money", "..."],
            "parsed": [["love", "home", "love", "family", "kids"], ["job", "money"], []],
            "n_tokens": [5, 3, 1],
            "finished": [True, True, False],
        },
        schema_overrides={"prompt": pl.List(pl.Struct({"role": pl.String, "content": pl.String}))},
    ).write_parquet(generations)
    context = AssociationContext.from_generations(generations, "en", 2, 3, EN)
    assert context.top == {"family": ["love", "home"], "work": ["job", "money"]}  # deduped, the cue itself dropped
    metrics, answers = run(
        wvs_model,
        humans,
        tmp_path,
        {"assoc_source": "model", "assoc_model_method": "sft", "max_items": 6},
        method=ASSOC_METHOD,
        associations_path=generations,
    )
    block = metrics["associations_context"]
    assert block["source"] == "model" and block["model_method"] == "sft" and block["cues_available"] == 2
    q1 = answers.filter(pl.col("item_id") == "Q1").row(0, named=True)
    assert q1["assoc_cues"] == ["family"] and "\nfamily: love, home, kids\n" in q1["prompt"]
    empty = tmp_path / "empty.parquet"
    pl.DataFrame({"cue": ["a"], "parsed": [[]]}, schema_overrides={"parsed": pl.List(pl.String)}).write_parquet(empty)
    assert AssociationContext.from_generations(empty, "en", 2, 3, EN).top == {}  # nothing to show, not an error


def test_assoc_model_method_is_checked_against_the_registry():
    assert assoc_model_method({"assoc_source": "humans", "assoc_model_method": "nonsense"}, ["vanilla"]) is None
    first = methods.trained(["vanilla", *methods.TRAINED[::-1]])[0]
    assert assoc_model_method({"assoc_source": "model", "assoc_model_method": None}, methods.TRAINED[::-1]) == first
    with pytest.raises(LexalignError, match="config wvs.assoc_model_method: 'chatty' is not a method with tier-1"):
        assoc_model_method({"assoc_source": "model", "assoc_model_method": "chatty"}, ["vanilla"])
    with pytest.raises(LexalignError, match="config wvs.assoc_model_method: .* no trained method"):
        assoc_model_method({"assoc_source": "model", "assoc_model_method": None}, ["vanilla"])
    with pytest.raises(LexalignError, match="config wvs.assoc_source: 'crowd'"):
        settings(assoc_source="crowd")


def _dry_run(tmp_path, tiny_model_dir, wvs: dict, methods_: list[str]):
    config = tiny_config_dict(tiny_model_dir)
    config["run"]["methods"] = methods_
    config["wvs"].update(wvs)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    command += ["--configfile", str(path), "-n", "--cores", "1"]
    target = f"results/wvs/tiny/en/{ASSOC_METHOD}/interviewer-logits/metrics.json"
    return subprocess.run([*command, target], capture_output=True, text=True, timeout=300)


def test_workflow_wires_the_models_generations(tmp_path, tiny_model_dir):
    result = _dry_run(tmp_path, tiny_model_dir, {"assoc_source": "model"}, ["vanilla", "dpo", "sft"])
    assert result.returncode == 0, result.stderr[-2000:]
    first = methods.trained(["dpo", "sft"])[0]
    wvs_job = (result.stdout + result.stderr).split("rule wvs:")[1].split("output:")[0]
    assert f"results/lexical/tiny/en/{first}/generations.parquet" in wvs_job
    bad = _dry_run(tmp_path, tiny_model_dir, {"assoc_source": "model", "assoc_model_method": "chatty"}, ["vanilla"])
    assert bad.returncode != 0
    lines = [line for line in bad.stderr.splitlines() if "chatty" in line]
    assert len(lines) == 1 and "config wvs.assoc_model_method" in lines[0] and "Traceback" not in bad.stderr
    share = _dry_run(tmp_path, tiny_model_dir, {"norms": {"source_share": 1.5}}, ["vanilla"])
    assert share.returncode != 0 and "wvs.norms.source_share" in share.stderr and "Traceback" not in share.stderr


def test_schema_run_methods_are_the_registry():
    for section in ("run", "population"):
        assert SCHEMA_DOC["properties"][section]["properties"]["methods"]["items"]["enum"] == list(methods.NAMES)
