"""Model preparation and loading: local paths are referenced, never copied; chat template and stops."""

from __future__ import annotations

import json

import pytest

from lexalign.errors import LexalignError
from lexalign.models import MANIFEST, load_model, prepare_model, read_manifest


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
