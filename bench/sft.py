"""Benchmark 2: SFT throughput (tokens/s) with the project's batching vs TRL's padded default.

The training data are real template rows: a synthetic SWOW-EN-shaped file (bench.ingest's generator,
realistic list lengths) goes through ``lexalign.ingest.ingest`` and ``lexalign.templates.build_templates``.
The project's trainer is ``lexalign.train.build_trainer`` (its preset, LoRA, optimizer, collator,
packing / padding-free settings, whatever train.py uses). The baseline is the very same trainer built
with TRL's padded default (``packing=False, padding_free=False``) swapped into its config. Each runs a
fixed number of optimizer steps in its own process; tokens are the real (non-pad) tokens the collator
receives, timed over the steps after the warm-up steps.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.common import Context, Result, gemma_model_dir, measure, skipped, speedup, tiny_model_dir

NAME = "sft"
TITLE = "2. SFT throughput: lexalign.train batching vs TRL padded default"
log = logging.getLogger("bench.sft")

FULL = {"steps": 6, "warmup": 1, "cues": 400, "examples": 600, "repeats": 2, "batch_size": 8}
TINY = {"steps": 2, "warmup": 1, "cues": 40, "examples": 30, "repeats": 1, "batch_size": 2}
MODEL = {"hidden_size": 256, "num_layers": 4, "vocab_size": 8192}


def sft_table(ctx: Context, cues: int, examples: int) -> Path:
    """sft.parquet from synthetic norms through the project's ingest and template stages."""
    from bench.ingest import SPLIT, US_FILTER, write_swow_en
    from lexalign.config import load_config
    from lexalign.ingest import ingest
    from lexalign.templates import build_templates

    from bench.common import REPO

    out = ctx.work_dir / "sft-data"
    table = out / "templates" / "sft.parquet"
    if table.is_file():
        return table
    csv = out / "norms.csv"
    write_swow_en(csv, n_cues=cues, per_cue=100, n_types=max(4000, cues * 40), seed=ctx.seed)
    ingest(csv, {"path": str(csv), "format": "raw", "filter": US_FILTER}, SPLIT, 42, out / "associations.parquet", out / "stats.json")
    settings = load_config(REPO / "config" / "config.yaml", REPO / "config" / "schema.yaml")["templates"]
    settings = {**settings, "sft_target_examples": examples}
    names = ("sft", "ranking", "dpo", "eval")
    build_templates(out / "associations.parquet", "en", settings, 42, {**{n: out / "templates" / f"{n}.parquet" for n in names}, "stats": out / "templates" / "stats.json"})
    return table


def train_throughput(model_dir: str, data: str, work: str, batching: str, steps: int, warmup: int, batch_size: int) -> dict:
    """Train ``steps`` optimizer steps of the project's SFT trainer; ``batching="padded"`` swaps in TRL's
    padded default. Returns tokens/s over the steps after ``warmup``."""
    import dataclasses
    import time

    from transformers import TrainerCallback

    import lexalign.train as train_module

    train_config = {"preset": "default", "presets": {}}
    settings = train_module.method_settings(train_config, "sft")
    settings["hyper"].update(
        max_steps=steps, save_steps=10_000, logging_steps=10_000, max_eval_examples=0, eval_steps=None,
        per_device_train_batch_size=batch_size, warmup_ratio=0.0,
    )
    job = train_module.TrainJob(
        method="sft", model_dir=model_dir, data=data, adapter_out=f"{work}/adapter", metrics_out=f"{work}/metrics.json",
        history_out=f"{work}/history.jsonl", checkpoint_dir=f"{work}/checkpoints", settings=settings, seed=42,
    )
    original = train_module.trainer_config
    if batching == "padded":
        def padded_config(job, has_eval):
            return dataclasses.replace(original(job, has_eval), packing=False, padding_free=False)

        train_module.trainer_config = padded_config
    try:
        trainer, _, _ = train_module.build_trainer(job)
    finally:
        train_module.trainer_config = original
    args = trainer.args
    counts: list[tuple[int, int]] = []  # (real tokens, tokens in the batch tensor) per collator call
    collate = trainer.data_collator

    def counting(features):
        batch = collate(features)
        real = sum(len(f["input_ids"]) for f in features)
        counts.append((real, int(batch["input_ids"].numel())))
        return batch

    trainer.data_collator = counting
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    accum = max(1, args.gradient_accumulation_steps)
    measured = counts[warmup * accum: steps * accum]
    seconds = marks[steps - 1] - marks[warmup - 1]
    real = sum(c[0] for c in measured)
    padded = sum(c[1] for c in measured)
    return {
        "tokens_per_s": real / seconds,
        "seconds_measured": seconds,
        "seconds_total": total,
        "real_tokens": real,
        "batch_tokens": padded,
        "padding_fraction": 1 - real / padded if padded else 0.0,
        "packing": bool(getattr(args, "packing", False)),
        "padding_free": bool(getattr(args, "padding_free", False)),
        "packing_strategy": getattr(args, "packing_strategy", None),
        "max_length": getattr(args, "max_length", None),
        "batch_size": args.per_device_train_batch_size,
        "attn_implementation": getattr(trainer.model.config, "_attn_implementation", None),
        "train_loss": trainer.state.log_history[-1].get("train_loss") if trainer.state.log_history else None,
    }


