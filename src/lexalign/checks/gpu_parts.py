"""The parts of ``lexalign check gpu``: each a module-level function returning its figures as a dict, run
in its own process at full size (``lexalign.testing.measure``) and through the rules' own entry points:

- ``train_part``: :func:`lexalign.train.run.run` (rule train's entry: checkpoints, ``accelerate launch``
  for several GPUs, ZeRO-2 where asked) for a few SFT, DPO or GRPO steps with gradient checkpointing;
  tokens/s from its metrics.json, peak GPU memory, and an MFU that counts the FLOPs a LoRA step runs
  (:func:`lexalign.checks.cards.lora_train_flops_per_token`);
- ``generate_part``: :func:`lexalign.models.generation.generate` (rule lexical's entry, which loads through
  ``load_for_generation``) on the hf or vllm backend; the answers are returned to compare the two;
- ``wvs_part``: :func:`lexalign.wvs.evaluate.evaluate_modes` (rule wvs's entry) in logits mode on the hf or
  vllm backend; the option probabilities are returned to compare the two.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path


def _peak_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def train_settings(method: str, steps: int, batch_size: int, distributed: str | None, **hyper):
    """The ``default`` preset's settings of ``method`` cut to ``steps`` steps, gradient checkpointing on."""
    from lexalign.config import presets

    settings = presets.method_settings(presets.TrainSection(preset="default"), method).with_hyper(
        max_steps=steps,
        save_steps=10_000,
        logging_steps=1,
        max_eval_examples=0,
        eval_steps=None,
        warmup_ratio=0.0,
        gradient_checkpointing=True,
        per_device_train_batch_size=batch_size,
        **hyper,
    )
    return dataclasses.replace(settings, distributed=distributed)


def train_part(
    model_dir: str,
    data: str,
    work: str,
    method: str,
    steps: int,
    batch_size: int,
    processes: int,
    distributed: str | None,
    hyper: dict,
) -> dict:
    """``steps`` steps of ``method`` through rule train's entry point; the adapter lands in ``work/adapter``."""
    from lexalign.checks.cards import lora_train_flops_per_token, mfu
    from lexalign.train import run as train
    from lexalign.train.trainers import TrainJob

    out = Path(work)
    job = TrainJob(
        method=method,
        model_dir=model_dir,
        data=data,
        adapter_out=str(out / "adapter"),
        metrics_out=str(out / "metrics.json"),
        history_out=str(out / "history.jsonl"),
        checkpoint_dir=str(out / "checkpoints"),
        settings=train_settings(method, steps, batch_size, distributed, **hyper),
        num_processes=processes,
    )
    start = time.perf_counter()
    train.run(job)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    tokens_per_s, device = metrics.get("tokens_per_s"), metrics.get("device")
    flops = None
    if metrics.get("num_tokens") and metrics.get("samples_per_s") and metrics.get("runtime_s"):
        row_tokens = metrics["num_tokens"] / (metrics["samples_per_s"] * metrics["runtime_s"])
        flops = lora_train_flops_per_token(model_dir, out / "adapter", row_tokens)
    return {
        "method": method,
        "steps": metrics.get("global_step"),
        "processes": metrics.get("num_processes"),
        "distributed": distributed or ("ddp" if processes > 1 else "single process"),
        "wall_s": wall,
        "tokens_per_s": tokens_per_s,
        "peak_gpu_gib": _peak_gib() if processes == 1 else None,  # launched workers: their own processes
        "device": None if device == "cpu" else device,
        "flops_per_token": flops,
        "mfu": mfu(flops, tokens_per_s, device, processes) if flops and tokens_per_s else None,  # tokens of all GPUs
        "last_train_loss": (metrics.get("train_loss") or {}).get("last"),
        "adapter": str(out / "adapter"),
    }


def generate_part(model_dir: str, adapter: str, eval_table: str, cues: int, settings: dict, backend: str) -> dict:
    """Tier-1 generation of ``cues`` test cues through rule lexical's entry point on ``backend``."""
    import polars as pl

    from lexalign.models.generation import Decoding, generate

    conversations = pl.read_parquet(eval_table).sort("cue").head(cues)["prompt"].to_list()
    decoding = Decoding.from_config({**settings, "backend": backend, "do_sample": False}, "lexical")
    start = time.perf_counter()
    answers = generate(model_dir, conversations, decoding, adapter_dir=adapter)
    seconds = time.perf_counter() - start
    tokens = sum(a.n_tokens for a in answers)
    return {
        "backend": backend,
        "cues": len(answers),
        "wall_s": seconds,  # the model load (and vLLM's engine start) included, as in the rule
        "new_tokens_per_s": tokens / seconds,
        "peak_gpu_gib": _peak_gib(),
        "answers": [a.raw for a in answers],
    }


def wvs_part(model_dir: str, adapter: str, humans: str, work: str, settings: dict, backend: str, method: str) -> dict:
    """WVS option probabilities (logits mode) through rule wvs's entry point on ``backend``, for a model
    trained by ``method`` (its adapter)."""
    import polars as pl

    from lexalign.wvs.evaluate import evaluate_modes
    from lexalign.wvs.settings import WvsJob, WvsSettings

    out = Path(work)
    job = WvsJob(
        model_dir=model_dir,
        humans_path=humans,
        metrics_out=str(out / "metrics.json"),
        answers_out=str(out / "answers.parquet"),
        lang="en",
        method=method,
        prompt_language="en",
        country="United States",
        model_name="check",
        framing="interviewer",
        mode="logits",
        adapter_dir=adapter,
    )
    start = time.perf_counter()
    evaluate_modes([job], WvsSettings.from_config({**settings, "backend": backend}))
    seconds = time.perf_counter() - start
    answers = pl.read_parquet(out / "answers.parquet")
    return {
        "backend": backend,
        "items": answers.height,
        "wall_s": seconds,  # the model load (and vLLM's engine start) included, as in the rule
        "items_per_s": answers.height / seconds,
        "peak_gpu_gib": _peak_gib(),
        "probs": [list(map(float, p)) for p in answers["probs"].to_list()],
    }
