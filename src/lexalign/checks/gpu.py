"""``lexalign check gpu``: does the GPU path work, and how fast is it? (under 10 minutes on one GPU)

With CUDA, on the packaged Gemma 3 270M (``--model gemma``, the default there):

1. prepare   the packaged model (``lexalign.models.prepare``; cached between runs)
2. sft       SFT for 50 steps in bf16 with the project's trainer (``lexalign.train.trainers.build_trainer``,
             preset ``default``: padding-free rows, completion-only loss); tokens/s and the model FLOP
             utilisation 6 x parameters x tokens/s / the card's peak dense bf16 FLOP/s (``cards.PEAK_BF16_TFLOPS``;
             an unknown card prints n/a); the adapter it trains is used below
3. ddp       the same SFT through the project's ``accelerate launch`` path (``lexalign.train.run.launch`` with
             ``num_processes`` = the visible GPUs; with one GPU a single worker: the launcher, not the all-reduce)
4. generate  tier-1 generation with the LoRA adapter: HF (``generate_on_model``) and, if vLLM imports,
             vLLM (``lexalign.models.generation.generate``, backend vllm, engine start included); cues/s
5. wvs       WVS option probabilities with the adapter on HF (``lexalign.wvs.scoring.score_options``) and,
             if vLLM imports, on vLLM (``lexalign.wvs.vllm.VllmScorer``, the ``wvs.backend: vllm`` path);
             items/s, and the largest absolute difference between the two backends' probabilities

Without CUDA the parts CPU can run run at tiny size (tiny random model, a few steps) and the others are
printed as skipped with the reason. Each part runs in its own process at full size (GPU memory is given
back between parts); ``--tiny`` runs them in this process (the test suite does). Run it in the checkout
(or pass ``--checkout``): its embedded default config and illustrative norms give the settings and prompts.

A new part is a module-level ``*_part`` function (its figures as a dict) run through ``_attempt`` in
:func:`check`; :func:`render` prints whatever figures it returns.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from lexalign.checks.cards import mfu
from lexalign.testing.workspace import (
    DEFAULT_CACHE,
    Workspace,
    checkout_config,
    default_sft_settings,
    eval_prompts,
    gemma_model_dir,
    lexical_settings,
    measure,
    sft_table,
    sft_trainer,
    tiny_model_dir,
)

log = logging.getLogger(__name__)

GPU = {"steps": 50, "ddp_steps": 20, "cues": 400, "examples": 1200, "gen_cues": 64, "wvs_items": 64}
TINY = {"steps": 3, "ddp_steps": 2, "cues": 40, "examples": 30, "gen_cues": 4, "wvs_items": 3}


def vllm_importable() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (pip install 'lexalign[vllm]')"
    return True, ""


# ---- the parts (module-level: each runs in a worker process at full size) --------------------


def sft_part(model_dir: str, data: str, work: str, steps: int, batch_size: int) -> dict:
    """``steps`` SFT steps with the project's trainer; the adapter is saved to ``work/adapter``."""
    import torch
    from transformers import TrainerCallback

    trainer = sft_trainer(model_dir, data, work, "project", steps, batch_size)
    tokens: list[int] = []
    marks: list[float] = []
    collate = trainer.data_collator

    def counting(features):
        tokens.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    trainer.data_collator = counting
    trainer.add_callback(Clock())
    trainer.train()
    accum = max(1, trainer.args.gradient_accumulation_steps)
    timed_tokens = sum(tokens[accum:])  # the first step is warm-up (kernels, allocator)
    seconds = marks[-1] - marks[0] if len(marks) > 1 else None
    adapter = Path(work) / "adapter"
    trainer.model.save_pretrained(adapter, selected_adapters=["default"], safe_serialization=True)
    base = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    parameters = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    tokens_per_s = timed_tokens / seconds if seconds else None
    return {
        "steps": len(marks),
        "tokens_per_s": tokens_per_s,
        "timed_tokens": timed_tokens,
        "timed_seconds": seconds,
        "bf16": bool(trainer.args.bf16),
        "batch_size": trainer.args.per_device_train_batch_size,
        "parameters": parameters,
        "device": device,
        "mfu": mfu(parameters, tokens_per_s, device) if tokens_per_s else None,
        "adapter": str(adapter),
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    }


