"""Benchmark 4: WVS items/s from option logits vs generate-and-parse, and the parse failures of each.

One worker loads the model once (the packaged Gemma 3 270M at full size) and asks the same WVS-7
catalog items (``lexalign.wvs_data.load_catalog``, spread over the catalog, US interviewer framing,
English prompts from ``lexalign.wvs.build_prompt`` / ``render``) both ways with the project's own
functions and its default batch size: ``score_options`` (one forward pass per batch, option
probabilities from the logits) and ``generate_answers`` + ``parse_answer`` (greedy, the wvs default
``max_new_tokens``). A logits failure is an item without a finite distribution over its options; a
generate failure is an answer ``parse_answer`` cannot map to an option.
"""

from __future__ import annotations

import logging

from bench.common import Context, Result, eval_model_dir, measure, speedup

NAME = "wvs"
TITLE = "4. WVS: items/s from option logits vs generate-and-parse; parse failures"
log = logging.getLogger("bench.wvs")

FULL = {"items": 16}
TINY = {"items": 6}


def wvs_throughput(model_dir: str, items: int, batch_size: int, max_new_tokens: int) -> dict:
    import math
    import time

    import numpy as np

    from lexalign.models import load_model
    from lexalign.wvs import build_prompt, generate_answers, item_text, parse_answer, render, score_options
    from lexalign.wvs_data import load_catalog

    catalog = load_catalog()
    picks = sorted({round(i) for i in np.linspace(0, len(catalog) - 1, items)})
    chosen = [catalog[i] for i in picks]
    loaded = load_model(model_dir)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.eval()
    prompts = [render(tokenizer, build_prompt(item, "en", "United States")[0]) for item in chosen]
    n_options = [item["n_options"] for item in chosen]
    score_options(model, tokenizer, prompts[:1], n_options[:1], batch_size)  # warm-up, not timed

    start, cpu_start = time.perf_counter(), time.process_time()
    scored = score_options(model, tokenizer, prompts, n_options, batch_size)
    logits_seconds, logits_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    logits_failures = sum(
        1 for s, n in zip(scored, n_options)
        if len(s["probs"]) != n or not all(math.isfinite(p) for p in s["probs"]) or abs(sum(s["probs"]) - 1) > 1e-6
    )

    start, cpu_start = time.perf_counter(), time.process_time()
    texts = generate_answers(model, tokenizer, prompts, loaded.stop_token_ids, batch_size, max_new_tokens)
    choices = [parse_answer(text, item_text(item, "en")[1]) for item, text in zip(chosen, texts)]
    generate_seconds, generate_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    failures = [text for text, choice in zip(texts, choices) if choice is None]
    agree = sum(int(np.argmax(s["probs"])) == c for s, c in zip(scored, choices) if c is not None)
    return {
        "items": len(chosen),
        "n_options": n_options,
        "logits_items_per_s": len(chosen) / logits_seconds,
        "logits_seconds": logits_seconds,
        "logits_items_per_cpu_s": len(chosen) / logits_cpu,
        "logits_failures": logits_failures,
        "generate_items_per_s": len(chosen) / generate_seconds,
        "generate_seconds": generate_seconds,
        "generate_items_per_cpu_s": len(chosen) / generate_cpu,
        "generate_failures": len(failures),
        "failed_answers": failures[:5],
        "argmax_agrees_with_parsed": agree,
        "prompt_tokens_mean": sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) / len(prompts),
    }


wvs_throughput.imports = ("torch", "transformers", "lexalign.wvs", "lexalign.models")


def run(ctx: Context) -> list[Result]:
    from lexalign.wvs import DEFAULTS

    size = TINY if ctx.tiny else FULL
    model_dir, label = eval_model_dir(ctx)
    batch, new_tokens = int(DEFAULTS.get("batch_size", 8)), int(DEFAULTS.get("max_new_tokens", 8))
    value = measure(ctx, "bench.wvs:wvs_throughput", {"model_dir": str(model_dir), "items": size["items"], "batch_size": batch,
                                                     "max_new_tokens": new_tokens}, timeout=900)["value"]
    note = f"{label}; {value['items']} catalog items, batch {batch}, prompts ~{value['prompt_tokens_mean']:.0f} tokens, generate max_new_tokens {new_tokens}"
    return [
        speedup(NAME, "items/s, option logits vs generate-and-parse", round(value["logits_items_per_s"], 3), "items/s", "generate+parse",
                round(value["generate_items_per_s"], 3), ">= 10", detail={"model": label, **value}, note=note),
        speedup(NAME, "items per CPU-second, logits vs generate-and-parse", round(value["logits_items_per_cpu_s"], 4), "items/cpu-s",
                "generate+parse", round(value["generate_items_per_cpu_s"], 4), None, note="process CPU time: less sensitive to other load on the machine"),
        Result(NAME, "parse failures, logits mode", float(value["logits_failures"]), "items", target="== 0",
               note=f"of {value['items']} items (no finite distribution over the options)").judge(),
        Result(NAME, "parse failures, generate mode", float(value["generate_failures"]), "items",
               detail={"failed_answers": value["failed_answers"]},
               note=f"of {value['items']} items; e.g. {value['failed_answers'][:2]!r}"[:200]),
    ]
