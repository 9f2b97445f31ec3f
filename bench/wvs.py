"""Benchmark 4: WVS items/s from option logits vs lm-evaluation-harness style scoring and vs generate-and-parse.

One worker loads the model once (the packaged Gemma 3 270M at full size) and asks the same WVS-7
catalog items (``lexalign.wvs.sources.catalog.load_catalog``, spread over the catalog, US interviewer
framing, English prompts from ``lexalign.wvs.prompts.build_prompt`` / ``render``) three ways, with
the schema's default ``wvs.batch_size``:

- ``score_options`` (the project: the shared prompt prefix run once, only the answer positions
  through the output layer, one sequence per item for number answers);
- ``loglikelihood_requests`` (the baseline, the way lm-evaluation-harness scores multiple choice: one
  log-likelihood request per option, each a full forward of context + continuation with
  log-softmax over the whole sequence's logits, requests sorted by length and batched, right
  padded). Its probabilities must equal the project's (max abs difference < 1e-5, asserted). It is
  also timed with lm-evaluation-harness' ``logits_cache`` grouping (requests whose single-token
  continuations share a context share one forward), reported as context;
- ``lexalign.models.generation.generate_on_model`` + ``parse_answer`` (greedy, the schema's default
  ``wvs.max_new_tokens``).

A logits failure is an item without a finite distribution over its options; a generate failure is
an answer ``parse_answer`` cannot map to an option.
"""

from __future__ import annotations

import logging
import math

from bench.common import Result, eval_model_dir, speedup
from lexalign.testing.workspace import Workspace, measure

NAME = "wvs"
TITLE = "4. WVS: items/s from option logits vs generate-and-parse; parse failures"
log = logging.getLogger("bench.wvs")

FULL = {"items": 12}
TINY = {"items": 6}


def _encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness' ``_encode_pair``: trailing whitespace of the context moves to the
    continuation; the continuation's tokens are those of context + continuation after the context's."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    return whole[: len(context_ids)], whole[len(context_ids) :]


def loglikelihood_requests(
    model, tokenizer, prompts, answers, batch_size: int, digit_mask, logits_cache: bool = False
) -> list[list[float]]:
    """Per item, each answer's log-likelihood, one request per option as lm-evaluation-harness runs them.

    Every request is a forward of context + continuation[:-1] (with the last token too when the
    number is a prefix of another option's, "1" beside "10": then "1, then no further digit" is
    scored, as ``score_options`` does), full-vocabulary log-softmax at every position, requests sorted
    by length (longest first) and right padded. ``logits_cache``: requests with a single-token
    continuation and the same input share one forward (lm-evaluation-harness' default grouping).
    """
    import torch

    requests = []  # (item, option, input ids, continuation ids, terminated)
    for item, (prompt, strings) in enumerate(zip(prompts, answers)):
        for option, answer in enumerate(strings):
            context, continuation = _encode_pair(tokenizer, prompt, answer)
            terminated = answer.isdigit() and any(o != answer and o.startswith(answer) for o in strings)
            ids = context + (continuation if terminated else continuation[:-1])
            requests.append((item, option, ids, continuation, terminated))
    groups: dict = {}
    for request in requests:
        key = tuple(request[2]) if logits_cache and len(request[3]) == 1 else (id(request),)
        groups.setdefault(key, []).append(request)
    runs = sorted(groups.values(), key=lambda g: -len(g[0][2]))
    scores = [[float("nan")] * len(strings) for strings in answers]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(runs), batch_size):
        batch = runs[start : start + batch_size]
        width = max(len(g[0][2]) for g in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, group in enumerate(batch):
            ids[row, : len(group[0][2])] = torch.tensor(group[0][2])
            mask[row, : len(group[0][2])] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for row, group in enumerate(batch):
            length = len(group[0][2])
            for item, option, _ids, continuation, terminated in group:
                n = len(continuation)
                first = length - n - (1 if terminated else 0)  # the position predicting continuation[0]
                total = sum(float(logp[row, first + j, token]) for j, token in enumerate(continuation))
                if terminated:
                    stop = 1.0 - float(logp[row, length - 1][digit_mask].exp().sum())
                    total += math.log(max(stop, 1e-30))
                scores[item][option] = total
    return scores


def wvs_throughput(model_dir: str, items: int, batch_size: int, max_new_tokens: int) -> dict:
    import time

    import numpy as np

    from lexalign.models.generation import generate_on_model
    from lexalign.models.loading import load_model
    from lexalign.norms.templates import prompt_templates
    from lexalign.wvs.prompts import build_prompt, item_text, option_numbers, render
    from lexalign.wvs.scoring import _softmax, digit_token_mask, parse_answer, score_options
    from lexalign.wvs.sources.catalog import load_catalog

    catalog = load_catalog()
    picks = sorted({round(i) for i in np.linspace(0, len(catalog) - 1, items)})
    chosen = [catalog[i] for i in picks]
    # float32 on both sides: the check is that two ways of scoring give the same probabilities, which
    # bfloat16 rounding (dtype auto on a CPU with native bf16) would blur; the ratio counts forward passes
    loaded = load_model(model_dir, dtype="float32")
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

    digit_mask = digit_token_mask(tokenizer, model.get_output_embeddings().weight.shape[0])
    loglikelihood_requests(model, tokenizer, prompts[:1], answers[:1], batch_size, digit_mask)  # warm-up
    baseline = {}
    for grouped in (False, True):
        start, cpu_start = time.perf_counter(), time.process_time()
        logprobs = loglikelihood_requests(model, tokenizer, prompts, answers, batch_size, digit_mask, grouped)
        baseline[grouped] = (time.perf_counter() - start, time.process_time() - cpu_start, logprobs)
    differences = [
        float(np.max(np.abs(_softmax(np.asarray(lp, dtype=float)) - np.asarray(s["probs"]))))
        for grouped in (False, True)
        for lp, s in zip(baseline[grouped][2], scored)
    ]
    max_diff = max(differences)
    assert max_diff < 1e-5, f"option probabilities differ from the lm-evaluation-harness style baseline: {max_diff}"
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
        "requests": sum(len(a) for a in answers),
        "lmeval_items_per_s": len(chosen) / baseline[False][0],
        "lmeval_seconds": baseline[False][0],
        "lmeval_items_per_cpu_s": len(chosen) / baseline[False][1],
        "lmeval_cached_items_per_s": len(chosen) / baseline[True][0],
        "lmeval_cached_items_per_cpu_s": len(chosen) / baseline[True][1],
        "max_abs_prob_diff": max_diff,
        "failed_answers": failures[:5],
        "argmax_agrees_with_parsed": agree,
        "prompt_tokens_mean": sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
        / len(prompts),
    }


