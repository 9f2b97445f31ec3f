"""Tier 2, cultural alignment: the ``wvs`` rule asks a model the WVS-7 items and compares its answer
distributions with the respondents of the two configured countries (``wvs.countries``, e.g. US and China).

Modules of the stage: :mod:`lexalign.wvs.sources.catalog` (items), :mod:`lexalign.config.countries` (the country pair),
:mod:`lexalign.wvs.sources.official` and :mod:`lexalign.wvs.humans` (human distributions, the ``wvs_humans`` rule),
:mod:`lexalign.wvs.prompts` (chat messages), :mod:`lexalign.wvs.scoring` (answer distributions from logits,
answer parsing), :mod:`lexalign.wvs.metrics` (distances, both definitions), :mod:`lexalign.wvs.compare`
(answerers and the high-tension set), :mod:`lexalign.wvs.refusal` (a text answer's outcome),
:mod:`lexalign.wvs.text_answers` (the text modes: generate, sample, describe) and this one:
:func:`run` runs one rule job (:class:`lexalign.wvs.settings.WvsFramingJob`: the :class:`WvsSettings` and a
:class:`WvsJob` per mode of one model x language x method x framing) through :func:`evaluate_modes` (every
mode on one loaded model) and :func:`evaluate` (one mode).

Outputs: ``metrics.json`` (:data:`SCHEMA_VERSION`; shape in docs/CONTRIBUTING_CONTRACTS.md) and
``answers.parquet`` (one row per item, :func:`answers_schema`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from lexalign.config import methods
from lexalign.config.countries import Country, member
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, write_json
from lexalign.models import memory
from lexalign.models.devices import require_gpus
from lexalign.models.loading import dtype_name
from lexalign.wvs import norms as wvs_norms
from lexalign.wvs.compare import (
    PER_ITEM_COLUMNS,
    REFERENCE_ANSWERERS,
    STUDY_COLUMNS,
    high_tension_set,
    per_item,
    reference_answer,
    summary,
)
from lexalign.wvs.humans import countries_of, read_humans
from lexalign.wvs.metrics import DEFINITIONS, definitions
from lexalign.wvs.prompts import (
    AssociationContext,
    build_prompt,
    item_text,
    label_answers,
    norms_block,
    option_numbers,
    render,
)
from lexalign.wvs.scoring import score_options
from lexalign.wvs.settings import WvsFramingJob, WvsJob, WvsSettings
from lexalign.wvs.text_answers import (
    DESCRIBE,
    SAMPLE,
    SCORES,
    TEXT_MODES,
    answer_describe,
    answer_generate,
    answer_sample,
    describe_templates,
    mode_columns,
    mode_record,
    mode_summary,
    text_outcomes,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 3: countries keyed by their alpha-3 code lower-cased (usa, chn), not us/china
#: The prompt's last line per answer form: option numbers (every mode) or label texts (``score_labels``).
INSTRUCTIONS = {"number": "wvs_instruction", "label": "wvs_instruction_label"}
#: describe mode's last line, in place of the option-number one: the share of the country's people per option.
DESCRIBE_INSTRUCTION = "wvs_describe_instruction"


def select_items(humans: pl.DataFrame, max_items: int | None) -> pl.DataFrame:
    """All items, or ``max_items`` spread evenly over the catalog order (every topic keeps a share)."""
    if max_items is None or max_items >= humans.height:
        return humans
    picks = np.unique(np.linspace(0, humans.height - 1, int(max_items)).round().astype(int))
    return humans[picks.tolist()]


def target_country(country: str | None, lang: str, countries: Sequence[Country]) -> tuple[Country, Country]:
    """(target, other): the language's ``wvs_country`` and the other country of the compared pair."""
    target = member(country, countries, f"config languages.{lang}.wvs_country")
    return target, next(c for c in countries if c.code != target.code)


def check_method(job: WvsJob) -> methods.Method:
    """The method's registry record; an error when tier 2 does not run it or an input it needs is missing."""
    method = methods.check_job("wvs", methods.WVS, job.method, job.adapter_dir)
    if method.context == "associations" and not job.associations_path:
        raise LexalignError(
            f"wvs: method {job.method!r} needs the ingested associations table "
            f"(results/ingest/{job.lang}/associations.parquet; with wvs.assoc_source: model, a tier-1 "
            "generations.parquet)"
        )
    return method


