"""The wvs stage's typed settings and jobs: built once from the validated config or the rule, a misspelt or
missing key named with its dotted path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lexalign.config.validation import load_config
from lexalign.core.errors import LexalignError
from lexalign.core.settings import field_names
from lexalign.core.snake import Rule
from lexalign.wvs.humans import HumansJob, run
from lexalign.wvs.settings import (
    HumansSettings,
    NormsPromptSettings,
    WvsFramingJob,
    WvsJob,
    WvsSettings,
    WvsSource,
)

REPO = Path(__file__).resolve().parents[2]
WVS_CSV = REPO / "data" / "illustrative" / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv"


@pytest.fixture(scope="module")
def section() -> dict:
    """The default config's wvs section, validated (schema defaults filled in)."""
    return load_config(REPO / "config" / "config.yaml", check_paths=False)["wvs"]


def test_settings_read_the_validated_section_and_leave_the_other_rules_keys(section):
    settings = WvsSettings.from_config(section)
    assert settings.norms == NormsPromptSettings(**section["norms"])
    assert settings.batch_size == section["batch_size"] and settings.vllm == section["vllm"]
    humans = HumansSettings.from_config(section)
    assert humans.source == WvsSource(**section["source"])
    assert humans.countries == section["countries"] and humans.bad_rows == section["bad_rows"]
    # the rule's params: only the keys the job reads
    assert WvsSettings.from_config({key: section[key] for key in field_names(WvsSettings)}) == settings


@pytest.mark.parametrize(
    ("build", "change", "message"),
    [
        (WvsSettings, {"batch_sise": 8}, "config wvs: unknown key wvs.batch_sise"),
        (WvsSettings, {"batch_size": None}, "config wvs: no wvs.batch_size (validate"),
        (WvsSettings, {"norms": {"source_share": 0.3, "seed": 1}}, "config wvs.norms: no wvs.norms.max_norms"),
        (HumansSettings, {"bad_row": "skip"}, "config wvs: unknown key wvs.bad_row"),
        (HumansSettings, {"countries": None}, "config wvs: no wvs.countries"),
        (HumansSettings, {"source": {"type": "wvs_csv", "pth": "x.csv"}}, "config wvs.source: no wvs.source.path"),
    ],
)
def test_settings_name_a_misspelt_or_missing_key(section, build, change, message):
    changed = {**section, **{key: value for key, value in change.items() if value is not None}}
    for key in [key for key, value in change.items() if value is None]:
        del changed[key]
    with pytest.raises(LexalignError) as info:
        build.from_config(changed)
    assert str(info.value).startswith(message)


def test_framing_job_from_the_rule_pairs_every_mode_with_its_outputs(section, tmp_path):
    params_settings = {key: section[key] for key in field_names(WvsSettings)}
    folders = [tmp_path / f"interviewer-{mode}" for mode in ("logits", "generate")]
    rule = Rule(
        input={"model": "m", "adapter": [], "humans": "h.parquet", "associations": "a.parquet"},
        output={
            "metrics": [str(folder / "metrics.json") for folder in folders],
            "answers": [str(folder / "answers.parquet") for folder in folders],
        },
        params={
            "modes": ["logits", "generate"],
            "prompt_language": "en",
            "country": "United States",
            "dtype": "float32",
            "attn_implementation": None,
            "settings": params_settings,
            "prompts": {"en": {}},
        },
        wildcards={"model": "tiny", "lang": "en", "method": "vanilla", "framing": "interviewer"},
        threads=2,
    )
    job = WvsFramingJob.from_rule(rule)
    assert job.settings == WvsSettings.from_config(section) and job.prompts == {"en": {}}
    assert [(j.mode, j.metrics_out, j.answers_out) for j in job.modes] == [
        (mode, str(folder / "metrics.json"), str(folder / "answers.parquet"))
        for mode, folder in zip(("logits", "generate"), folders)
    ]
    assert job.modes[0] == WvsJob(
        "m",
        "h.parquet",
        str(folders[0] / "metrics.json"),
        str(folders[0] / "answers.parquet"),
        lang="en",
        method="vanilla",
        prompt_language="en",
        country="United States",
        model_name="tiny",
        framing="interviewer",
        mode="logits",
        adapter_dir=None,
        associations_path="a.parquet",
        dtype="float32",
        threads=2,
    )
    with pytest.raises(LexalignError, match="^wvs: 1 modes but 2 metrics and 2 answers outputs$"):
        WvsFramingJob.from_rule(Rule(rule.input, rule.output, {**rule.params, "modes": ["logits"]}, rule.wildcards))


def test_humans_job_from_the_rule_writes_the_table(tmp_path):
    params = {
        "source": {"path": str(WVS_CSV), "type": "wvs_csv"},
        "catalog": None,
        "bad_rows": "skip",
        "countries": ["United States", "China"],
    }
    outputs = {"humans": str(tmp_path / "humans.parquet"), "notes": str(tmp_path / "humans.json")}
    job = HumansJob.from_rule(Rule(input={"source": str(WVS_CSV)}, output=outputs, params=params, wildcards={}))
    assert job.settings.source == WvsSource("wvs_csv", str(WVS_CSV))
    humans = run(job)
    notes = json.loads(Path(outputs["notes"]).read_text(encoding="utf-8"))
    assert notes["items"] == humans.height > 0 and notes["source"] == {"type": "wvs_csv", "path": str(WVS_CSV)}
    with pytest.raises(LexalignError, match="^config wvs: unknown key wvs.bad_row$"):
        HumansJob.from_rule(Rule(input={}, output=outputs, params={**params, "bad_row": "skip"}, wildcards={}))
