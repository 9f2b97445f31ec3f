"""Benchmark 4: WVS items/s from option logits vs generate-and-parse, and the parse failures of each.

One worker loads the model once (the packaged Gemma 3 270M at full size) and asks the same WVS-7
catalog items (``lexalign.wvs_catalog.load_catalog``, spread over the catalog, US interviewer
framing, English prompts from ``lexalign.wvs_prompts.build_prompt`` / ``render``) both ways with the
project's own functions and the schema's default ``wvs.batch_size``: ``score_options`` (one forward
pass per batch, option probabilities from the logits) and ``lexalign.generation.generate_on_model`` +
``parse_answer`` (greedy, the schema's default ``wvs.max_new_tokens``). A logits failure is an item
without a finite distribution over its options; a generate failure is an answer ``parse_answer``
cannot map to an option.
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

    from lexalign.generation import generate_on_model
    from lexalign.models import load_model
    from lexalign.templates import prompt_templates
    from lexalign.wvs_catalog import load_catalog
    from lexalign.wvs_prompts import build_prompt, item_text, option_numbers, render
    from lexalign.wvs_scoring import parse_answer, score_options

    catalog = load_catalog()
    picks = sorted({round(i) for i in np.linspace(0, len(catalog) - 1, items)})
    chosen = [catalog[i] for i in picks]
    loaded = load_model(model_dir)
    model, tokenizer = loaded.model, loaded.tokenizer
    model.eval()
    templates = prompt_templates("en")
    conversations = [build_prompt(item, templates, "en", "United States", "interviewer")[0] for item in chosen]
    prompts = [render(tokenizer, messages) for messages in conversations]
    n_options = [item["n_options"] for item in chosen]
    answers = [option_numbers(n) for n in n_options]
    score_options(model, tokenizer, prompts[:1], answers[:1], batch_size)  # warm-up, not timed

    start, cpu_start = time.perf_counter(), time.process_time()
    scored = score_options(model, tokenizer, prompts, answers, batch_size)
    logits_seconds, logits_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    logits_failures = sum(
        1
        for s, n in zip(scored, n_options)
        if len(s["probs"]) != n or not all(math.isfinite(p) for p in s["probs"]) or abs(sum(s["probs"]) - 1) > 1e-6
    )

    start, cpu_start = time.perf_counter(), time.process_time()
    generations = generate_on_model(
        model,
        tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    texts = [g.raw for g in generations]
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
        "prompt_tokens_mean": sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
        / len(prompts),
    }


wvs_throughput.imports = ("torch", "transformers", "lexalign.wvs_scoring", "lexalign.models")


def schema_defaults() -> dict:
    """The ``wvs`` section's defaults, from config/schema.yaml (the only place defaults live)."""
    import yaml

    from bench.common import REPO

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))
    return {
        key: spec["default"] for key, spec in schema["properties"]["wvs"]["properties"].items() if "default" in spec
    }


def run(ctx: Context) -> list[Result]:
    size = TINY if ctx.tiny else FULL
    model_dir, label = eval_model_dir(ctx)
    defaults = schema_defaults()
    batch, new_tokens = int(defaults["batch_size"]), int(defaults["max_new_tokens"])
    value = measure(
        ctx,
        "bench.wvs:wvs_throughput",
        {"model_dir": str(model_dir), "items": size["items"], "batch_size": batch, "max_new_tokens": new_tokens},
        timeout=900,
    )["value"]
    note = (
        f"{label}; {value['items']} catalog items, batch {batch}, prompts ~{value['prompt_tokens_mean']:.0f} tokens, "
        f"generate max_new_tokens {new_tokens}"
    )
    return [
        speedup(
            NAME,
            "items/s, option logits vs generate-and-parse",
            round(value["logits_items_per_s"], 3),
            "items/s",
            "generate+parse",
            round(value["generate_items_per_s"], 3),
            ">= 10",
            detail={"model": label, **value},
            note=note,
        ),
        speedup(
            NAME,
            "items per CPU-second, logits vs generate-and-parse",
            round(value["logits_items_per_cpu_s"], 4),
            "items/cpu-s",
            "generate+parse",
            round(value["generate_items_per_cpu_s"], 4),
            None,
            note="process CPU time: less sensitive to other load on the machine",
        ),
        Result(
            NAME,
            "parse failures, logits mode",
            float(value["logits_failures"]),
            "items",
            target="== 0",
            note=f"of {value['items']} items (no finite distribution over the options)",
        ).judge(),
        Result(
            NAME,
            "parse failures, generate mode",
            float(value["generate_failures"]),
            "items",
            detail={"failed_answers": value["failed_answers"]},
            note=f"of {value['items']} items; e.g. {value['failed_answers'][:2]!r}"[:200],
        ),
    ]