ANSWERS_ITEM_SCHEMA = {
    "item_id": pl.String,
    "topic": pl.String,
    "n_options": pl.Int64,
    "ordinal": pl.Boolean,
    "codes": pl.List(pl.Int64),
    "options": pl.List(pl.String),
    "prompt": pl.String,
    "assoc_cues": pl.List(pl.String),
    "raw_text": pl.String,
    "text_outcome": pl.String,
    "answered": pl.Boolean,
    "logprobs": pl.List(pl.Float64),
    "probs": pl.List(pl.Float64),
    "probs_norm": pl.List(pl.Float64),
    "valid_mass": pl.Float64,
    "label_logprobs": pl.List(pl.Float64),
    "label_probs": pl.List(pl.Float64),
    "label_probs_norm": pl.List(pl.Float64),
    "answer_position": pl.Int64,
    "answer_code": pl.Int64,
}


def answers_schema(keys: Sequence[str]) -> dict[str, pl.DataType]:
    """answers.parquet's columns for the compared countries' keys (``usa``, ``chn``): the item and answer
    columns, ``human_<key>``, the tension columns, then every answerer's per-item metrics ``..._<key>``."""
    return {
        **ANSWERS_ITEM_SCHEMA,
        **{f"human_{c}": pl.List(pl.Float64) for c in keys},
        "human_tension": pl.Float64,
        "human_tension_study": pl.Float64,
        "high_tension": pl.Boolean,
        "high_tension_study": pl.Boolean,
        **{f"{name}_{c}": pl.Float64 for c in keys for name in PER_ITEM_COLUMNS},
        **{f"study_{name}_{c}": pl.Float64 for c in keys for name in STUDY_COLUMNS},
        **{f"{ref}_{name}_{c}": pl.Float64 for ref in REFERENCE_ANSWERERS for c in keys for name in PER_ITEM_COLUMNS},
    }


def answers_table(items, scored, rows, high, prompt_texts, cues, raw_texts, language: str, keys) -> pl.DataFrame:
    """One row per item: prompt, every option's probability, the human distributions, every answerer's metrics."""
    high_sets = {definition: set(indices) for definition, indices in high.items()}
    records = []
    for i, item in enumerate(items):
        probs = scored[i]["probs"]
        choice = int(np.argmax(probs)) if probs is not None else None
        record = {
            "item_id": item["item_id"],
            "topic": item["topic"],
            "n_options": item["n_options"],
            "ordinal": item["ordinal"],
            "codes": item["codes"],
            "options": item_text(item, language)[1],
            "prompt": prompt_texts[i],
            "assoc_cues": cues[i],
            "raw_text": raw_texts[i],
            "text_outcome": scored[i].get("text_outcome"),
            "answered": probs is not None,
            "logprobs": scored[i]["logprobs"],
            "probs": probs,
            "probs_norm": scored[i]["probs_norm"],
            "valid_mass": scored[i]["valid_mass"],
            **{f"label_{key}": scored[i].get(f"label_{key}") for key in ("logprobs", "probs", "probs_norm")},
            "answer_position": None if choice is None else choice + 1,
            "answer_code": None if choice is None else item["codes"][choice],
            **{f"human_{c}": item[c] for c in keys},
            "human_tension": item["tension"],
            "human_tension_study": item["tension_study"],
            "high_tension": i in high_sets["corrected"],
            "high_tension_study": i in high_sets["study"],
        }
        for c in keys:
            for prefix, answerer, definition, names in (
                ("", "model", "corrected", PER_ITEM_COLUMNS),
                ("study_", "model", "study", STUDY_COLUMNS),
                *((f"{ref}_", ref, "corrected", PER_ITEM_COLUMNS) for ref in REFERENCE_ANSWERERS),
            ):
                row = rows[definition][answerer][c][i] or {}
                record.update({f"{prefix}{name}_{c}": row.get(name) for name in names})
        records.append(record)
    return pl.DataFrame(records, schema=answers_schema(keys))


