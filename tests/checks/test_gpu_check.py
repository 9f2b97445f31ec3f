"""lexalign check gpu (lexalign.checks.gpu): the GPU readiness check runs at tiny size on CPU, says what it skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexalign.checks import cards
from lexalign.checks import gpu as gpu_check

REPO = Path(__file__).resolve().parents[2]


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
    assert cards.mfu(10**9, 1000.0, "Tesla K80") is None
    assert cards.mfu(10**9, 1000.0, None) is None
    assert cards.mfu(270_000_000, 50_000.0, "NVIDIA A100-SXM4-40GB") == pytest.approx(6 * 270e6 * 5e4 / 312e12)


def test_tiny_run_on_cpu(tmp_path):
    """The whole script at tiny size without CUDA: SFT, CPU DDP through accelerate, HF generation and WVS."""
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, "-m", "lexalign.checks", "gpu", "--tiny", "--cpu-ddp", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parts = json.loads(out.read_text())["parts"]
    assert {name: p["status"] for name, p in parts.items()} == {
        "prepare": "ran",
        "sft": "ran",
        "ddp": "ran",
        "generate_hf": "ran",
        "wvs_hf": "ran",
        "generate_vllm": "skipped",
        "wvs_vllm": "skipped",
    }
    assert parts["sft"]["steps"] == gpu_check.TINY["steps"] and parts["sft"]["tokens_per_s"] > 0
    assert parts["ddp"]["processes"] == 2 and parts["ddp"]["steps"] == gpu_check.TINY["ddp_steps"]
    assert parts["generate_hf"]["cues"] == gpu_check.TINY["gen_cues"] and parts["generate_hf"]["cues_per_s"] > 0
    assert parts["wvs_hf"]["items"] == gpu_check.TINY["wvs_items"] and parts["wvs_hf"]["items_per_s"] > 0
    assert "no CUDA" in parts["wvs_vllm"]["why"]
    assert "mfu n/a (no GPU)" in done.stdout and "skipped  no CUDA" in done.stdout


def test_vllm_wvs_part_matches_the_hf_probabilities(tiny_prepared, tmp_path, monkeypatch):
    """The check's vLLM WVS part (the wvs.backend: vllm path) against HF scoring, on the tiny model's stand-in
    vLLM (outputs in vLLM's structure from the tiny model's own log-probabilities), with a LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model
    from lexalign.testing.tiny_model import stand_in_vllm_modules
    from lexalign.wvs.scoring import score_options

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
    part = gpu_check.vllm_wvs_part(str(tiny_prepared), str(tmp_path / "adapter"), items=3)
    assert part["items"] == 3 and part["items_per_s"] > 0 and part["engine_start_s"] >= 0
    assert seen["llm"]["enable_lora"] and seen["llm"]["max_logprobs"] == len(seen["instance"].tokenizer)
    hf = load_model(tiny_prepared, tmp_path / "adapter", dtype="float32")
    hf.model.eval()
    prompts, answers = gpu_check._wvs_prompts(hf.tokenizer, 3)
    expected = [s["probs"] for s in score_options(hf.model, hf.tokenizer, prompts, answers, 8)]
    assert max(abs(a - b) for p, q in zip(part["probs"], expected) for a, b in zip(p, q)) < 1e-4