train_throughput.imports = ("torch", "transformers", "trl", "peft", "datasets", "lexalign.train")


def length_stats(model_dir: Path, table: Path) -> dict:
    """Token lengths of the SFT rows (prompt + completion, chat template applied)."""
    import polars as pl

    from lexalign.models import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    frame = pl.read_parquet(table).filter(pl.col("split") == "train")
    lengths = []
    for prompt, completion in frame.select("prompt", "completion").iter_rows():
        ids = tokenizer.apply_chat_template(prompt + completion, tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        lengths.append(len(ids))
    lengths.sort()
    pick = lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))]  # noqa: E731
    return {"rows": len(lengths), "mean": round(sum(lengths) / len(lengths), 1), "p50": pick(0.5), "p95": pick(0.95), "max": lengths[-1], "min": lengths[0]}


def sft_model(ctx: Context, table: Path) -> tuple[Path, str]:
    """The model SFT is timed with. Gemma 3 270M takes minutes per step on a 2-core CPU (its 262k-token
    vocabulary alone is 168M parameters), so the realistic-size run uses a mid-size random Llama whose
    tokenizer is trained on the SFT text (realistic tokens per word); ``--model gemma`` forces Gemma."""
    import polars as pl

    if ctx.model == "gemma":
        return gemma_model_dir(ctx), "Gemma 3 270M (packaged, fp32)"
    if ctx.tiny or ctx.model == "tiny":
        return tiny_model_dir(ctx), "tiny random Llama (h64, 2 layers, vocab 1k)"
    frame = pl.read_parquet(table)
    text = [m["content"] for messages in frame["prompt"].to_list() + frame["completion"].to_list() for m in messages]
    dims = MODEL
    directory = tiny_model_dir(ctx, dims["hidden_size"], dims["num_layers"], dims["vocab_size"], extra_text=text, name="sft-bench")
    return directory, f"random Llama (h{dims['hidden_size']}, {dims['num_layers']} layers, vocab {dims['vocab_size'] // 1024}k BPE trained on the SFT text)"


def run(ctx: Context) -> list[Result]:
    try:
        import lexalign.train as train_module  # noqa: F401
    except ImportError as exc:
        return [skipped(NAME, "tokens/s vs TRL padded default", f"lexalign.train not importable yet ({exc})", ">= 2")]
    size = TINY if ctx.tiny else FULL
    table = sft_table(ctx, size["cues"], size["examples"])
    model_dir, label = sft_model(ctx, table)
    lengths = length_stats(model_dir, table)
    runs: dict[str, list[dict]] = {"padded": [], "project": []}
    for repeat in range(size["repeats"]):
        for batching in ("padded", "project") if repeat % 2 == 0 else ("project", "padded"):
            work = ctx.work_dir / "sft" / f"{batching}{repeat}"
            runs[batching].append(measure(ctx, "bench.sft:train_throughput", {
                "model_dir": str(model_dir), "data": str(table), "work": str(work), "batching": batching,
                "steps": size["steps"], "warmup": size["warmup"], "batch_size": size["batch_size"],
            }, timeout=900))
    best = {k: max(v, key=lambda r: r["value"]["tokens_per_s"]) for k, v in runs.items()}
    project, padded = best["project"]["value"], best["padded"]["value"]
    same = (project["packing"], project["padding_free"]) == (padded["packing"], padded["padding_free"])
    bound = padded["batch_tokens"] / padded["real_tokens"] if padded["real_tokens"] else None
    note = (f"{label}; {size['steps'] - size['warmup']} timed steps x batch {size['batch_size']}, best of {size['repeats']}; "
            f"padding {padded['padding_fraction']:.0%} -> {project['padding_fraction']:.0%} of batch tokens; "
            f"project: packing={project['packing']} padding_free={project['padding_free']}")
    if same:
        note += " (train.py trains with TRL's padded default, so both runs are the same configuration)"
    return [
        speedup(NAME, "SFT tokens/s vs TRL padded default", round(project["tokens_per_s"], 1), "tok/s", "TRL padded",
                round(padded["tokens_per_s"], 1), ">= 2",
                detail={"model": label, "lengths": lengths, "project": project, "padded": padded,
                        "all_runs_tokens_per_s": {k: [round(r["value"]["tokens_per_s"], 1) for r in v] for k, v in runs.items()},
                        "compute_bound_gain_limit": round(bound, 3) if bound else None,
                        "peak_rss_mb": {k: round(v["peak_rss_mb"]) for k, v in best.items()}},
                note=note),
        Result(NAME, "padding-removal bound (padded batch tokens / real tokens)", round(bound, 3) if bound else None, "x",
               note="the most any padding-free / packing scheme can gain where compute scales with tokens (CPU)"),
        Result(NAME, "SFT example length (tokens)", lengths["mean"], "tok", detail=lengths,
               note=f"p50 {lengths['p50']}, p95 {lengths['p95']}, max {lengths['max']}, min {lengths['min']} over {lengths['rows']} train rows (paper: up to ~600)"),
    ]