def _prompts(job: WvsJob, settings: WvsSettings, method: methods.Method, items, templates: Mapping, norm_sentences=()):
    """Chat messages per item (as :data:`INSTRUCTIONS` ask), the association cues shown, how many items fell
    back to English, and the association context; ``norm_sentences``: the norms_prompt context."""
    system = templates["persona"] if method.context == "persona" else None
    assoc = None
    if method.context == "associations":
        read = (
            AssociationContext.from_generations if settings.assoc_source == "model" else AssociationContext.from_parquet
        )
        assoc = read(
            job.associations_path, job.prompt_language, settings.assoc_top_k, settings.assoc_max_cues, templates
        )
    norms = norms_block(norm_sentences, templates, job.country) if norm_sentences else None
    forms = ("number", "label") if settings.score_labels and job.mode == "logits" else ("number",)
    instructions = {**INSTRUCTIONS, "number": DESCRIBE_INSTRUCTION} if job.mode == DESCRIBE else INSTRUCTIONS
    if job.mode == DESCRIBE:
        templates = describe_templates(templates, job.prompt_language, job.country)
    conversations: dict[str, list] = {form: [] for form in forms}
    cues, fallbacks = [], 0
    for item in items:
        question = item_text(item, job.prompt_language)[0]
        item_cues = assoc.cues_for([item.get(f"subject_{job.prompt_language}"), question]) if assoc else []
        block = assoc.block(item_cues) if assoc else norms
        for form in forms:
            messages, fell_back = build_prompt(
                item, templates, job.prompt_language, job.country, job.framing, system, block, instructions[form]
            )
            conversations[form].append(messages)
        fallbacks += fell_back
        cues.append(item_cues)
    return conversations, cues, fallbacks, assoc


def _score(loaded, prompt_texts, answers, batch_size: int) -> list[dict]:
    """Option scores on the loaded backend: a :class:`lexalign.wvs.vllm.VllmScorer` or a transformers model."""
    if hasattr(loaded, "score"):
        return loaded.score(prompt_texts, answers)
    return score_options(loaded.model, loaded.tokenizer, prompt_texts, answers, batch_size)


def _answer(job: WvsJob, settings: WvsSettings, loaded, items, conversations: Mapping[str, list], prompt_texts):
    """Per item {logprobs, probs, probs_norm, valid_mass} (probs None when unanswered; the text modes add
    text_outcome and their own parts, :mod:`lexalign.wvs.text_answers`) and the raw answer text."""
    if job.mode == "logits":
        answers = [option_numbers(item["n_options"]) for item in items]
        scored = _score(loaded, prompt_texts, answers, settings.batch_size)
        if settings.score_labels:
            label_prompts = [render(loaded.tokenizer, messages) for messages in conversations["label"]]
            labels = [label_answers(item, job.prompt_language) for item in items]
            by_label = _score(loaded, label_prompts, labels, settings.batch_size)
            for row, label_row in zip(scored, by_label):
                row.update({f"label_{key}": label_row[key] for key in ("logprobs", "probs", "probs_norm")})
        return scored, [None] * len(items)
    where = f"{job.model_name}/{job.lang}/{job.method}/{job.framing}-{job.mode}"
    asked = (loaded, items, conversations["number"], job.prompt_language)
    if job.mode == SAMPLE:
        return answer_sample(*asked, settings.sampling, where)
    if job.mode == DESCRIBE:
        return answer_describe(*asked, settings.batch_size, settings.describe_max_new_tokens, where)
    return answer_generate(*asked, settings.batch_size, settings.max_new_tokens, where)


def _label_text(items, scored, settings: WvsSettings, mode: str, high: Sequence[int], countries) -> dict | None:
    """Summaries of the label-text scores (acc: label_probs; acc_norm: label_probs_norm), or None when off."""
    if not (settings.score_labels and mode == "logits"):
        return None
    score = "option label texts as the answer, log-likelihoods renormalised over the options (acc); divided by "
    out = {"score": score + "the label's characters (acc_norm)"}
    for name, key in (("results", "label_probs"), ("length_normalised", "label_probs_norm")):
        rows = per_item(items, {"model": [s.get(key) for s in scored]}, settings.kl_epsilon, "corrected", countries)
        out[name] = summary(items, rows, high, "corrected", countries)["results"]["model"]
    return out


def runs_on_vllm(job: WvsJob, settings: WvsSettings) -> bool:
    """Whether the job's mode runs on vLLM (logits mode with ``wvs.backend: vllm``); else on transformers."""
    return settings.backend == "vllm" and job.mode == "logits"