def ddp_part(model_dir: str, data: str, work: str, steps: int, batch_size: int, processes: int) -> dict:
    """The same SFT through the project's launch path (``lexalign.train.run.launch``: ``accelerate launch`` with
    ``processes`` data-parallel workers; with one GPU it still proves the launcher and the worker's bf16 setup)."""
    from lexalign.train import run as train
    from lexalign.train import trainers

    settings = default_sft_settings(
        max_steps=steps, save_steps=10_000, max_eval_examples=0, per_device_train_batch_size=batch_size
    )
    out = Path(work) / "ddp"
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    job = trainers.TrainJob(
        method="sft",
        model_dir=model_dir,
        data=data,
        adapter_out=str(out / "adapter"),
        metrics_out=str(out / "metrics.json"),
        history_out=str(out / "history.jsonl"),
        checkpoint_dir=str(out / "checkpoints"),
        settings=settings,
        num_processes=processes,
    )
    start = time.perf_counter()
    train.launch(job)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {
        "processes": metrics.get("num_processes", processes),
        "steps": metrics.get("global_step"),
        "tokens_per_s": metrics.get("tokens_per_s"),
        "wall_s": time.perf_counter() - start,
        "last_train_loss": (metrics.get("train_loss") or {}).get("last"),
    }


def _conversations(eval_table: str, cues: int) -> list:
    import polars as pl

    return pl.read_parquet(eval_table).sort("cue").head(cues)["prompt"].to_list()


def _wvs_prompts(tokenizer, items: int) -> tuple[list[str], list[list[str]]]:
    import numpy as np

    from lexalign.norms.templates import prompt_templates
    from lexalign.wvs.prompts import build_prompt, option_numbers, render
    from lexalign.wvs.sources.catalog import load_catalog

    catalog = load_catalog()
    chosen = [catalog[i] for i in sorted({round(i) for i in np.linspace(0, len(catalog) - 1, items)})]
    templates = prompt_templates("en")
    conversations = [build_prompt(item, templates, "en", "United States", "interviewer")[0] for item in chosen]
    prompts = [render(tokenizer, messages) for messages in conversations]
    return prompts, [option_numbers(item["n_options"]) for item in chosen]


def hf_part(model_dir: str, adapter: str, eval_table: str, cues: int, items: int, settings: dict) -> dict:
    """Generation and WVS option scoring on HF with the LoRA adapter (model loaded once, not timed)."""
    import torch

    from lexalign.models.generation import generate_on_model
    from lexalign.models.loading import load_model
    from lexalign.wvs.scoring import score_options

    cuda = torch.cuda.is_available()
    loaded = load_model(model_dir, adapter, dtype="auto", padding_side="left", device_map="auto" if cuda else None)
    model = loaded.model.merge_and_unload()
    model.eval()
    conversations = _conversations(eval_table, cues)
    start = time.perf_counter()
    generations = generate_on_model(
        model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=int(settings["max_new_tokens"]),
        batch_size=int(settings["batch_size"]),
    )
    gen_seconds = time.perf_counter() - start
    prompts, answers = _wvs_prompts(loaded.tokenizer, items)
    score_options(model, loaded.tokenizer, prompts[:1], answers[:1], 8)  # warm-up
    start = time.perf_counter()
    scored = score_options(model, loaded.tokenizer, prompts, answers, 8)
    wvs_seconds = time.perf_counter() - start
    return {
        "cues": len(conversations),
        "cues_per_s": len(conversations) / gen_seconds,
        "new_tokens_per_s": sum(g.n_tokens for g in generations) / gen_seconds,
        "items": len(prompts),
        "items_per_s": len(prompts) / wvs_seconds,
        "probs": [list(map(float, s["probs"])) for s in scored],
    }


def vllm_generate_part(model_dir: str, adapter: str, eval_table: str, cues: int, settings: dict) -> dict:
    """vLLM generation with the LoRA adapter through ``lexalign.models.generation.generate`` (engine start timed)."""
    from lexalign.models.generation import Decoding, generate

    conversations = _conversations(eval_table, cues)
    start = time.perf_counter()
    generations = generate(
        model_dir, conversations, Decoding.from_config({**settings, "backend": "vllm"}, "lexical"), adapter_dir=adapter
    )
    seconds = time.perf_counter() - start
    return {
        "cues": len(conversations),
        "cues_per_s_with_start": len(conversations) / seconds,
        "new_tokens": sum(g.n_tokens for g in generations),
    }


