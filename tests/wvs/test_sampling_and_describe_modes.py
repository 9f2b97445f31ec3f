"""Sample and describe mode through the wvs job on a tiny random model: what reaches the generator, what
answers.parquet and metrics.json keep, and every mode of a framing on one loaded model."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from test_wvs_evaluate import job_for, schema_settings

import lexalign.models.generation as generation
from lexalign.norms.templates import prompt_templates
from lexalign.wvs.evaluate import evaluate, evaluate_modes
from lexalign.wvs.metrics import js_distance
from lexalign.wvs.prompts import country_name
from lexalign.wvs.sampling import item_seed
from lexalign.wvs.settings import MODES


def _run(model, humans, out, mode, **settings):
    settings = schema_settings(**{"max_items": 4, "high_tension_n": 2, **settings})
    metrics = evaluate(job_for(model, humans, out, mode=mode), settings)
    return metrics, pl.read_parquet(out / "answers.parquet")


def _canned(monkeypatch, texts, calls):
    """The generator answers ``texts`` in turn (a random tiny model answers nonsense); ``calls`` records it."""
    answers = iter(texts * 100)

    def fake(model, tokenizer, conversations, **kwargs):
        calls.append({"conversations": conversations, **kwargs})
        return [generation.Generation(next(answers), 2, True) for _ in conversations]

    monkeypatch.setattr(generation, "generate_on_model", fake)


def test_sample_mode_asks_n_seeded_answers_per_item_in_one_call(tiny_prepared, humans, tmp_path, monkeypatch):
    calls = []
    _canned(monkeypatch, ["1", "1", "2", "I'm sorry, I can't answer that.", "banana"], calls)
    metrics, answers = _run(
        tiny_prepared, humans, tmp_path, "sample", sample_n=5, sample_temperature=0.7, sample_seed=9, max_new_tokens=6
    )
    assert len(calls) == answers.height == 4  # one generate call per item, its prompt N times
    for call, item in zip(calls, answers["item_id"]):
        assert len(call["conversations"]) == call["batch_size"] == 5
        assert call["conversations"][0] == call["conversations"][4]
        assert call["do_sample"] and call["temperature"] == 0.7 and call["max_new_tokens"] == 6
        assert call["seed"] == item_seed(9, item)
    first = answers.row(0, named=True)
    assert first["n_samples"] == 5 and first["sample_counts"][:2] == [2, 1] and sum(first["sample_counts"]) == 3
    assert first["probs"][:2] == pytest.approx([2 / 3, 1 / 3]) and first["answer_position"] == 1
    assert (first["refusal_share"], first["no_option_share"], first["invalid_share"]) == (0.2, 0.2, 0.4)
    assert first["sample_outcomes"] == ["option", "option", "option", "refusal", "no valid option"]
    # scored like every mode: the per-item metrics of the sampled distribution against each country
    assert first["js_usa"] == pytest.approx(js_distance(first["probs"], first["human_usa"]))
    block = metrics["sample"]
    decoding = (block["n"], block["temperature"], block["seed"], block["top_p"], block["max_new_tokens"])
    assert decoding == (5, 0.7, 9, 1.0, 6) and block["answers"] == 20
    assert block["shares"] == pytest.approx({"refusal": 0.2, "no_valid_option": 0.2, "invalid": 0.4})
    assert metrics["text_outcomes"] == {"option": 12, "refusal": 4, "no valid option": 4}
    assert metrics["mode"] == "sample" and metrics["n_scored"] == 4 and "sampled answers" in metrics["score"]
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert written["sample"] == json.loads(json.dumps(block))


def test_sample_mode_on_the_model_is_seeded(tiny_prepared, humans, tmp_path):
    settings = {"sample_n": 3, "max_new_tokens": 4, "max_items": 2}
    _, first = _run(tiny_prepared, humans, tmp_path / "a", "sample", **settings)
    _, again = _run(tiny_prepared, humans, tmp_path / "b", "sample", **settings)
    _, other = _run(tiny_prepared, humans, tmp_path / "c", "sample", sample_seed=7, **settings)
    assert first["n_samples"].to_list() == [3, 3]
    assert first["sample_texts"].to_list() == again["sample_texts"].to_list()
    assert first["sample_texts"].to_list() != other["sample_texts"].to_list()


def test_describe_mode_asks_for_the_countrys_shares_and_parses_them(tiny_prepared, humans, tmp_path, monkeypatch):
    calls = []
    texts = ["1. 60%\n2. 30%", "I'm sorry, but I can't estimate that.", "Most would agree.", "1: 1/4, 2: 1/4"]
    _canned(monkeypatch, texts, calls)
    metrics, answers = _run(tiny_prepared, humans, tmp_path, "describe", describe_max_new_tokens=40)
    assert [call["max_new_tokens"] for call in calls] == [40] and not calls[0].get("do_sample")
    templates = prompt_templates("en")
    instruction = templates["wvs_describe_instruction"].format(country=country_name(templates, "United States"))
    assert all(instruction in prompt and templates["wvs_instruction"] not in prompt for prompt in answers["prompt"])
    assert answers["text_outcome"].to_list() == ["stated", "refusal", "no usable numbers", "stated"]
    assert answers["answered"].to_list() == [True, False, False, True]
    first = answers.row(0, named=True)
    assert first["stated_raw"][:2] == [60.0, 30.0] and first["stated_raw_sum"] == 90.0
    assert first["probs"][:2] == pytest.approx([60 / 90, 30 / 90]) and sum(first["probs"]) == pytest.approx(1.0)
    assert answers.row(3, named=True)["stated_raw_sum"] == 50.0
    assert answers["stated_raw"][1] is None
    block = metrics["describe"]
    assert block["invalid_share"] == 0.5 and block["raw_sum"]["items_not_100"] == 2
    assert metrics["text_outcomes"] == {"stated": 2, "refusal": 1, "no usable numbers": 1}
    assert metrics["max_new_tokens"] == 40 and metrics["n_scored"] == 2


def test_every_mode_of_a_framing_on_one_loaded_model(tiny_prepared, humans, tmp_path):
    settings = schema_settings(max_items=3, high_tension_n=2, max_new_tokens=3, sample_n=2, describe_max_new_tokens=6)
    jobs = [job_for(tiny_prepared, humans, tmp_path / f"interviewer-{mode}", mode=mode) for mode in MODES]
    together = evaluate_modes(jobs, settings)
    assert [m["mode"] for m in together] == list(MODES) == ["logits", "generate", "sample", "describe"]
    for job in jobs:
        written = json.loads(Path(job.metrics_out).read_text(encoding="utf-8"))
        answers = pl.read_parquet(job.answers_out)
        assert written["mode"] == job.mode and answers.height == written["n_items"] == 3
        assert {"js_usa", "emd_norm_chn", "answered"} <= set(answers.columns)
    assert pl.read_parquet(jobs[2].answers_out)["n_samples"].to_list() == [2, 2, 2]
    assert "stated_raw_sum" in pl.read_parquet(jobs[3].answers_out).columns


@pytest.mark.slow
def test_the_workflow_writes_every_mode_and_the_report_reads_them(repo, tmp_path, tiny_config):
    """.test/config/wvs_modes.yaml over the tests' tiny config: the wvs rule writes each of the four modes'
    answers and metrics under its own {framing}-{mode}/ folder, and the report's mode tables read all four."""
    from test_workflow import snakemake, write_config

    from lexalign.config.grid import result_files
    from lexalign.report import readers, wvs_modes

    config = yaml.safe_load(tiny_config.read_text(encoding="utf-8"))
    overlay = yaml.safe_load((repo / ".test/config/wvs_modes.yaml").read_text(encoding="utf-8"))
    for section, values in overlay.items():
        config[section] |= values
    folder = "results/wvs/tiny/en/vanilla"
    targets = [f"{folder}/interviewer-{mode}/metrics.json" for mode in MODES]
    result = snakemake(repo, tmp_path, *targets, configfile=write_config(tmp_path / "modes.yaml", config))
    assert result.returncode == 0, result.stderr[-3000:]
    for mode in MODES:
        written = json.loads((tmp_path / folder / f"interviewer-{mode}/metrics.json").read_text(encoding="utf-8"))
        answers = pl.read_parquet(tmp_path / folder / f"interviewer-{mode}/answers.parquet")
        assert written["mode"] == mode and answers.height == written["n_items"] == 4
    sampled = json.loads((tmp_path / folder / "interviewer-sample/metrics.json").read_text(encoding="utf-8"))
    assert (sampled["sample"]["n"], sampled["sample"]["seed"], sampled["sample"]["answers"]) == (3, 7, 12)
    assert sampled["max_new_tokens"] == 4
    described = json.loads((tmp_path / folder / "interviewer-describe/metrics.json").read_text(encoding="utf-8"))
    assert described["max_new_tokens"] == 12 and set(described["text_outcomes"]) == {
        "stated",
        "refusal",
        "no usable numbers",
    }
    files = result_files(["tiny"], ["en"], ["vanilla"], tmp_path / "results", framings=["interviewer"], modes=MODES)
    results = readers.collect(["tiny"], ["en"], ["vanilla"], wvs=files["wvs"])
    shown, agreement, _ = wvs_modes.tables(results, 50, 0.95, 1)
    assert shown.display["mode"].to_list() == list(MODES) and agreement.display.height == 6


def test_the_paper_config_asks_every_mode(repo):
    paper = yaml.safe_load((repo / "config/paper.yaml").read_text(encoding="utf-8"))
    assert paper["wvs"]["modes"] == list(MODES) and paper["wvs"]["framings"][0] == "interviewer"
