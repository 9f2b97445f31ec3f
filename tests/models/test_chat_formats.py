"""Stop tokens of the paper's chat formats (issue 24, finding 5), the vLLM engine's settings (finding 6)
and the weight files' integrity check (issue 27), on tiny models built offline with Llama 3.1's and Qwen
2.5's special tokens, templates and generation configs (lexalign.checks.chat_models)."""

from __future__ import annotations

import json
import struct
import sys
import types
from pathlib import Path

import pytest

from lexalign.checks.chat_models import FORMATS, LLAMA3, QWEN25, build_chat_model
from lexalign.core.errors import LexalignError
from lexalign.models import generation
from lexalign.models.loading import check_local_model, load_model, read_manifest
from lexalign.models.prepare import prepare_model


@pytest.fixture(scope="module", params=sorted(FORMATS))
def chat(request, tmp_path_factory):
    chat = FORMATS[request.param]
    raw = build_chat_model(tmp_path_factory.mktemp(chat.name) / "raw", chat)
    return types.SimpleNamespace(
        format=chat, raw=raw, prepared=prepare_model(chat.name, {"path": str(raw)}, raw.parent / "prepared")
    )


def _ids(tokenizer, tokens):
    return [tokenizer.convert_tokens_to_ids(t) for t in tokens]


def test_the_model_s_own_stop_tokens_are_kept_and_merged(chat):
    """Llama 3.1's generation config stops at <|end_of_text|>, <|eom_id|> and <|eot_id|>; Qwen 2.5's at
    <|im_end|> and <|endoftext|>: every one stays, besides the chat format's end of turn."""
    loaded = load_model(chat.prepared, dtype="float32")
    own = _ids(loaded.tokenizer, chat.format.generation_eos)
    assert set(own) <= set(read_manifest(chat.prepared)["stop_token_ids"])
    assert set(own) <= set(loaded.stop_token_ids) and loaded.tokenizer.eos_token_id in loaded.stop_token_ids
    assert list(loaded.model.generation_config.eos_token_id) == loaded.stop_token_ids
    assert len(set(loaded.stop_token_ids)) == len(loaded.stop_token_ids)


def test_a_manifest_without_them_still_stops_where_the_model_does(chat, tmp_path):
    """A model prepared before the merge (its manifest lists only the end of turn): loading merges the
    generation config in, never replaces it."""
    prepared = tmp_path / "old"
    prepared.mkdir()
    manifest = json.loads((chat.prepared / "lexalign_model.json").read_text(encoding="utf-8"))
    loaded = load_model(chat.prepared, dtype="float32")
    end_of_turn = loaded.tokenizer.convert_tokens_to_ids(chat.format.eos)
    (prepared / "lexalign_model.json").write_text(json.dumps({**manifest, "stop_token_ids": [end_of_turn]}))
    again = load_model(prepared, dtype="float32")
    assert set(_ids(again.tokenizer, chat.format.generation_eos)) <= set(again.stop_token_ids)


def _stand_in_vllm(monkeypatch, seen):
    class LLM:
        def __init__(self, **kwargs):
            seen["llm"] = kwargs

        def generate(self, prompts, sampling, use_tqdm, lora_request):
            seen["sampling"] = sampling
            answer = types.SimpleNamespace(text="dog", token_ids=[1], finish_reason="stop")
            return [types.SimpleNamespace(outputs=[answer]) for _ in prompts]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kwargs: kwargs
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
    for name, module in {
        "vllm": vllm,
        "vllm.lora": types.ModuleType("vllm.lora"),
        "vllm.lora.request": request,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)


def _decoding(**overrides):
    section = {
        "backend": "vllm",
        "batch_size": 4,
        "max_new_tokens": 8,
        "do_sample": False,
        "temperature": 0.7,
        "top_p": 0.9,
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
        "vllm": {},
        **overrides,
    }
    return generation.Decoding.from_config(section, "lexical")


def test_vllm_stops_at_the_list_transformers_stops_at(chat, monkeypatch):
    seen: dict = {}
    _stand_in_vllm(monkeypatch, seen)
    generation.generate(chat.prepared, [[{"role": "user", "content": "dog"}]], _decoding())
    assert seen["sampling"]["stop_token_ids"] == load_model(chat.prepared, dtype="float32").stop_token_ids