def load_backend(job: WvsJob, settings: WvsSettings):
    """What the job's mode asks: a :class:`lexalign.wvs.vllm.VllmScorer`, or the transformers model."""
    import torch

    from lexalign.models.loading import load_model

    if job.threads:
        torch.set_num_threads(int(job.threads))
    require_gpus(job.gpus, f"wvs {job.model_name}/{job.lang}/{job.method}/{job.framing}")
    memory.check_fits(job.model_dir, purpose="inference", dtype=job.dtype)  # a clear error before loading
    if runs_on_vllm(job, settings):
        from lexalign.wvs.vllm import VllmScorer

        return VllmScorer(job.model_dir, job.adapter_dir, job.dtype, settings.vllm)
    device_map = "auto" if torch.cuda.is_available() else None
    loaded = load_model(
        job.model_dir,
        job.adapter_dir,
        dtype=job.dtype,
        padding_side="left",
        device_map=device_map,
        attn_implementation=job.attn_implementation,
    )
    loaded.model.eval()
    return loaded


def run(job: WvsFramingJob) -> list[dict]:
    """The ``wvs`` rule's job: every configured mode of its framing; returns the metrics in ``wvs.modes`` order."""
    return evaluate_modes(job.modes, job.settings, prompts=job.prompts)


def evaluate_modes(jobs: Sequence[WvsJob], settings: WvsSettings, prompts=None) -> list[dict]:
    """Every answer mode of one model x language x method x framing (one ``wvs`` job): the modes that run on
    transformers share one loaded model (each load is several seconds of a CPU job); a vLLM engine is started
    after that model is freed, so the two never hold a GPU at once. Returns the metrics in ``jobs``' order."""
    import gc

    import torch

    if len({(str(job.model_dir), str(job.adapter_dir), job.dtype) for job in jobs}) > 1:
        raise LexalignError("wvs: the modes of one job must ask one model, adapter and dtype")
    hf_jobs = [job for job in jobs if not runs_on_vllm(job, settings)]
    results = {}
    if hf_jobs:
        loaded = load_backend(hf_jobs[0], settings)
        for job in hf_jobs:
            results[job.mode] = evaluate(job, settings, prompts, loaded=loaded)
        del loaded
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a vLLM engine below gets the GPU to itself
    for job in jobs:
        if runs_on_vllm(job, settings):
            results[job.mode] = evaluate(job, settings, prompts)
    return [results[job.mode] for job in jobs]


