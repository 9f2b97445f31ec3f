"""lexalign check gpu (lexalign.checks.gpu): the rules' entry points at tiny size on CPU, the comparisons of the
hf and vllm backends, the deadline, the JSON result, what it skips and why, and an MFU counting LoRA's FLOPs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexalign.checks import cards, gpu_parts
from lexalign.checks import gpu as gpu_check

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("gemma", "llama3", "qwen2.5")


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H200", 989),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA A100-SXM4-80GB", 312),
        ("NVIDIA A10", 125),
        ("NVIDIA L40S", 362),
        ("NVIDIA L4", 121),
        ("NVIDIA GeForce RTX 4090", 165),
    ],
)
def test_peak_flops_table_matches_the_specific_card(name, tflops):
    assert cards.peak_bf16_flops(name) == tflops * 1e12


def test_mfu_of_an_unknown_card_is_none():
    assert cards.peak_bf16_flops("Tesla K80") is None
    assert cards.peak_bf16_flops("NVIDIA A10G") is None  # not the A10's figure
    assert cards.mfu(1e9, 1000.0, "Tesla K80") is None
    assert cards.mfu(1e9, 1000.0, None) is None
    assert cards.mfu(2e9, 5e4, "NVIDIA A100-SXM4-40GB", gpus=2) == pytest.approx(2e9 * 5e4 / (2 * 312e12))


def test_lora_flops_count_what_a_lora_step_runs(tiny_prepared, tmp_path):
    """4 N (forward, and input gradients through the frozen linear weights) + 6 N_lora + 12 L d s; the
    embedding lookup is no matmul and is not counted (the old count, 6 x all parameters, counted it)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model

    model = load_model(tiny_prepared, dtype="float32").model
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    peft.save_pretrained(tmp_path / "adapter")
    config = model.config
    expected = 4 * linear + 6 * lora + 12 * config.num_hidden_layers * config.hidden_size * 100
    assert cards.lora_train_flops_per_token(tiny_prepared, tmp_path / "adapter", 100) == pytest.approx(expected)
    everything = sum(p.numel() for p in model.parameters())
    assert 4 * linear < 6 * everything  # the tied output layer counted once, as the matmul it is


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "lexalign.checks", "gpu", "--tiny", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    return done, json.loads(out.read_text()) if out.is_file() else None


def test_tiny_run_on_cpu_runs_the_rule_entry_points(tiny_run):
    """SFT, DPO and GRPO through rule train's entry point, generation and WVS scoring through rule lexical's
    and wvs's, for the Gemma, Llama 3.1 and Qwen 2.5 chat formats; the vLLM and ZeRO-2 parts skipped, with why."""
    done, report = tiny_run
    assert done.returncode == 0, done.stderr[-3000:]
    parts = report["parts"]
    expected = {"prepare": "ran", "zero2": "skipped", "sft": "ran", "dpo": "ran", "grpo_hf": "ran"}
    expected["grpo_vllm"] = "skipped"
    for name in FORMATS:
        expected |= {f"{name}/generate_hf": "ran", f"{name}/generate_vllm": "skipped"}
        expected |= {f"{name}/wvs_hf": "ran", f"{name}/wvs_vllm": "skipped"}
        if name != "gemma":
            expected[f"{name}/sft"] = "ran"
    assert {name: p["status"] for name, p in parts.items()} == expected
    for method in ("sft", "dpo", "grpo_hf"):
        assert (
            parts[method]["steps"] >= 1 and parts[method]["tokens_per_s"] > 0 and parts[method]["flops_per_token"] > 0
        )
        assert parts[method]["wall_s"] > 0 and parts[method]["peak_rss_mb"] > 0 and parts[method]["mfu"] is None
    assert (
        parts["sft"]["steps"] == gpu_check.TINY["steps"] and parts["grpo_hf"]["steps"] == gpu_check.TINY["grpo_steps"]
    )
    for name in FORMATS:
        assert parts[f"{name}/generate_hf"]["cues"] == gpu_check.TINY["gen_cues"]
        assert parts[f"{name}/wvs_hf"]["items"] == gpu_check.TINY["wvs_items"] > 0
        assert "answers" not in parts[f"{name}/generate_hf"] and "probs" not in parts[f"{name}/wvs_hf"]
    assert parts["grpo_vllm"]["why"] == "no CUDA (vLLM needs a GPU)" and "ZeRO-2" in parts["zero2"]["why"]
    assert report["gpus"] == 0 and report["size"] == "tiny" and report["deadline_s"] == gpu_check.DEADLINE_S
    assert "mfu n/a (no GPU)" in done.stdout and "skipped  no CUDA" in done.stdout