def test_vllm_reserves_a_prompt_s_context_not_the_model_s(chat, monkeypatch):
    """Without lexical.vllm settings the engine gets a 4096-token context and 85% of the GPU; the config's
    values win."""
    seen: dict = {}
    _stand_in_vllm(monkeypatch, seen)
    generation.generate(chat.prepared, [[{"role": "user", "content": "dog"}]], _decoding())
    assert (seen["llm"]["max_model_len"], seen["llm"]["gpu_memory_utilization"]) == (4096, 0.85)
    own = {"max_model_len": 1024, "gpu_memory_utilization": 0.5}
    generation.generate(chat.prepared, [[{"role": "user", "content": "dog"}]], _decoding(vllm=own))
    assert (seen["llm"]["max_model_len"], seen["llm"]["gpu_memory_utilization"]) == (1024, 0.5)


def test_generation_refuses_to_run_on_fewer_gpus_than_asked(chat, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    with pytest.raises(LexalignError, match=r"asked for 1 GPU\(s\) .* but sees 0"):
        generation.generate(chat.prepared, [[{"role": "user", "content": "dog"}]], _decoding(backend="hf"), gpus=1)


def test_generation_loads_the_configured_attention_kernel(chat):
    loaded = generation.load_for_generation(chat.prepared, None, "float32", attn_implementation="eager")
    assert loaded.model.config._attn_implementation == "eager"


def test_the_chat_formats_render_their_turns():
    from transformers import AutoTokenizer

    for chat, expected in (
        (LLAMA3, "<|start_header_id|>assistant<|end_header_id|>\n\n"),
        (QWEN25, "<|im_start|>assistant\n"),
    ):
        tokenizer = AutoTokenizer.from_pretrained(build_chat_model(Path(f"/tmp/{chat.name}-x") / "m", chat))
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "dog"}], add_generation_prompt=True, tokenize=False
        )
        assert text.endswith(expected) and "dog" in text


# ---- issue 27: a truncated or corrupt weight file fails when preparing, naming it -----------------


def _shard(path: Path, tensors: dict[str, int]) -> None:
    """A safetensors file of float32 vectors (name -> length)."""
    header, offset = {}, 0
    for name, length in tensors.items():
        header[name] = {"dtype": "F32", "shape": [length], "data_offsets": [offset, offset + 4 * length]}
        offset += 4 * length
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(offset))


def _sharded(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    _shard(folder / "model-00001-of-00002.safetensors", {"a": 16, "b": 8})
    _shard(folder / "model-00002-of-00002.safetensors", {"c": 32})
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}
    weight_map["c"] = "model-00002-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_sound_shards_pass(tmp_path):
    check_local_model(_sharded(tmp_path / "m"), "models.big.path")


def test_a_cut_shard_is_named(tmp_path):
    folder = _sharded(tmp_path / "m")
    shard = folder / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])  # the header is whole, the data is not
    with pytest.raises(LexalignError) as caught:
        check_local_model(folder, "models.big.path")
    message = str(caught.value)
    assert "\n" not in message and str(shard) in message and "truncated" in message


def test_a_single_file_model_cut_short_is_named(chat, tmp_path):
    import shutil

    folder = tmp_path / "cut"
    shutil.copytree(chat.raw, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(LexalignError, match=r"^models\.cut\.path: .*model\.safetensors is truncated"):
        prepare_model("cut", {"path": str(folder)}, tmp_path / "prepared")


def test_a_missing_shard_or_tensor_is_named(tmp_path):
    folder = _sharded(tmp_path / "missing")
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(LexalignError, match=r"model-00002-of-00002\.safetensors is missing \(named by"):
        check_local_model(folder, "models.big.path")
    other = _sharded(tmp_path / "other")
    _shard(other / "model-00002-of-00002.safetensors", {"d": 32})  # a shard of another model
    with pytest.raises(LexalignError, match=r"lacks 1 tensor\(s\) .* \(e\.g\. c\)"):
        check_local_model(other, "models.big.path")
    broken = _sharded(tmp_path / "broken")
    (broken / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(LexalignError, match="is not a safetensors index"):
        check_local_model(broken, "models.big.path")
