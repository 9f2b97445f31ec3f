"""Benchmark 3: tier-1 association generation, cues/s batched vs one cue at a time.

Both sides call the project's public ``lexalign.models.generation.generate`` (the packaged Gemma 3 270M at
full size, the decoding of the embedded default config) on the same test-cue prompts from the
project's template stage (the illustrative English norms through ``ingest`` and ``build_templates``);
only ``batch_size`` differs: the config's ``lexical.batch_size`` vs 1. ``generate`` loads the model
itself, so each worker first times a ``load_model`` of its own and subtracts it (the page cache is
warm by then, so the two loads match).
"""

from __future__ import annotations

import logging

from bench.common import REPO, Result, eval_model_dir, speedup, time_speedup
from lexalign.testing.workspace import Workspace, eval_prompts, lexical_settings, measure

NAME = "generation"
TITLE = "3. Tier-1 generation: cues/s batched (lexical default batch) vs one cue at a time"
log = logging.getLogger("bench.generation")

# max_new_tokens is below the production default (256) so that the one-at-a-time baseline fits the
# 15-minute budget on 2 CPU cores; the base model rarely stops early, so both sides decode ~all of it.
FULL = {"cues_single": 6, "cues_batched": 32, "max_new_tokens": 32}
TINY = {"cues_single": 3, "cues_batched": 6, "max_new_tokens": 8}


def generation_throughput(model_dir: str, eval_table: str, cues: int, batch_size: int, max_new_tokens: int) -> dict:
    """Generate for the first ``cues`` test cues (sorted by cue) with ``lexalign.models.generation.generate``.

    The one-at-a-time side takes fewer cues (it is slow); all prompts come from one template and differ
    only in the cue word, and the base model rarely stops early, so cues/s stays comparable."""
    import time

    import polars as pl

    from lexalign.models.generation import Decoding, generate
    from lexalign.models.loading import load_model

    frame = pl.read_parquet(eval_table).sort("cue").head(cues)
    conversations = frame["prompt"].to_list()
    start, cpu_start = time.perf_counter(), time.process_time()
    load_model(model_dir)
    load_seconds, load_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    start, cpu_start = time.perf_counter(), time.process_time()
    settings = {**lexical_settings(REPO), "backend": "hf", "batch_size": batch_size, "max_new_tokens": max_new_tokens}
    out = generate(model_dir, conversations, Decoding.from_config(settings, "lexical"))
    total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start
    net = max(total - load_seconds, 1e-9)
    cpu_net = max(cpu_total - load_cpu, 1e-9)
    return {
        "cues": len(conversations),
        "cues_per_s": len(conversations) / net,
        "cues_per_cpu_s": len(conversations) / cpu_net,
        "seconds": net,
        "seconds_with_load": total,
        "load_seconds": load_seconds,
        "new_tokens": sum(g.n_tokens for g in out),
        "finished": sum(g.finished for g in out),
        "batch_size": batch_size,
        "sample": out[0].raw[:160] if out else None,
    }


generation_throughput.imports = ("torch", "transformers", "lexalign.models.generation", "lexalign.models.loading")


def _with_random_adapter(model_dir: str, rank: int, target_modules):
    """The prepared model loaded as lexalign loads it with an adapter (kept as LoRA layers): a random rank-``rank``
    LoRA on ``target_modules``, saved to a scratch folder and read back before any clock starts."""
    import tempfile

    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model

    with tempfile.TemporaryDirectory() as scratch:
        base = load_model(model_dir)
        lora = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=target_modules, init_lora_weights=False)
        get_peft_model(base.model, lora).save_pretrained(scratch)
        return load_model(model_dir, scratch)


def lora_throughput(
    model_dir: str, eval_table: str, cues: int, max_new_tokens: int, merged: bool, rank: int = 16
) -> dict:
    """Cues/s of one batch with a LoRA adapter (random, rank ``rank`` on q_proj/v_proj) kept as separate
    LoRA layers or merged into the in-memory copy of the weights; the adapter is built and loaded before
    the clock starts."""
    import time

    import polars as pl

    from lexalign.models.generation import generate_on_model, merging_pays

    conversations = pl.read_parquet(eval_table).sort("cue").head(cues)["prompt"].to_list()
    loaded = _with_random_adapter(model_dir, rank, ["q_proj", "v_proj"])
    model = loaded.model.merge_and_unload() if merged else loaded.model
    chosen = merging_pays(loaded.model.get_base_model())
    start, cpu_start = time.perf_counter(), time.process_time()
    out = generate_on_model(
        model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=max_new_tokens,
        batch_size=len(conversations),
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "cues": len(conversations),
        "cues_per_s": len(conversations) / seconds,
        "cues_per_cpu_s": len(conversations) / cpu,
        "seconds": seconds,
        "new_tokens": sum(g.n_tokens for g in out),
        "merged": merged,
        "merged_by_lexalign": chosen,
        "rank": rank,
    }


lora_throughput.imports = ("torch", "transformers", "peft", "lexalign.models.generation", "lexalign.models.loading")