def test_past_the_deadline_parts_are_skipped_not_run(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "lexalign.checks", "gpu", "--tiny", "--deadline-s", "0", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parts = json.loads(out.read_text())["parts"]
    ran = {name for name, p in parts.items() if p["status"] == "ran"}
    assert ran == {"prepare"}
    assert parts["sft"]["why"] == "the deadline of 0 s was reached before this part"
    assert parts["llama3/generate_hf"]["why"] == "no adapter: its sft part did not run"


def test_distribution_says_why_zero2_does_not_run(monkeypatch):
    real = importlib.util.find_spec
    assert gpu_check.distribution(False, 0, cpu_ddp=True) == (2, None, "no CUDA (ZeRO-2 runs on GPUs)")
    assert gpu_check.distribution(True, 1, False)[:2] == (1, None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    assert gpu_check.distribution(True, 4, False)[:2] == (4, None)  # DDP, and the reason
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "deepspeed" else real(name, *a)
    )
    assert gpu_check.distribution(True, 4, False) == (4, "zero2", None)


def test_the_comparisons_report_differences():
    same = gpu_check.compare_answers({"answers": ["a, b", "c"]}, {"answers": ["a, b", "c"]})
    assert same == {"status": "ran", "identical": 2, "of": 2}
    differ = gpu_check.compare_answers({"answers": ["a, b", "c"]}, {"answers": ["a, b", "d"]})
    assert differ["identical"] == 1 and differ["first_difference"] == {"cue": 1, "hf": "c", "vllm": "d"}
    close = gpu_check.compare_probs({"probs": [[0.5, 0.5]]}, {"probs": [[0.51, 0.49]]})
    assert close["status"] == "ran" and close["max_prob_diff"] == pytest.approx(0.01)
    far = gpu_check.compare_probs({"probs": [[0.5, 0.5]]}, {"probs": [[0.6, 0.4]]})
    assert far["status"] == "FAILED" and "0.1 > tolerance 0.02" in far["why"]


def test_the_vllm_wvs_part_matches_the_hf_part(tiny_prepared, tmp_path, monkeypatch):
    """The check's WVS part through rule wvs's entry point on the vllm backend (the tiny model's stand-in vLLM:
    outputs in vLLM's structure from the model's own log-probabilities) against the hf backend, with an adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model
    from lexalign.testing.tiny_model import stand_in_vllm_modules
    from lexalign.testing.workspace import checkout_config

    base = load_model(tiny_prepared, dtype="float32")
    torch.manual_seed(5)
    peft = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, weight in peft.named_parameters():
        if "lora_B" in name:
            weight.data.normal_(0, 0.5)
    peft.save_pretrained(tmp_path / "adapter")
    seen: dict = {}
    for name, module in stand_in_vllm_modules(seen).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr("lexalign.models.loading.cpu_has_native_bf16", lambda: False)  # float32, as the stand-in
    ctx = type("Ctx", (), {"work_dir": tmp_path, "checkout": REPO})()
    config = checkout_config(REPO)
    humans = str(gpu_check._humans(ctx, config))
    settings = gpu_check._wvs_settings(config, 4)
    common = dict(model_dir=str(tiny_prepared), adapter=str(tmp_path / "adapter"), humans=humans, settings=settings)
    common["method"] = gpu_check.method_of("sft")
    hf = gpu_parts.wvs_part(work=str(tmp_path / "hf"), backend="hf", **common)
    vllm = gpu_parts.wvs_part(work=str(tmp_path / "vllm"), backend="vllm", **common)
    assert hf["items"] == vllm["items"] == 4 and seen["llm"]["enable_lora"]
    compared = gpu_check.compare_probs(hf, vllm, tolerance=1e-4)
    assert compared["status"] == "ran" and compared["items"] == 4
