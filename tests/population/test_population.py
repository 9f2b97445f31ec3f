"""The model as a population of participants (issue 16): the SWOW-layout writer against ingest's readers,
the simulator on a tiny model, the comparison measures on hand-made norms, and bad input."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import ILLUSTRATIVE, tiny_config_dict

from lexalign.config import methods
from lexalign.config.grid import population_files, population_methods, temperature_label
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.norms.ingest import SWOW_EN_HEADER, ingest, pooled_counts
from lexalign.population.compare import compare as compare_job
from lexalign.population.compare import (
    cue_measures,
    entropy_bits,
    position_counts,
    position_measures,
    rarefied_types,
)
from lexalign.population.graph import graph_measures, power_law_fit
from lexalign.population.settings import CompareJob, CompareSettings, PopulationSettings, SimulateJob
from lexalign.population.simulate import (
    ingest_population,
    layout_for,
    prompts_for,
    sample_participants,
    select_cues,
    write_participants,
)
from lexalign.population.simulate import simulate as simulate_job

EN_FILTER = {"country": ["United States"], "nativeLanguage": ["United States"]}


def _head(source: Path, target: Path, lines: int = 30) -> Path:
    with open(source, encoding="utf-8") as handle:
        target.write_text("".join(handle.readline() for _ in range(lines)), encoding="utf-8")
    return target


def _layouts(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    """Every raw participant layout ingest reads, as a small human file plus its norms settings."""
    zh_word = tmp_path / "zh_word.csv"
    text = _head(ILLUSTRATIVE / "SWOWZH.R55.illustrative.csv", tmp_path / "zh_tmp.csv").read_text(encoding="utf-8")
    zh_word.write_text(text.replace('"cue"', '"word"', 1), encoding="utf-8")
    tab = tmp_path / "en_tab.tsv"
    tab.write_text(
        "participantID\tage\tcountry\tcue\tR1\tR2\tR3\n1\t30\tUnited States\tdog\tcat\tbone\tNA\n", encoding="utf-8"
    )
    custom = tmp_path / "custom.csv"
    custom.write_text("participantID,stimulus,first,second,third\n1,dog,cat,bone,bark\n", encoding="utf-8")
    upper = tmp_path / "upper.csv"
    upper.write_text("PARTICIPANTID,CUE,R1,R2,R3\n1,dog,cat,bone,bark\n", encoding="utf-8")
    return {
        "swow-en": (
            _head(ILLUSTRATIVE / "SWOW-EN.R100.illustrative.csv", tmp_path / "en.csv"),
            {"format": "raw", "filter": EN_FILTER},
        ),
        "swow-en-auto": (tmp_path / "en.csv", {"format": "auto", "filter": {}}),
        "swow-zh": (
            _head(ILLUSTRATIVE / "SWOWZH.R55.illustrative.csv", tmp_path / "zh.csv"),
            {"format": "raw", "filter": {}},
        ),
        "swow-zh-word-column": (zh_word, {"format": "raw"}),
        "tab-separated": (tab, {"format": "auto", "filter": {"country": ["United States"]}}),
        "renamed-columns": (
            custom,
            {"format": "raw", "columns": {"cue": "stimulus", "R1": "first", "R2": "second", "R3": "third"}},
        ),
        "upper-case-header": (upper, {}),
        "strength-file": (ILLUSTRATIVE / "strength.SWOW-EN.R123.illustrative.csv", {"format": "auto"}),
    }


def _random_rows(seed: int) -> list[tuple[int, str, list[str]]]:
    rng = random.Random(seed)
    words = ["cat", "bone", "bark", "leash", "ice cream", 'say "hi" now', "none", "null", "咖啡", "a, b"]
    rows = []
    for participant in range(1, 8):
        for cue in ("dog", "sun", "茶"):
            rows.append((participant, cue, rng.sample(words + [cue], rng.randint(0, 3))))
    return rows


@pytest.mark.parametrize(
    "name",
    [
        "swow-en",
        "swow-en-auto",
        "swow-zh",
        "swow-zh-word-column",
        "tab-separated",
        "renamed-columns",
        "upper-case-header",
        "strength-file",
    ],
)
def test_round_trip_every_layout_gives_identical_counts(tmp_path, name):
    human, norms = _layouts(tmp_path)[name]
    layout = layout_for(human, norms)
    rows = _random_rows(len(name))
    out = tmp_path / "participants.csv"
    assert write_participants(out, layout, rows) == len(rows)
    pooled, counted = pooled_counts(out, layout.ingest_norms)
    expected = Counter((cue, word) for _, cue, words in rows for word in words if word != cue)
    got = {(cue, response): count for cue, response, count in pooled.iter_rows()}
    assert got == dict(expected)
    assert counted["rows_in"] == counted["rows_after_filter"] == len(rows)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    if name == "strength-file":
        assert header.split(",") == [f'"{c}"' for c in SWOW_EN_HEADER]
    else:  # the human file's own header, same separator
        human_header = human.read_text(encoding="utf-8").splitlines()[0]
        assert header.replace('"', "").split(layout.separator) == human_header.replace('"', "").split(layout.separator)


def test_written_file_keeps_the_swow_conventions(tmp_path):
    layouts = _layouts(tmp_path)
    en = layout_for(*layouts["swow-en"])
    write_participants(tmp_path / "en.csv", en, [(7, "dog", ["cat"])])
    assert (tmp_path / "en.csv").read_text().splitlines()[1] == (
        '"1",1,7,NA,NA,"United States","United States",NA,NA,"dog","cat",NA,NA'
    )
    zh = layout_for(*layouts["swow-zh"])
    assert zh.raw_responses == ("R1Raw", "R2Raw", "R3Raw")
    write_participants(tmp_path / "zh.csv", zh, [(3, "茶", ["咖啡"])])
    line = (tmp_path / "zh.csv").read_text(encoding="utf-8").splitlines()[1]
    assert line.endswith('"茶","咖啡",NA,NA,"咖啡","#Missing","#Missing"')


def test_ingest_population_labels_splits_from_the_human_norms(tmp_path, swow_en):
    human_assoc, human_stats = tmp_path / "h.parquet", tmp_path / "h.json"
    ingest(
        swow_en,
        {"format": "raw", "filter": EN_FILTER},
        {"train": 0.7, "val": 0.2, "test": 0.1},
        42,
        human_assoc,
        human_stats,
    )
    table = pl.read_parquet(human_assoc)
    cues = select_cues(table, "test", 3, 42)
    layout = layout_for(swow_en, {"format": "raw", "filter": EN_FILTER})
    participants = tmp_path / "p.csv"
    write_participants(participants, layout, [(p, cue, ["alpha", "beta"]) for p in (1, 2) for cue in cues])
    counted = ingest_population(
        participants, layout.ingest_norms, human_assoc, tmp_path / "a.parquet", tmp_path / "s.json"
    )
    assert counted["split_cues"] == {"test": 3}
    model = pl.read_parquet(tmp_path / "a.parquet")
    assert model["count"].to_list() == [2] * 6 and set(model["split"]) == {"test"}
    assert json.loads((tmp_path / "s.json").read_text())["response_tokens"] == 12
    write_participants(participants, layout, [(1, "not a cue of the norms", ["x"])])
    with pytest.raises(LexalignError, match="is not in the human norms"):
        ingest_population(participants, layout.ingest_norms, human_assoc, tmp_path / "b.parquet", tmp_path / "b.json")
    assert not (tmp_path / "b.parquet").exists()


# --------------------------------------------------------------------------- the simulator on a tiny model


def _settings(**overrides) -> dict:
    from lexalign.config.validation import validate_config

    config = tiny_config_dict(Path("unused"))
    config["check_paths"] = False
    config["population"] = overrides
    return PopulationSettings.from_config(validate_config(config, SCHEMA)["population"])


def simulate(model_dir, associations, norms_path, norms, outputs, method, prompt_language, settings, seed=42, **job):
    """The population rule on one job (``job``: further SimulateJob fields)."""
    return simulate_job(
        SimulateJob(
            model_dir=str(model_dir),
            associations_path=str(associations),
            norms_path=str(norms_path),
            norms=norms,
            participants_out=[str(path) for path in outputs["participants"]],
            generations_out=str(outputs["generations"]),
            summary_out=str(outputs["summary"]),
            method=method,
            prompt_language=prompt_language,
            settings=settings,
            seed=seed,
            **job,
        )
    )


def compare(human, norms_path, norms, model, participants, summary, outputs, settings, seed=42):
    """The population_compare rule on one job."""
    return compare_job(
        CompareJob(
            human_associations_path=str(human),
            human_norms_path=str(norms_path),
            human_norms=norms,
            model_associations=[str(path) for path in model],
            participant_files=[str(path) for path in participants],
            population_summary_path=str(summary),
            outputs=outputs,
            settings=CompareSettings(**settings),
            seed=seed,
        )
    )


def test_sampling_is_seeded_and_gives_n_participants_by_three(tiny_prepared):
    from lexalign.models.loading import load_model

    loaded = load_model(tiny_prepared)
    settings = _settings(max_new_tokens=8, batch_size=16)
    templates = prompts_for("en")

    def run(seed):
        return sample_participants(
            loaded.model,
            loaded.tokenizer,
            loaded.stop_token_ids,
            ["dog", "sun"],
            templates,
            "en",
            participants=4,
            temperature=1.5,
            settings=settings,
            seed=seed,
        )

    first, again, other = run(1), run(1), run(2)
    assert first.height == 8 and first["participant"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert first["cue"].to_list() == ["dog", "sun"] * 4
    assert first["responses"].list.len().max() <= 3
    assert first.equals(again)
    assert not first["raw"].equals(other["raw"])
    with pytest.raises(LexalignError, match="participants"):
        sample_participants(
            loaded.model,
            loaded.tokenizer,
            loaded.stop_token_ids,
            ["dog"],
            templates,
            "en",
            participants=0,
            temperature=1.0,
            settings=settings,
            seed=1,
        )


def test_simulate_writes_one_swow_file_per_temperature(tiny_prepared, tmp_path, swow_zh):
    human_assoc = tmp_path / "h.parquet"
    norms = {"format": "raw", "filter": {}}
    ingest(swow_zh, norms, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, human_assoc, tmp_path / "h.json")
    settings = _settings(participants=3, temperatures=[0.7, 2.0], max_cues=4, max_new_tokens=8)
    outputs = {
        "participants": [tmp_path / "T0.7" / "p.csv", tmp_path / "T2" / "p.csv"],
        "generations": tmp_path / "g.parquet",
        "summary": tmp_path / "population.json",
    }
    baseline = methods.BASELINE
    summary = simulate(tiny_prepared, human_assoc, swow_zh, norms, outputs, baseline, "zh", settings, seed=3)
    assert list(summary["temperatures"]) == ["T0.7", "T2"]
    header = swow_zh.read_text(encoding="utf-8").splitlines()[0]
    for path in outputs["participants"]:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == header and len(lines) == 1 + 3 * 4
        pooled_counts(path, summary["ingest_norms"])  # ingest reads it (or says there is nothing usable)
    generations = pl.read_parquet(outputs["generations"])
    assert generations.height == 2 * 3 * 4 and sorted(set(generations["temperature"])) == [0.7, 2.0]
    with pytest.raises(LexalignError, match="no_such_method"):
        simulate(tiny_prepared, human_assoc, swow_zh, norms, outputs, "no_such_method", "zh", settings)


def test_simulate_loads_with_the_models_attention_and_stops_on_fewer_gpus(
    tiny_prepared, tmp_path, swow_zh, monkeypatch
):
    """A population job, like the tier-1 and WVS jobs, loads with models.<name>.attn_implementation and stops
    with one line when it sees fewer GPUs than its resources asked for."""
    from lexalign.core.snake import Rule
    from lexalign.models import generation

    human_assoc = tmp_path / "h.parquet"
    norms = {"format": "raw", "filter": {}}
    ingest(swow_zh, norms, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, human_assoc, tmp_path / "h.json")
    settings = _settings(participants=2, temperatures=[1.0], max_cues=2, max_new_tokens=4)
    outputs = {
        "participants": [tmp_path / "p.csv"],
        "generations": tmp_path / "g.parquet",
        "summary": tmp_path / "s.json",
    }
    asked = []
    load = generation.load_for_generation
    monkeypatch.setattr(generation, "load_for_generation", lambda *args: asked.append(args[3]) or load(*args))
    args = (tiny_prepared, human_assoc, swow_zh, norms, outputs, methods.BASELINE, "zh", settings)
    simulate(*args, attn_implementation="eager")
    assert asked == ["eager"]
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    with pytest.raises(LexalignError) as caught:
        simulate(*args, gpus=1, labels={"model": "tiny", "lang": "zh"})
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"population tiny/zh/{methods.BASELINE}: the job asked for 1 GPU(s)")
    rule = Rule(
        input={"model": "m", "associations": "a.parquet", "norms": "n.csv", "adapter": []},
        output={"participants": "p.csv", "generations": "g.parquet", "summary": "s.json"},
        params={
            "norms": norms,
            "prompt_language": "zh",
            "prompts": {},
            "dtype": "auto",
            "attn_implementation": "sdpa",
            "settings": dataclasses.asdict(settings),
            "seed": 1,
        },
        wildcards={"model": "tiny", "lang": "zh", "method": "sft"},
        resources={"gpu": 2},
    )
    job = SimulateJob.from_rule(rule)
    assert (job.attn_implementation, job.gpus, job.adapter_dir) == ("sdpa", 2, None)
    assert job.labels == {"model": "tiny", "lang": "zh"}  # population.json's keys; the method is its folder


def test_compare_job_labels_name_the_method():
    """compare.json names the job it compares: model, lang and method (its labels)."""
    from lexalign.core.snake import Rule

    rule = Rule(
        input={
            "human": "h.parquet",
            "norms": "n.csv",
            "model": ["m.parquet"],
            "participants": ["p.csv"],
            "summary": "s",
        },
        output={"compare": "c.json", "per_cue": "c.parquet"},
        params={
            "norms": {"format": "raw", "filter": {}},
            "settings": {"top_k": 5, "bootstrap_samples": 10, "graph_bootstrap_samples": 5},
            "seed": 1,
        },
        wildcards={"model": "tiny", "lang": "zh", "method": "sft"},
    )
    assert CompareJob.from_rule(rule).labels == {"model": "tiny", "lang": "zh", "method": "sft"}


# --------------------------------------------------------------------------- measures with known answers


HUMAN = {
    "dog": {"cat": 5, "bone": 3, "bark": 2, "leash": 1, "tail": 1},
    "sun": {"hot": 4, "moon": 2, "sky": 1},
    "tea": {"cup": 3, "green": 2, "milk": 1, "china": 1},
}


def test_identical_norms_score_as_identical():
    per_cue = cue_measures(HUMAN, HUMAN, k=3)
    for column in ("top_k_overlap", "typicality", "spearman", "types_ratio", "variety_ratio", "entropy_ratio"):
        assert per_cue[column].to_list() == pytest.approx([1.0, 1.0, 1.0]), column
    graph = graph_measures(HUMAN, HUMAN, resamples=20, seed=1)["measures"]
    assert graph["in_strength_rho"]["mean"] == pytest.approx(1.0)
    assert graph["pagerank_rho"]["mean"] == pytest.approx(1.0)
    assert graph["in_strength_ks"]["mean"] == pytest.approx(0.0)
    assert graph["model_clustering"]["mean"] == graph["human_clustering"]["mean"]


def test_measures_with_known_answers():
    model = {"dog": {"cat": 6, "ball": 6}, "sun": {"hot": 2, "moon": 1, "star": 1}}
    per_cue = {row["cue"]: row for row in cue_measures(model, HUMAN, k=2).iter_rows(named=True)}
    assert set(per_cue) == {"dog", "sun"}  # tea: the model gave nothing
    dog, sun = per_cue["dog"], per_cue["sun"]
    assert dog["top_k_overlap"] == 0.5 and dog["typicality"] == 0.5  # top 2: cat, ball vs cat, bone
    assert dog["model_entropy"] == pytest.approx(1.0) and dog["model_single_share"] == 0.0
    assert dog["types_ratio"] == pytest.approx(2 / 5) and dog["spearman"] is None  # one shared response
    assert sun["top_k_overlap"] == 1.0 and sun["human_single_share"] == pytest.approx(1 / 3)
    assert sun["spearman"] is None  # hot 2/4 vs 4/7, moon and star tie on the model side: 2 shared only
    assert entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert rarefied_types([1, 1, 1, 1], 2) == pytest.approx(2.0)
    assert rarefied_types([3, 1], 1) == pytest.approx(1.0)
    assert rarefied_types([2, 2], 2) == pytest.approx(1 + 2 * (1 - 1 / 6) - 1)  # 1 - C(2,2)/C(4,2) per type
    values = [1.0 * (1 - u) ** (-1 / 1.5) for u in [i / 2000 for i in range(2000)]]  # alpha = 2.5
    alpha, ks = power_law_fit(values)
    assert alpha == pytest.approx(2.5, abs=0.15) and ks < 0.05
    assert power_law_fit([2.0, 2.0]) == (None, None)


def test_position_measures_from_raw_files(tmp_path):
    layout = layout_for(*_layouts(tmp_path)["swow-en"])
    model_file, human_file = tmp_path / "m.csv", tmp_path / "h.csv"
    write_participants(model_file, layout, [(1, "dog", ["cat", "bone", "bark"]), (2, "dog", ["cat", "ball", "cat"])])
    write_participants(human_file, layout, [(1, "dog", ["bone", "cat", "tail"]), (2, "dog", ["cat", "tail"])])
    model = position_counts(model_file, layout.ingest_norms)
    human = position_counts(human_file, layout.ingest_norms)
    assert model.filter(pl.col("response") == "cat")["r1"].item() == 2
    assert model.filter(pl.col("response") == "cat")["r23"].item() == 1
    human_counts = {"dog": {"cat": 2, "tail": 2, "bone": 1}}
    row = position_measures(model, human, human_counts).row(0, named=True)
    assert row["model_r1_top_share"] == 1.0  # both R1s are "cat", the model's most frequent response
    assert row["model_r23_top_share"] == pytest.approx(1 / 4)
    assert row["model_r1_human_hit"] == 1.0 and row["model_r23_human_hit"] == pytest.approx(2 / 4)
    assert row["human_r1_top_share"] == pytest.approx(1 / 2) and row["human_r23_top_share"] == pytest.approx(1 / 3)
    strength = ILLUSTRATIVE / "strength.SWOW-EN.R123.illustrative.csv"
    assert position_counts(strength, {"format": "auto"}) is None


def test_compare_writes_every_measure_with_cis(tmp_path, swow_en):
    human_assoc = tmp_path / "h.parquet"
    norms = {"format": "raw", "filter": EN_FILTER}
    ingest(swow_en, norms, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, human_assoc, tmp_path / "h.json")
    human = pl.read_parquet(human_assoc)
    cues = select_cues(human, "test", 6, 42)
    tops = {cue: frame.sort("count", descending=True)["response"].to_list() for (cue,), frame in human.group_by("cue")}
    layout = layout_for(swow_en, norms)
    files, assoc = [], []
    for t, temperature in enumerate((1.0, 2.0)):
        rng = random.Random(t)
        rows = [(p, cue, rng.sample(tops[cue][:6] + ["zzz"], 3)) for p in range(1, 9) for cue in cues]
        files.append(tmp_path / temperature_label(temperature) / "participants.csv")
        write_participants(files[-1], layout, rows)
        assoc.append(files[-1].with_name("associations.parquet"))
        ingest_population(files[-1], layout.ingest_norms, human_assoc, assoc[-1], files[-1].with_name("stats.json"))
    summary = tmp_path / "population.json"
    summary.write_text(
        json.dumps(
            {
                "participants": 8,
                "responses_per_participant": 3,
                "ingest_norms": norms,
                "temperatures": {"T1": {"temperature": 1.0}, "T2": {"temperature": 2.0}},
            }
        )
    )
    outputs = {"compare": tmp_path / "compare.json", "per_cue": tmp_path / "per_cue.parquet"}
    settings = {"top_k": 5, "bootstrap_samples": 200, "graph_bootstrap_samples": 20}
    result = compare(human_assoc, swow_en, norms, assoc, files, summary, outputs, settings, seed=1)
    block = result["temperatures"]["T1"]
    assert block["n_cues"] == 6
    for name, value in {**block["per_cue"], **block["position"]}.items():  # means: the CI holds the mean
        assert value["mean"] is not None, name
        assert value["ci"] is None or value["ci"][0] <= value["mean"] + 1e-9 <= value["ci"][1] + 2e-9, name
    for name, value in block["graph"]["measures"].items():  # graph statistics: percentile CIs may not
        assert value["mean"] is not None and (value["ci"] is None or value["ci"][0] <= value["ci"][1]), name
    assert block["per_cue"]["typicality"]["ci"] is not None
    per_cue = pl.read_parquet(outputs["per_cue"])
    assert per_cue.height == 12 and sorted(set(per_cue["temperature"])) == [1.0, 2.0]
    assert json.loads(outputs["compare"].read_text())["schema_version"] == 1


# --------------------------------------------------------------------------- grid and bad input


def test_population_methods_follow_the_run_and_the_registry():
    names = list(methods.NAMES)
    in_context_norms = [m for m in methods.evaluated_by(methods.LEXICAL, names) if methods.get(m).context == "norms"]
    assert in_context_norms  # a participant is never shown demonstrations: the grid leaves these out
    assert population_methods(names, None) == [
        m for m in methods.evaluated_by(methods.LEXICAL, names) if m not in in_context_norms
    ]
    with pytest.raises(LexalignError, match="puts norms in context"):
        population_methods(names, in_context_norms)
    assert population_methods(names, []) == []
    first = methods.evaluated_by(methods.LEXICAL)[0]
    assert population_methods(names, [first]) == [first]
    assert population_methods([first], [first, *methods.evaluated_by(methods.LEXICAL)[1:]]) == [first]  # not run
    with pytest.raises(LexalignError, match="unknown method"):
        population_methods(names, ["no_such_method"])
    wvs_only = [m for m in methods.NAMES if methods.LEXICAL not in methods.REGISTRY[m].tiers]
    with pytest.raises(LexalignError, match="population.methods"):
        population_methods(names, wvs_only[:1] or ["no_such_method"])
    files = population_files(["m"], ["en"], population_methods(names, [first]), [1.0, 1.5])
    assert files["population"] == [f"results/population/m/en/{first}/compare.json"]
    assert files["participants"][1] == f"results/population/m/en/{first}/T1.5/participants.csv"


def test_bad_inputs_give_one_line(tmp_path):
    def one_line(excinfo):
        assert "\n" not in str(excinfo.value)

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(LexalignError, match="file is empty") as raised:
        layout_for(empty, {})
    one_line(raised)
    with pytest.raises(LexalignError, match="file not found"):
        layout_for(tmp_path / "absent.csv", {})
    with pytest.raises(LexalignError, match="population_instruction"):
        prompts_for("en", {"en": {"population_instruction": "no cue here"}})
    with pytest.raises(LexalignError, match="no population prompts"):
        prompts_for("xx")
    from lexalign.config.validation import validate_config

    config = tiny_config_dict(Path("unused"))
    config["check_paths"] = False
    config["population"] = {"participants": 0}
    with pytest.raises(LexalignError, match="population.participants") as raised:
        validate_config(config, SCHEMA)
    one_line(raised)
    with pytest.raises(LexalignError, match="no cue"):
        select_cues(pl.DataFrame({"cue": ["a"], "split": ["train"]}), "test", None, 1)


def test_workflow_dry_run_lists_the_population_rules(repo, tiny_config):
    config = yaml.safe_load(tiny_config.read_text(encoding="utf-8"))
    config["population"] = {"participants": 2, "temperatures": [1.0, 2.0], "max_cues": 2}
    tiny_config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(tiny_config),
            "-s",
            str(repo / "Snakefile"),
        ],
        cwd=tiny_config.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout + done.stderr
    for rule in ("population ", "population_ingest", "population_compare"):
        assert rule in out
    assert "T2/participants.csv" in out


def test_report_section_tables_figure_and_files(tmp_path, swow_en):
    from lexalign.report.population import section

    base = tmp_path / "results" / "population" / "m" / "en"
    human_assoc = tmp_path / "h.parquet"
    norms = {"format": "raw", "filter": EN_FILTER}
    ingest(swow_en, norms, {"train": 0.7, "val": 0.2, "test": 0.1}, 42, human_assoc, tmp_path / "h.json")
    human = pl.read_parquet(human_assoc)
    cues = select_cues(human, "test", 5, 42)
    tops = {cue: frame.sort("count", descending=True)["response"].to_list() for (cue,), frame in human.group_by("cue")}
    layout = layout_for(swow_en, norms)
    compared = []
    for method in methods.evaluated_by(methods.LEXICAL)[:2]:
        files, assoc, temperatures = [], [], {}
        for temperature in (1.0, 2.0):
            rng = random.Random(temperature)
            label = temperature_label(temperature)
            files.append(base / method / label / "participants.csv")
            rows = [(p, cue, rng.sample(tops[cue][:8], 3)) for p in range(1, 6) for cue in cues]
            write_participants(files[-1], layout, rows)
            assoc.append(files[-1].with_name("associations.parquet"))
            ingest_population(files[-1], norms, human_assoc, assoc[-1], files[-1].with_name("stats.json"))
            temperatures[label] = {"temperature": temperature}
        summary = base / method / "population.json"
        summary.write_text(json.dumps({"participants": 5, "ingest_norms": norms, "temperatures": temperatures}))
        outputs = {"compare": base / method / "compare.json", "per_cue": base / method / "per_cue.parquet"}
        settings = {"top_k": 5, "bootstrap_samples": 100, "graph_bootstrap_samples": 5}
        compare(human_assoc, swow_en, norms, assoc, files, summary, outputs, settings, seed=1)
        compared.append(outputs["compare"])
    newer = base / "newer" / "compare.json"
    newer.parent.mkdir()
    newer.write_text(json.dumps({"schema_version": 99, "temperatures": {}}))
    notes: list[str] = []
    build, report_dir = tmp_path / "build", tmp_path / "results" / "report"
    lines = section([*compared, newer, base / "absent" / "compare.json"], build, report_dir, 50, ["png"], notes)
    text = "\n".join(lines)
    long = pl.read_csv(build / "tables" / "population" / "population.csv")
    assert set(long["measure"]) >= {"typicality", "variety_ratio", "top_k_overlap", "spearman", "entropy_ratio"}
    assert long.height == 2 * 2 * 8 and long["ci_low"].null_count() < long.height
    assert (build / "tables" / "population" / "population_structure.md").is_file()
    assert (build / "figures" / "population" / "m.en.png").is_file()
    assert "(../population/m/en/" in text and "participants.csv" in text
    assert "closest to 1 (human variety)" in text and text.count(" T = ") == 2
    assert len(notes) == 2 and "schema_version 99" in notes[0] and "file not found" in notes[1]


def test_population_settings_each_read_their_own_keys():
    section = {**dataclasses.asdict(_settings()), "top_k": 5, "bootstrap_samples": 10, "graph_bootstrap_samples": 2}
    section["methods"], section["resources"] = ["vanilla"], {}
    assert PopulationSettings.from_config(section) == _settings()
    assert CompareSettings.from_config(section) == CompareSettings(5, 10, 2)
    with pytest.raises(LexalignError, match=r"unknown key population\.participant$"):
        PopulationSettings.from_config({**section, "participant": 3})
