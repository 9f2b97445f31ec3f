"""lexalign.models.memory: the memory estimate and the before-loading check (no GPU needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lexalign.config.presets import LoraSettings, TrainSettings
from lexalign.core.errors import LexalignError
from lexalign.models import memory

LLAMA_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
LLAMA_70B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8192,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}


def _lora(r: int, target_modules) -> LoraSettings:
    return LoraSettings(alpha=2 * r, dropout=0.0, loraplus_lr_ratio=None, r=r, target_modules=target_modules)


def _fake_70b(folder: Path, with_header: bool) -> Path:
    """config.json of Llama 3 70B; with_header: a safetensors file whose header declares its tensors (no data)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(LLAMA_70B), encoding="utf-8")
    if with_header:
        h, i, kv = 8192, 28672, 1024
        header = {"model.embed_tokens.weight": {"dtype": "BF16", "shape": [128256, h], "data_offsets": [0, 0]}}
        for layer in range(80):
            for name, shape in {"q_proj": [h, h], "k_proj": [kv, h], "v_proj": [kv, h], "o_proj": [h, h]}.items():
                header[f"model.layers.{layer}.self_attn.{name}.weight"] = {"dtype": "BF16", "shape": shape}
            for name, shape in {"gate_proj": [i, h], "up_proj": [i, h], "down_proj": [h, i]}.items():
                header[f"model.layers.{layer}.mlp.{name}.weight"] = {"dtype": "BF16", "shape": shape}
        header["lm_head.weight"] = {"dtype": "BF16", "shape": [128256, h]}
        raw = json.dumps(header).encode()
        (folder / "model.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw)
    return folder


def test_config_count_matches_llama_3_8b():
    assert memory.config_parameter_count(LLAMA_8B) == 8_030_261_248


def test_paper_arithmetic_in_the_docstring():
    """8B, LoRA r64 on q/v, batch 18 x 2048 in bf16: the figures the module docstring shows."""
    lora = _lora(64, ["q_proj", "v_proj"])
    plain = memory.estimate(LLAMA_8B, purpose="train", dtype_bytes=2, lora=lora, batch_tokens=18 * 2048)
    ckpt = memory.estimate(
        LLAMA_8B, purpose="train", dtype_bytes=2, lora=lora, batch_tokens=18 * 2048, gradient_checkpointing=True
    )
    assert plain.trainable == 27_262_976
    assert round(plain.weights / memory.GIB, 2) == 14.96
    assert round(plain.activations / memory.GIB, 1) == 153.0
    assert round(plain.total / memory.GIB, 1) == 168.4
    assert round(ckpt.total / memory.GIB, 1) == 29.1
    for figure in ("8,030,261,248", "27,262,976", "153.0 GiB", "168.4 GiB", "29.1 GiB"):
        assert figure in memory.__doc__


def test_lora_count_from_headers_equals_config_count(tmp_path):
    folder = _fake_70b(tmp_path / "m", with_header=True)
    shapes = memory.tensor_shapes(folder)
    lora = _lora(16, ["q_proj", "v_proj"])
    assert memory.lora_parameter_count(LLAMA_70B, lora, shapes) == memory.lora_parameter_count(LLAMA_70B, lora)
    every = _lora(8, "all-linear")
    assert memory.lora_parameter_count(LLAMA_70B, every, shapes) == memory.lora_parameter_count(LLAMA_70B, every)
    header_count = memory.estimate(LLAMA_70B, purpose="inference", dtype_bytes=2, shapes=shapes).parameters
    norms = (2 * 80 + 1) * 8192  # the fake header has no norm weights
    assert header_count == memory.config_parameter_count(LLAMA_70B) - norms


def test_tiny_model_fits(tiny_prepared):
    need = memory.check_fits(tiny_prepared, purpose="inference", dtype="float32", device="cpu")
    assert need is not None and need.counted_from == "safetensors headers"
    assert need.total < 50 * 2**20
    lora = _lora(4, ["q_proj", "v_proj"])
    trained = memory.check_fits(
        tiny_prepared, purpose="train", dtype="float32", lora=lora, batch_tokens=2048, device="cpu"
    )
    assert trained.trainable > 0 and trained.activations > 0


@pytest.mark.parametrize("with_header", [True, False])
def test_70b_on_cpu_is_refused_before_loading(tmp_path, monkeypatch, with_header):
    folder = _fake_70b(tmp_path / "llama70b", with_header)
    monkeypatch.setattr(memory, "available_ram", lambda: 64 * memory.GIB)
    with pytest.raises(LexalignError) as err:
        memory.check_fits(folder, purpose="inference", dtype="bfloat16", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    assert str(folder) in message and "131.4 GiB" in message and "64.0 GiB of RAM available" in message
    assert "fix:" in message and "run it on a GPU node" in message


def test_training_message_names_the_fixes(tmp_path, monkeypatch):
    folder = tmp_path / "llama8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B), encoding="utf-8")
    monkeypatch.setattr(memory, "free_gpu_memory", lambda devices: [79 * memory.GIB] * len(devices))
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    hyper = {"per_device_train_batch_size": 18, "max_length": 2048, "gradient_checkpointing": False}
    settings = TrainSettings(preset="paper", lora=_lora(64, ["q_proj", "v_proj"]), hyper=hyper)
    monkeypatch.setattr(memory, "check_fits", _on_cuda(memory.check_fits))
    with pytest.raises(LexalignError) as err:
        memory.check_train_fits(folder, settings, "bfloat16")
    message = str(err.value)
    assert "168.4 GiB" in message and "79.0 GiB free on this rank's GPU" in message
    for fix in ("gradient_checkpointing: true", "per_device_train_batch_size", "ZeRO"):
        assert fix in message
    settings = settings.with_hyper(gradient_checkpointing=True)
    assert round(memory.check_train_fits(folder, settings, "bfloat16").total / memory.GIB, 1) == 29.1


@pytest.mark.parametrize(
    ("purpose", "rank", "gpus", "queried"),
    [
        ("train", "2", None, [2]),
        ("train", None, None, [0]),
        ("inference", "3", None, [0, 1, 2, 3]),
        ("inference", None, 2, [0, 1]),
    ],
)
def test_the_check_queries_only_the_gpus_this_process_runs_on(tmp_path, monkeypatch, purpose, rank, gpus, queried):
    """A data-parallel rank asks its own GPU only (each query opens a CUDA context on that card); an
    inference job the GPUs its model is spread over."""
    import torch

    folder = tmp_path / "llama8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B), encoding="utf-8")
    asked = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: asked.append(i) or (80 * memory.GIB, 80 * memory.GIB))
    if rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", rank)
    memory.check_fits(folder, purpose=purpose, dtype="bfloat16", gpus=gpus, device="cuda")
    assert asked == queried


def _on_cuda(check):
    return lambda *a, **kw: check(*a, **{**kw, "device": "cuda"})


def test_skip_switch_and_cgroup_limit(tmp_path, monkeypatch):
    folder = _fake_70b(tmp_path / "m", with_header=False)
    monkeypatch.setenv(memory.SKIP_ENV, "1")
    assert memory.check_fits(folder, purpose="inference", dtype="bfloat16", device="cpu") is None
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("8589934592\n")
    (cgroup / "memory.current").write_text("1073741824\n")
    assert memory._cgroup_available(cgroup) == 7 * memory.GIB
    (cgroup / "memory.max").write_text("max\n")
    assert memory._cgroup_available(cgroup) is None
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    2048 kB\n")
    assert memory._meminfo_available(meminfo) == 2048 * 1024


def test_bad_dtype_is_one_line(tiny_prepared):
    with pytest.raises(LexalignError, match="dtype 'int3'"):
        memory.check_fits(tiny_prepared, purpose="inference", dtype="int3", device="cpu")


def test_generation_refuses_before_loading(tiny_prepared, monkeypatch):
    """The call site in lexalign.models.generation checks before any weight is read."""
    import torch

    from lexalign.models import generation
    from lexalign.models import loading as models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the CPU path, also on a GPU machine
    monkeypatch.setattr(memory, "available_ram", lambda: 1024)
    monkeypatch.setattr(models, "load_model", lambda *a, **kw: pytest.fail("loaded before the memory check"))
    settings = generation.Decoding("hf", 1, 4, False, 1.0, 1.0, 1.0, 0)
    with pytest.raises(LexalignError, match="0.0 GiB of RAM available"):
        generation.generate(tiny_prepared, [[{"role": "user", "content": "dog"}]], settings, dtype="float32")