wvs_throughput.imports = ("torch", "transformers", "lexalign.wvs.scoring", "lexalign.models.loading")


def schema_defaults() -> dict:
    """The ``wvs`` section's defaults, from src/lexalign/resources/schema.yaml (the only place defaults live)."""
    import yaml

    from lexalign.core.resources import SCHEMA

    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    return {
        key: spec["default"] for key, spec in schema["properties"]["wvs"]["properties"].items() if "default" in spec
    }


def run(ctx: Workspace) -> list[Result]:
    size = TINY if ctx.tiny else FULL
    model_dir, label = eval_model_dir(ctx)
    defaults = schema_defaults()
    batch, new_tokens = int(defaults["batch_size"]), int(defaults["max_new_tokens"])
    value = measure(
        ctx,
        "bench.wvs:wvs_throughput",
        {"model_dir": str(model_dir), "items": size["items"], "batch_size": batch, "max_new_tokens": new_tokens},
        timeout=1800,
    )["value"]
    note = (
        f"{label}, run in float32 here; {value['items']} catalog items, batch {batch}, "
        f"prompts ~{value['prompt_tokens_mean']:.0f} tokens, "
        f"generate max_new_tokens {new_tokens}"
    )
    return [
        speedup(
            NAME,
            "items/s, option logits vs lm-eval style (one request per option)",
            round(value["logits_items_per_s"], 3),
            "items/s",
            "lm-eval loglikelihood",
            round(value["lmeval_items_per_s"], 3),
            ">= 4",
            detail={"model": label, **value},
            note=f"{note}; {value['requests']} requests, each a full forward of context + continuation with "
            f"full-sequence log-softmax; probabilities identical (max abs diff {value['max_abs_prob_diff']:.1e})",
        ),
        speedup(
            NAME,
            "items/s, option logits vs lm-eval style with its logits cache",
            round(value["logits_items_per_s"], 3),
            "items/s",
            "lm-eval + logits_cache",
            round(value["lmeval_cached_items_per_s"], 3),
            None,
            note="lm-evaluation-harness' default grouping: single-token continuations of one context share a forward",
        ),
        speedup(
            NAME,
            "items per CPU-second, logits vs lm-eval style",
            round(value["logits_items_per_cpu_s"], 4),
            "items/cpu-s",
            "lm-eval loglikelihood",
            round(value["lmeval_items_per_cpu_s"], 4),
            None,
            note="process CPU time: less sensitive to other load on the machine",
        ),
        speedup(
            NAME,
            "items/s, option logits vs generate-and-parse",
            round(value["logits_items_per_s"], 3),
            "items/s",
            "generate+parse",
            round(value["generate_items_per_s"], 3),
            ">= 10",
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
