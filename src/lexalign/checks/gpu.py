"""``lexalign check gpu``: does the paper's GPU path work, and how fast is it? (one command, under 10 minutes
on one H100; ``--deadline-s`` bounds the whole run)

Every part runs a rule's own entry point (:mod:`lexalign.checks.gpu_parts`), each in its own process at full
size (GPU memory is given back between parts), with its wall time, tokens/s or items/s and peak memory:

1. prepare     the packaged Gemma 3 270M (``--model gemma``, the default with CUDA; cached between runs) or the
               tiny random model, and two tiny random models in Llama 3.1's and Qwen 2.5's chat formats
               (:mod:`lexalign.checks.chat_models`: their special tokens, templates, stop tokens)
2. sft, dpo    a few steps of each through rule train's entry point (:func:`lexalign.train.run.run`) with
               gradient checkpointing; data-parallel over the visible GPUs, with ZeRO-2 where more than one
               is visible and DeepSpeed is installed (part ``zero2`` says which); MFU from the FLOPs a LoRA
               step runs (:func:`lexalign.checks.cards.lora_train_flops_per_token`)
3. grpo_hf,    GRPO with transformers rollouts and with vLLM colocated (the paper preset's settings)
   grpo_vllm
4. per chat format (gemma, llama3, qwen2.5): an SFT adapter (the main model's from part 2), tier-1 generation
   with it on hf and vllm (greedy: identical answers expected, else the first difference is shown) and WVS
   option probabilities on hf and vllm (equal within :data:`WVS_TOLERANCE`, else the part FAILs)

A part that cannot run says ``skipped`` and why (no CUDA, no vLLM, one GPU, the deadline reached), never
``ran``. The figures go to ``--out`` (JSON; the README's performance section reads it). Without CUDA
everything runs at tiny size (``--tiny``: in this process; the test suite runs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from lexalign.config import methods
from lexalign.core.io import check_replaceable, write_owned_json
from lexalign.testing.workspace import (
    DEFAULT_CACHE,
    Workspace,
    checkout_config,
    eval_prompts,
    gemma_model_dir,
    lexical_settings,
    measure,
    sft_table,
    tiny_model_dir,
)

log = logging.getLogger(__name__)

GPU = {"steps": 20, "grpo_steps": 4, "cues": 400, "examples": 1200, "gen_cues": 32, "wvs_items": 30, "batch": 8}
TINY = {"steps": 2, "grpo_steps": 1, "cues": 40, "examples": 30, "gen_cues": 3, "wvs_items": 3, "batch": 2}
#: Size of the Llama-3.1- and Qwen-2.5-format random models (full size: big enough that kernels, not
#: Python, take the time; tiny: seconds on a CPU).
FORMAT_MODEL = {"full": {"hidden_size": 512, "num_layers": 4, "vocab_size": 4096}, "tiny": {}}
#: Largest absolute difference of an option probability between the hf and vllm backends (bfloat16 kernels
#: of the two engines round differently; float32 on a CPU agrees to 1e-4).
WVS_TOLERANCE = 0.02
DEADLINE_S = 570.0
WVS_CSV = Path("data") / "illustrative" / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv"
PARTS = f"{__package__}.gpu_parts"


def _skip(why: str) -> dict:
    return {"status": "skipped", "why": why}


class Run:
    """The parts run so far and the time left: a part that would start after the deadline is skipped."""

    def __init__(self, ctx: Workspace, deadline_s: float):
        self.ctx, self.parts = ctx, {}
        self.deadline_s, self.ends = deadline_s, time.monotonic() + deadline_s

    def attempt(self, name: str, target: str, **args) -> dict:
        left = self.ends - time.monotonic()
        if left <= 0:
            self.parts[name] = _skip(f"the deadline of {self.deadline_s:.0f} s was reached before this part")
            return self.parts[name]
        try:
            measured = measure(self.ctx, f"{PARTS}:{target}", args, timeout=left)
            part = {"status": "ran", **measured["value"], "peak_rss_mb": measured.get("peak_rss_mb")}
        except Exception as exc:  # noqa: BLE001 - one part's failure is reported, the others still run
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            log.error("%s failed: %s", name, exc)
            part = {"status": "FAILED", "why": f"{type(exc).__name__}: {first}"[:300]}
        self.parts[name] = part
        return part


def vllm_missing(cuda: bool) -> str | None:
    """Why the vLLM parts cannot run here (None: they can)."""
    if not cuda:
        return "no CUDA (vLLM needs a GPU)"
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install 'lexalign[vllm]')"
    return None


def distribution(cuda: bool, gpus: int, cpu_ddp: bool) -> tuple[int, str | None, str | None]:
    """(training processes, train.distributed, why ZeRO-2 does not run or None)."""
    if not cuda:
        return (2 if cpu_ddp else 1), None, "no CUDA (ZeRO-2 runs on GPUs)"
    if gpus < 2:
        return 1, None, "one GPU visible: nothing to shard over"
    if importlib.util.find_spec("deepspeed") is None:
        return gpus, None, "deepspeed is not installed (pip install deepspeed): DDP instead"
    return gpus, "zero2", None


def _format_models(ctx: Workspace) -> dict[str, Path]:
    from lexalign.checks.chat_models import FORMATS, build_chat_model
    from lexalign.models.prepare import prepare_model

    models = {}
    for name, chat in FORMATS.items():
        raw = build_chat_model(ctx.work_dir / "models" / name / "raw", chat, **FORMAT_MODEL[ctx.size])
        models[name] = prepare_model(name, {"path": str(raw)}, ctx.work_dir / "models" / name / "prepared")
    return models


def _humans(ctx: Workspace, config: dict) -> Path:
    from lexalign.wvs.humans import build_humans

    out = ctx.work_dir / "wvs"
    wvs = config["wvs"]
    source = {"type": "wvs_csv", "path": str(ctx.checkout / WVS_CSV)}
    build_humans(
        source, out / "humans.parquet", out / "humans.json", catalog=None, bad_rows="skip", countries=wvs["countries"]
    )
    return out / "humans.parquet"


def _wvs_settings(config: dict, items: int) -> dict:
    from lexalign.core.settings import field_names
    from lexalign.wvs.settings import WvsSettings

    section = {key: config["wvs"].get(key) for key in field_names(WvsSettings)}
    return {**section, "max_items": items, "high_tension_n": min(items, section["high_tension_n"])}


def method_of(trainer: str) -> str:
    """The trained method that starts from the base model with TRL trainer ``trainer`` (the registry's)."""
    return next(
        name for name in methods.TRAINED if methods.get(name).trainer == trainer and not methods.get(name).init_from
    )


def compare_answers(hf: dict, vllm: dict) -> dict:
    """Greedy answers of the two backends: how many are identical, and the first that is not."""
    pairs = list(zip(hf["answers"], vllm["answers"]))
    differing = [i for i, (a, b) in enumerate(pairs) if a != b]
    result = {"status": "ran", "identical": len(pairs) - len(differing), "of": len(pairs)}
    if differing:
        first = differing[0]
        result["first_difference"] = {"cue": first, "hf": pairs[first][0][:120], "vllm": pairs[first][1][:120]}
    return result


def compare_probs(hf: dict, vllm: dict, tolerance: float = WVS_TOLERANCE) -> dict:
    """Option probabilities of the two backends: the largest absolute difference, within ``tolerance``?"""
    diff = max((abs(a - b) for p, q in zip(hf["probs"], vllm["probs"]) for a, b in zip(p, q)), default=0.0)
    if diff > tolerance:
        return {"status": "FAILED", "why": f"largest probability difference {diff:.3g} > tolerance {tolerance}"}
    return {"status": "ran", "max_prob_diff": diff, "tolerance": tolerance, "items": len(hf["probs"])}


def check(ctx: Workspace, cuda: bool, gpus: int, cpu_ddp: bool = False, deadline_s: float = DEADLINE_S) -> dict:
    """Run the parts; returns {part: {"status": ran|skipped|FAILED, figures... or "why"}}."""
    size = TINY if ctx.tiny else GPU
    run = Run(ctx, deadline_s)
    parts = run.parts
    use_gemma = ctx.model == "gemma" or (ctx.model == "auto" and not ctx.tiny)
    try:
        main = gemma_model_dir(ctx) if use_gemma else tiny_model_dir(ctx)
        models = {"gemma": main, **_format_models(ctx)}
        parts["prepare"] = {
            "status": "ran",
            "models": {"gemma": "Gemma 3 270M (packaged)" if use_gemma else "tiny random Llama, Gemma format"}
            | {name: "tiny random Llama, its chat format" for name in models if name != "gemma"},
        }
    except Exception as exc:  # noqa: BLE001
        parts["prepare"] = {"status": "FAILED", "why": f"{type(exc).__name__}: {exc}"[:300]}
        return parts
    config = checkout_config(ctx.checkout)
    tables = sft_table(ctx, size["cues"], size["examples"]).parent
    work = ctx.work_dir / "gpu-check"
    processes, distributed, no_zero2 = distribution(cuda, gpus, cpu_ddp)
    parts["zero2"] = _skip(no_zero2) if no_zero2 else {"status": "ran", "note": f"sft, dpo, grpo on {gpus} GPUs"}
    short = {} if cuda else {"max_completion_length": 16}
    train = dict(batch_size=size["batch"], processes=processes, distributed=distributed)
    for trainer in ("sft", "dpo"):
        method = method_of(trainer)
        run.attempt(
            trainer,
            "train_part",
            model_dir=str(main),
            data=str(tables / f"{methods.get(method).data_table}.parquet"),
            work=str(work / trainer),
            method=method,
            steps=size["steps"],
            hyper={},
            **train,
        )
    rl = method_of("grpo")
    grpo = dict(model_dir=str(main), data=str(tables / f"{methods.get(rl).data_table}.parquet"), method=rl)
    grpo |= {**train, "steps": size["grpo_steps"], "batch_size": max(size["batch"], 4)}  # a group of 4 per device
    run.attempt("grpo_hf", "train_part", work=str(work / "grpo_hf"), hyper=short, **grpo)
    missing = vllm_missing(cuda)
    if missing:
        parts["grpo_vllm"] = _skip(missing)
    else:
        colocated = {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
        colocated["vllm_max_model_length"] = 1024
        run.attempt("grpo_vllm", "train_part", work=str(work / "grpo_vllm"), hyper=colocated, **grpo)
    eval_table = str(eval_prompts(ctx))
    decoding = {**lexical_settings(ctx.checkout), "no_repeat_ngram_size": 0}  # vLLM has no n-gram blocking
    if not cuda:
        decoding["max_new_tokens"] = 16
    humans = str(_humans(ctx, config))
    wvs = _wvs_settings(config, size["wvs_items"])
    for name, model in models.items():
        adapter = parts["sft"].get("adapter") if name == "gemma" else None
        if name != "gemma":
            sft = dict(model_dir=str(model), data=str(tables / "sft.parquet"), work=str(work / name / "sft"))
            sft |= {"method": method_of("sft"), "steps": size["steps"], "hyper": {}}
            trained = run.attempt(f"{name}/sft", "train_part", **sft, **train)
            adapter = trained.get("adapter")
        if not adapter:
            for part in ("generate_hf", "generate_vllm", "wvs_hf", "wvs_vllm"):
                parts[f"{name}/{part}"] = _skip("no adapter: its sft part did not run")
            continue
        common = dict(model_dir=str(model), adapter=adapter)
        for kind, target, args in (
            ("generate", "generate_part", dict(eval_table=eval_table, cues=size["gen_cues"], settings=decoding)),
            ("wvs", "wvs_part", dict(humans=humans, settings=wvs, method=method_of("sft"))),
        ):
            extra = {"work": str(work / name / "wvs_hf")} if kind == "wvs" else {}
            hf = run.attempt(f"{name}/{kind}_hf", target, backend="hf", **common, **args, **extra)
            if missing:
                parts[f"{name}/{kind}_vllm"] = _skip(missing)
                continue
            extra = {"work": str(work / name / "wvs_vllm")} if kind == "wvs" else {}
            other = run.attempt(f"{name}/{kind}_vllm", target, backend="vllm", **common, **args, **extra)
            if hf["status"] == other["status"] == "ran":
                compare = compare_answers if kind == "generate" else compare_probs
                parts[f"{name}/{kind}_hf_vs_vllm"] = compare(hf, other)
    return parts


SHOWN = ("status", "why", "adapter", "answers", "probs", "note", "first_difference", "method", "backend")


def _figures(part: dict) -> str:
    shown = []
    for key, value in part.items():
        if key in SHOWN:
            continue
        if key == "mfu":
            shown.append("mfu n/a" + (" (card not in cards.PEAK_BF16_TFLOPS)" if part.get("device") else " (no GPU)"))
            if value is not None:
                shown[-1] = f"mfu {value:.1%}"
        elif isinstance(value, dict):
            shown.append(f"{key} {json.dumps(value, ensure_ascii=False)}")
        elif value is None:
            continue
        elif isinstance(value, float):
            shown.append(f"{key} {value:.3g}" if abs(value) < 1 else f"{key} {value:,.1f}")
        else:
            shown.append(f"{key} {value}")
    if part.get("first_difference"):
        shown.append(f"first difference {json.dumps(part['first_difference'], ensure_ascii=False)}")
    return ", ".join(shown)


def render(parts: dict) -> str:
    width = max(map(len, parts), default=4)
    lines = [f"{'part':{width}s} {'status':8s} figures / reason", f"{'-' * width} {'-' * 8} {'-' * 40}"]
    for name, part in parts.items():
        text = part.get("why") or _figures(part)
        if part.get("note"):
            text += f" ({part['note']})"
        lines.append(f"{name:{width}s} {part['status']:8s} {text}")
    return "\n".join(lines)


def _report(parts: dict) -> dict:
    """The JSON result: the parts without their raw answers and probabilities (only the comparisons)."""
    return {name: {k: v for k, v in part.items() if k not in ("answers", "probs")} for name, part in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lexalign check gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny models and sizes, parts in this process (tests)")
    parser.add_argument(
        "--model",
        choices=("auto", "gemma", "tiny"),
        default="auto",
        help="the training parts' model (Gemma format); auto: the packaged Gemma 3 270M with CUDA, tiny without",
    )
    parser.add_argument("--cpu-ddp", action="store_true", help="without CUDA, train with 2 CPU workers (accelerate)")
    parser.add_argument("--deadline-s", type=float, default=DEADLINE_S, help="stop starting parts after this (570)")
    parser.add_argument("--out", type=Path, default=Path("results/checks/gpu.json"), help="the JSON result file")
    parser.add_argument("--force", action="store_true", help="replace --out even if lexalign did not write it")
    parser.add_argument("--cache-dir", type=Path, default=None, help="kept between runs (the prepared Gemma)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--checkout", type=Path, default=Path("."), help="the lexalign checkout whose config and norms it uses (.)"
    )
    args = parser.parse_args(argv)
    check_replaceable(args.out, args.force, what="--out")  # before minutes of work, not after
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
        parts = check(ctx, cuda, gpus, cpu_ddp=args.cpu_ddp, deadline_s=args.deadline_s)
    finally:
        if args.keep:
            print(f"scratch kept: {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    print()
    print(render(parts))
    print(f"\ntotal {elapsed:.0f}s (deadline {args.deadline_s:.0f}s)")
    report = {
        "device": device,
        "gpus": gpus,
        "torch": torch.__version__,
        "size": ctx.size,
        "deadline_s": args.deadline_s,
        "elapsed_s": elapsed,
        "parts": _report(parts),
    }
    write_owned_json(args.out, report, args.force)
    print(f"figures: {args.out}")
    return 1 if any(p["status"] == "FAILED" for p in parts.values()) else 0