def vllm_wvs_part(model_dir: str, adapter: str, items: int) -> dict:
    """WVS option probabilities on vLLM with the adapter, as rule wvs scores them with ``wvs.backend: vllm``."""
    from lexalign.wvs.vllm import VllmScorer

    start = time.perf_counter()
    scorer = VllmScorer(model_dir, adapter, "auto", {"gpu_memory_utilization": 0.5})
    started = time.perf_counter()
    prompts, answers = _wvs_prompts(scorer.tokenizer, items)
    scorer.score(prompts[:1], answers[:1])  # warm-up, as on HF
    scoring = time.perf_counter()
    scored = scorer.score(prompts, answers)
    done = time.perf_counter()
    return {
        "items": len(prompts),
        "engine_start_s": started - start,
        "items_per_s": len(prompts) / (done - scoring),
        "probs": [list(map(float, s["probs"])) for s in scored],
    }


# ---- the run ----------------------------------------------------------------------------------


def _skip(why: str) -> dict:
    return {"status": "skipped", "why": why}


def _attempt(ctx: Workspace, name: str, target: str, args: dict, timeout: float = 600) -> dict:
    try:
        value = measure(ctx, f"{__name__}:{target}", args, timeout=timeout)["value"]
        return {"status": "ran", **value}
    except Exception as exc:  # noqa: BLE001 - one part's failure is reported, the others still run
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        log.error("%s failed: %s", name, exc)
        return {"status": "FAILED", "why": f"{type(exc).__name__}: {first}"[:300]}


def check(ctx: Workspace, cuda: bool, gpus: int, cpu_ddp: bool = False) -> dict:
    """Run the parts; returns {part: {"status": ran|skipped|FAILED, figures... or "why"}}."""
    size = TINY if ctx.tiny else GPU
    parts: dict[str, dict] = {}
    use_gemma = ctx.model == "gemma" or (ctx.model == "auto" and not ctx.tiny)
    try:
        model = gemma_model_dir(ctx) if use_gemma else tiny_model_dir(ctx)
        parts["prepare"] = {"status": "ran", "model": "Gemma 3 270M (packaged)" if use_gemma else "tiny random Llama"}
    except Exception as exc:  # noqa: BLE001
        parts["prepare"] = {"status": "FAILED", "why": f"{type(exc).__name__}: {exc}"[:300]}
        return parts
    data = str(sft_table(ctx, size["cues"], size["examples"]))
    work = ctx.work_dir / "gpu-check"
    work.mkdir(parents=True, exist_ok=True)
    batch = 16 if cuda else 2
    parts["sft"] = _attempt(
        ctx,
        "sft",
        "sft_part",
        dict(model_dir=str(model), data=data, work=str(work), steps=size["steps"], batch_size=batch),
    )
    if not cuda:
        parts["sft"]["note"] = "CPU, tiny model: no bf16 GPU figures"
    if cuda or cpu_ddp:
        processes = gpus if cuda else 2
        parts["ddp"] = _attempt(
            ctx,
            "ddp",
            "ddp_part",
            dict(
                model_dir=str(model),
                data=data,
                work=str(work),
                steps=size["ddp_steps"],
                batch_size=batch,
                processes=processes,
            ),
        )
        if cuda and gpus == 1:
            parts["ddp"]["note"] = "1 GPU: the launch path in one process, no all-reduce between GPUs"
    else:
        parts["ddp"] = _skip("no CUDA (tests/train/test_train.py tests the CPU/gloo launch path; --cpu-ddp runs it)")
    adapter = parts["sft"].get("adapter")
    if not adapter:
        for name in ("generate_hf", "wvs_hf", "generate_vllm", "wvs_vllm"):
            parts[name] = _skip("no adapter: the sft part failed")
        return parts
    eval_table = str(eval_prompts(ctx))
    settings = lexical_settings(ctx.checkout)
    if not cuda:
        settings = {**settings, "max_new_tokens": 16}
    hf = _attempt(
        ctx,
        "hf",
        "hf_part",
        dict(
            model_dir=str(model),
            adapter=adapter,
            eval_table=eval_table,
            cues=size["gen_cues"],
            items=size["wvs_items"],
            settings=settings,
        ),
    )
    parts["generate_hf"] = {k: hf[k] for k in ("status", "why", "cues", "cues_per_s", "new_tokens_per_s") if k in hf}
    parts["wvs_hf"] = {k: hf[k] for k in ("status", "why", "items", "items_per_s") if k in hf}
    importable, why = vllm_importable()
    if not cuda:
        why = "no CUDA (vLLM needs a GPU)"
    if not cuda or not importable:
        parts["generate_vllm"] = _skip(why)
        parts["wvs_vllm"] = _skip(why)
        return parts
    vllm_settings = {**settings, "no_repeat_ngram_size": 0}  # vLLM has no n-gram blocking
    parts["generate_vllm"] = _attempt(
        ctx,
        "generate_vllm",
        "vllm_generate_part",
        dict(
            model_dir=str(model), adapter=adapter, eval_table=eval_table, cues=size["gen_cues"], settings=vllm_settings
        ),
    )
    vllm_wvs = _attempt(
        ctx, "wvs_vllm", "vllm_wvs_part", dict(model_dir=str(model), adapter=adapter, items=size["wvs_items"])
    )
    if vllm_wvs["status"] == "ran" and "probs" in hf:
        vllm_wvs["max_prob_diff_vs_hf"] = max(
            abs(a - b) for p, q in zip(hf["probs"], vllm_wvs["probs"]) for a, b in zip(p, q)
        )
    vllm_wvs.pop("probs", None)
    parts["wvs_vllm"] = vllm_wvs
    return parts