def evaluate(
    job: WvsJob, settings: WvsSettings, prompts: Mapping[str, Mapping[str, Any]] | None = None, loaded=None
) -> dict:
    """Ask every item, score it against both countries' humans, write metrics.json and answers.parquet.

    ``prompts`` is the config's ``templates.prompts`` (overrides of the built-in prompt templates);
    ``loaded``: what :func:`load_backend` returns for the job (loaded here when None).
    """
    from lexalign.norms.templates import prompt_templates

    started = time.perf_counter()
    method = check_method(job)
    humans = read_humans(job.humans_path)
    countries = countries_of(humans, job.humans_path)
    target_record, other_record = target_country(job.country, job.lang, countries)
    job = dataclasses.replace(job, country=target_record.name)  # prompts name it as the list does ("deu" -> Germany)
    target, other = target_record.key, other_record.key
    templates = prompt_templates(job.prompt_language, prompts)
    items = select_items(humans, settings.max_items).to_dicts()
    norms_record, sentences = None, []
    if method.context == "norms":  # asks only the evaluation part; the source part's answers are the context
        args = (settings.norms, templates, job.prompt_language, job.country)
        items, sentences, norms_record = wvs_norms.plan(humans.to_dicts(), items, target, *args)
    conversations, cues, fallbacks, assoc = _prompts(job, settings, method, items, templates, sentences)

    if loaded is None:
        loaded = load_backend(job, settings)
    prompt_texts = [render(loaded.tokenizer, messages) for messages in conversations["number"]]
    where = f"{job.model_name}/{job.lang}/{job.method}/{job.framing}-{job.mode}"
    log.info("%s: asking %d items (%s mode, %s framing)", where, len(items), job.mode, job.framing)
    asked = time.perf_counter()
    scored, raw_texts = _answer(job, settings, loaded, items, conversations, prompt_texts)
    answer_seconds = time.perf_counter() - asked

    answerers = {"model": [s["probs"] for s in scored]}
    answerers.update(
        {ref: [reference_answer(ref, item, target, other) for item in items] for ref in REFERENCE_ANSWERERS}
    )
    rows = {d: per_item(items, answerers, settings.kl_epsilon, d, countries) for d in DEFINITIONS}
    high = {d: high_tension_set(items, settings.high_tension_n, d) for d in DEFINITIONS}
    corrected, study = (summary(items, rows[d], high[d], d, countries) for d in DEFINITIONS)
    normalised = per_item(
        items, {"model": [s["probs_norm"] for s in scored]}, settings.kl_epsilon, "corrected", countries
    )
    n_scored = sum(s["probs"] is not None for s in scored)
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "model": job.model_name,
        "lang": job.lang,
        "method": job.method,
        "countries": {c.key: c.name for c in countries},
        "target": target,
        "other": other,
        "target_country": target_record.name,
        "other_country": other_record.name,
        "prompt_language": job.prompt_language,
        "mode": job.mode,
        "framing": job.framing,
        "source": items[0]["source"] if items else None,
        "n_items": len(items),
        "items_evaluated": [item["item_id"] for item in items],  # compare methods on the items they share
        "n_scored": n_scored,
        "skipped": {"unparsed_answers": len(items) - n_scored},
        "text_outcomes": text_outcomes(job.mode, scored),
        "max_new_tokens": (
            settings.describe_max_new_tokens
            if job.mode == DESCRIBE
            else settings.max_new_tokens
            if job.mode in TEXT_MODES
            else None
        ),
        "dtype": job.dtype if runs_on_vllm(job, settings) else dtype_name(job.dtype),
        "items_in_english_fallback": fallbacks,
        "score": SCORES.get(
            job.mode,
            "probs: option-number log-likelihoods renormalised over the valid options (lm-eval acc); "
            "probs_norm (divided by the answer's characters, acc_norm) in length_normalised",
        ),
        "sample": mode_summary(SAMPLE, scored, settings.sampling) if job.mode == SAMPLE else None,
        "describe": mode_summary(DESCRIBE, scored) if job.mode == DESCRIBE else None,
        "definitions": definitions(settings.kl_epsilon),
        "kl_epsilon": settings.kl_epsilon,
        "answerers": {
            "model": "the model's answer distribution",
            "uniform": "1/N on every option",
            "target_majority": "the target country's majority answer (one-hot)",
            "other_country": "the other country's human distribution",
        },
        **corrected,
        "length_normalised": summary(items, normalised, high["corrected"], "corrected", countries)["results"]["model"],
        "study": {"definitions": definitions(settings.kl_epsilon, "study"), **study},
        "label_text": _label_text(items, scored, settings, job.mode, high["corrected"], countries),
        "valid_mass_mean": (
            float(np.mean([s["valid_mass"] for s in scored if s["probs"] is not None]))
            if job.mode == "logits"
            else None
        ),
        "associations_context": (
            {
                "items_with_associations": sum(bool(c) for c in cues),
                "top_k": settings.assoc_top_k,
                "max_cues": settings.assoc_max_cues,
                "source": settings.assoc_source,
                "model_method": settings.assoc_model_method if settings.assoc_source == "model" else None,
                "cues_available": len(assoc.top),
            }
            if assoc is not None
            else None
        ),
        "norms_context": norms_record,
        "timing": {
            "seconds": time.perf_counter() - started,
            "answer_seconds": answer_seconds,
            "items_per_second": len(items) / answer_seconds if answer_seconds else None,
        },
    }
    keys = [c.key for c in countries]
    with atomic_path(job.answers_out) as tmp:
        table = answers_table(items, scored, rows, high, prompt_texts, cues, raw_texts, job.prompt_language, keys)
        if mode_columns(job.mode):  # the mode's own columns (sample: counts and shares; describe: raw numbers)
            own = pl.DataFrame([mode_record(job.mode, row) for row in scored], schema=mode_columns(job.mode))
            table = table.hstack(own)
        table.write_parquet(tmp)
    write_json(job.metrics_out, metrics)
    overall = metrics["results"]["model"][target]["overall"]
    tension = metrics["high_tension"]
    log.info(
        "%s vs %s: JS %.3f, EMD_norm %.3f, acc %.3f; high-tension closer to %s %d/%d (%.1f s)",
        where,
        target_record.name,
        *(float("nan") if overall[key] is None else overall[key] for key in ("js", "emd_norm", "acc")),  # none answered
        other_record.name,
        tension["closer_to"][other],
        tension["n"],
        metrics["timing"]["seconds"],
    )
    return metrics