def prefix_pass_seconds(model_dir: str, eval_table: str, row_major: bool, repeats: int, rank: int = 16) -> dict:
    """Seconds of the one-row pass over the prompts' shared prefix (``generation._prefix_cache``: the key/value
    cache every batch reuses) through a model with a LoRA adapter kept as LoRA layers, its weights needing no
    gradient: with the output layer's input made row-major as :func:`lexalign.models.loading.load_model` does,
    or (``row_major`` False) with that hook removed, the strided ``logits_to_keep`` slice reaching the layer."""
    import time

    import polars as pl

    from lexalign.models import generation

    conversations = pl.read_parquet(eval_table).sort("cue")["prompt"].to_list()
    loaded = _with_random_adapter(model_dir, rank, "all-linear")
    if not row_major:
        loaded.model.get_output_embeddings()._forward_pre_hooks.clear()
    prompts = [generation.prompt_token_ids(loaded.tokenizer, c) for c in conversations]
    prefix = prompts[0][: generation._shared_prefix(prompts)]
    generation._prefix_cache(loaded.model, prefix)  # warm-up: first-call allocations are not the comparison
    start = time.perf_counter()
    for _ in range(repeats):
        generation._prefix_cache(loaded.model, prefix)
    return {"seconds": (time.perf_counter() - start) / repeats, "prefix_tokens": len(prefix), "repeats": repeats}


prefix_pass_seconds.imports = ("torch", "transformers", "peft", "lexalign.models.generation", "lexalign.models.loading")


def run(ctx: Workspace) -> list[Result]:
    size = TINY if ctx.tiny else FULL
    model_dir, label = eval_model_dir(ctx)
    table = eval_prompts(ctx)
    batch = int(lexical_settings(REPO)["batch_size"])
    runs = {}
    for name, batch_size, cues in (
        ("one at a time", 1, size["cues_single"]),
        (f"batch {batch}", batch, size["cues_batched"]),
    ):
        runs[name] = measure(
            ctx,
            "bench.generation:generation_throughput",
            {
                "model_dir": str(model_dir),
                "eval_table": str(table),
                "cues": cues,
                "batch_size": batch_size,
                "max_new_tokens": size["max_new_tokens"],
            },
            timeout=1800,
        )["value"]
    single, batched = runs["one at a time"], runs[f"batch {batch}"]
    effective = min(batch, batched["cues"])
    lora = {
        merged: measure(
            ctx,
            "bench.generation:lora_throughput",
            {
                "model_dir": str(model_dir),
                "eval_table": str(table),
                "cues": size["cues_single"],
                "max_new_tokens": size["max_new_tokens"],
                "merged": merged,
            },
            timeout=1800,
        )["value"]
        for merged in (False, True)
    }
    prefix = {
        row_major: measure(
            ctx,
            "bench.generation:prefix_pass_seconds",
            {"model_dir": str(model_dir), "eval_table": str(table), "row_major": row_major, "repeats": 3},
            timeout=900,
        )["value"]
        for row_major in (True, False)
    }
    chosen = lora[True]["merged_by_lexalign"]  # what lexalign.models.generation.load_for_generation does here
    ways = {True: "merged into a copy of the weights", False: "kept as LoRA layers"}
    return [
        time_speedup(
            NAME,
            "shared-prefix pass with a LoRA adapter, row-major output-layer input vs the strided slice",
            round(prefix[True]["seconds"], 4),
            "strided logits_to_keep slice",
            round(prefix[False]["seconds"], 4),
            None if ctx.tiny else ">= 2",  # the tiny model's output layer is too small for the copy to show
            detail={"model": label, "runs": {"row_major": prefix[True], "strided": prefix[False]}},
            note=f"{label}; rank-16 LoRA on every linear layer; {prefix[True]['prefix_tokens']} prefix tokens, "
            "one row, logits_to_keep=1; lexalign.models.loading: row-major (load_model's output-layer hook)",
        ),
        speedup(
            NAME,
            "cues/s with a LoRA adapter as lexalign loads it vs the other way",
            round(lora[chosen]["cues_per_s"], 3),
            "cues/s",
            ways[not chosen],
            round(lora[not chosen]["cues_per_s"], 3),
            ">= 1",
            detail={"model": label, "runs": {"merged": lora[True], "unmerged": lora[False]}},
            note=f"{label}; rank-16 LoRA on q_proj, v_proj; {size['cues_single']} cues in one batch; "
            f"lexalign.models.generation: {ways[chosen]} (generation.merging_pays)",
        ),
        speedup(
            NAME,
            f"cues/s, batch {effective} vs one at a time",
            round(batched["cues_per_s"], 3),
            "cues/s",
            "batch 1",
            round(single["cues_per_s"], 3),
            ">= 5",
            detail={"model": label, "runs": runs, "max_new_tokens": size["max_new_tokens"]},
            note=(
                f"{label}; {batched['cues']} vs {single['cues']} test cues (same template), greedy, max_new_tokens "
                f"{size['max_new_tokens']}; "
                f"{batched['new_tokens'] / batched['cues']:.0f} vs {single['new_tokens'] / single['cues']:.0f} new "
                f"tokens per cue, "
                f"{batched['finished']}/{single['finished']} stopped early; model load "
                f"({single['load_seconds']:.1f}s) excluded"
            ),
        ),
        speedup(
            NAME,
            f"cues per CPU-second, batch {effective} vs one at a time",
            round(batched["cues_per_cpu_s"], 4),
            "cues/cpu-s",
            "batch 1",
            round(single["cues_per_cpu_s"], 4),
            None,
            note="process CPU time: less sensitive to other load on the machine",
        ),
    ]