def _figures(part: dict) -> str:
    shown = []
    for key, value in part.items():
        if key in ("status", "why", "adapter", "probs", "note"):
            continue
        if key == "mfu":
            shown.append(
                f"mfu {value:.1%}"
                if value is not None
                else "mfu n/a" + (" (card not in PEAK_BF16_TFLOPS)" if part.get("device") else " (no GPU)")
            )
        elif value is None:
            continue
        elif isinstance(value, float):
            shown.append(f"{key} {value:.3g}" if key.startswith("max_") else f"{key} {value:,.1f}")
        else:
            shown.append(f"{key} {value}")
    return ", ".join(shown)


def render(parts: dict) -> str:
    lines = [f"{'part':14s} {'status':8s} figures / reason", f"{'-' * 14} {'-' * 8} {'-' * 40}"]
    for name, part in parts.items():
        text = part.get("why") or _figures(part)
        if part.get("note"):
            text += f" ({part['note']})"
        lines.append(f"{name:14s} {part['status']:8s} {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lexalign check gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny model and sizes, parts in this process (tests)")
    parser.add_argument(
        "--model",
        choices=("auto", "gemma", "tiny"),
        default="auto",
        help="auto: packaged Gemma 3 270M with CUDA, the tiny model without",
    )
    parser.add_argument("--cpu-ddp", action="store_true", help="without CUDA, run the DDP part with 2 CPU workers")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--cache-dir", type=Path, default=None, help="kept between runs (the prepared Gemma)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--checkout", type=Path, default=Path("."), help="the lexalign checkout whose config and norms it uses (.)"
    )
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    checkout_config(checkout)  # a folder that is no checkout fails here, in one line, before any model is prepared
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    tiny = args.tiny or not cuda  # without CUDA only the tiny size is sensible
    work_dir = Path(tempfile.mkdtemp(prefix="lexalign-gpu-check-"))
    cache = args.cache_dir or DEFAULT_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    ctx = Workspace(tiny=tiny, work_dir=work_dir, cache_dir=cache, checkout=checkout, model=args.model)
    device = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus)) if cuda else "no CUDA device (CPU only)"
    print(f"device: {device} | torch {torch.__version__} | size: {ctx.size} | scratch: {work_dir}", flush=True)
    start = time.perf_counter()
    try:
        parts = check(ctx, cuda, gpus, cpu_ddp=args.cpu_ddp)
    finally:
        if args.keep:
            print(f"scratch kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print()
    print(render(parts))
    print(f"\ntotal {time.perf_counter() - start:.0f}s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"device": device, "size": ctx.size, "parts": parts, "elapsed_s": time.perf_counter() - start}
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if any(p["status"] == "FAILED" for p in parts.values()) else 0
