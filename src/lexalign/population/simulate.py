"""The model as a population of participants (rules ``population`` and ``population_ingest``).

SWOW asks many people for the first three words a cue brings to mind. Here a model plays N such
participants: every participant answers every selected cue once, in SWOW's own task wording for the
prompt language (``population_system`` / ``population_instruction`` in resources/prompts.yaml),
sampled at each configured temperature. The answers are written as a SWOW raw participant file in the
layout of the language's own human file (same header, same separator, ``participantID``, ``R1..R3``),
so :func:`lexalign.norms.ingest.pooled_counts` reads, cleans and pools the model's norms exactly as it does
the humans'. A language whose human norms are a pooled strength file gets the SWOW-EN 2018 raw layout.

Columns the model has no value for (age, gender, created_at, ...) are ``NA``; the participant filter's
columns hold the first value the filter accepts, so the language's own ``norms`` settings, filter
included, ingest the model's file unchanged. Provenance (model, method, temperature, decoding) is in
``population.json`` beside the files, not in extra columns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from lexalign.config import methods
from lexalign.config.grid import temperature_label
from lexalign.core import stats
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, write_json
from lexalign.population.settings import PopulationIngestJob, PopulationSettings, SimulateJob

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Responses per participant and cue, as in SWOW.
RESPONSES = 3
PROMPT_KEYS = ("population_system", "population_instruction")
#: Marker SWOW-ZH writes in its cleaned columns for a missing response (its raw columns hold NA).
ZH_MISSING = "#Missing"
GENERATIONS_SCHEMA = {
    "temperature": pl.Float64,
    "participant": pl.Int64,
    "cue": pl.String,
    "raw": pl.String,
    "responses": pl.List(pl.String),
    "n_tokens": pl.Int64,
    "finished": pl.Boolean,
}


# --------------------------------------------------------------------------- the layout of the written file


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a participant file of one language looks: header, separator and which column holds what."""

    header: tuple[str, ...]
    separator: str
    cue: str
    responses: tuple[str, str, str]  # cleaned R1, R2, R3 columns
    raw_responses: tuple[str | None, str | None, str | None]  # R1Raw.. columns (SWOW-ZH), else None
    fixed: Mapping[str, str]  # column -> the value every row holds (the participant filter's columns)
    ingest_norms: Mapping  # the norms settings that ingest the written file
    source: str  # "human file" or "SWOW-EN 2018 (the human norms are a pooled strength file)"

    @property
    def missing(self) -> str | None:
        """What a missing response is written as in the cleaned columns (None: a bare NA)."""
        return ZH_MISSING if any(self.raw_responses) else None


def layout_for(norms_path: str | os.PathLike, norms: Mapping) -> Layout:
    """The participant-file layout of a language, from its human norms file and ``norms`` settings."""
    from lexalign.norms.ingest import RAW_COLUMNS, SWOW_EN_HEADER, norms_format, resolve_columns

    path = Path(norms_path)
    fmt, separator, header = norms_format(path, norms)
    if fmt == "strength":
        return Layout(
            SWOW_EN_HEADER,
            ",",
            "cue",
            ("R1", "R2", "R3"),
            (None, None, None),
            {},
            {"format": "raw"},
            "SWOW-EN 2018 raw layout (the human norms are a pooled strength file)",
        )
    overrides = {k: v for k, v in dict(norms.get("columns", {})).items() if k in RAW_COLUMNS}
    cols = resolve_columns(path, header, RAW_COLUMNS, overrides)
    by_lower = {name.strip().lower(): name for name in header}
    raw = tuple(by_lower.get(f"{cols[r].strip().lower()}raw") for r in ("R1", "R2", "R3"))
    filters = dict(norms.get("filter", {}))
    filter_cols = resolve_columns(path, header, {k: (k.lower(),) for k in filters}, {})
    fixed = {filter_cols[key]: str(accepted[0]).strip() for key, accepted in filters.items() if accepted}
    empty = [key for key, accepted in filters.items() if not accepted]
    if empty:
        raise LexalignError(f"config norms.filter.{empty[0]}: accepts no value, so no participant can pass it")
    return Layout(
        tuple(header),
        separator,
        cols["cue"],
        (cols["R1"], cols["R2"], cols["R3"]),
        raw,  # type: ignore[arg-type]
        fixed,
        dict(norms),
        "the human norms file's own layout",
    )


def _field(value, separator: str) -> str:
    """One field as R's write.csv writes it: strings quoted (quotes doubled), numbers and NA bare."""
    if value is None:
        return "NA"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\r", " ").replace("\n", " ")
    return '"' + text.replace('"', '""') + '"'


def write_participants(path: str | os.PathLike, layout: Layout, rows: Sequence[tuple[int, str, Sequence[str]]]) -> int:
    """Write ``(participant, cue, responses)`` rows as a SWOW participant file; returns the rows written.

    Responses beyond the third are ignored; fewer than three leave the rest missing.
    """
    sep = layout.separator
    lower = {name: name.strip().lower() for name in layout.header}
    response_index = {name: i for i, name in enumerate(layout.responses)}
    raw_index = {name: i for i, name in enumerate(layout.raw_responses) if name}
    lines = [sep.join(_field(name, sep) for name in layout.header)]
    for number, (participant, cue, responses) in enumerate(rows, 1):
        fields = []
        for name in layout.header:
            key = lower[name]
            if name in response_index or name in raw_index:
                i = response_index.get(name, raw_index.get(name))
                value = responses[i] if i < len(responses) else None
                missing = layout.missing if name in response_index else None
                fields.append(_field(value if value else missing, sep))
            elif name == layout.cue:
                fields.append(_field(cue, sep))
            elif name in layout.fixed:
                fields.append(_field(layout.fixed[name], sep))
            elif key == "":
                fields.append(_field(str(number), sep))  # R's row names are quoted strings
            elif key in ("id", "trialid"):
                fields.append(_field(number, sep))
            elif key == "participantid":
                fields.append(_field(int(participant), sep))
            else:
                fields.append(_field(None, sep))
        lines.append(sep.join(fields))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


# --------------------------------------------------------------------------- simulating participants


def prompts_for(prompt_language: str, overrides: Mapping | None = None) -> dict[str, str]:
    """The population prompt strings of one prompt language (built-ins with config overrides on top)."""
    import string

    from lexalign.norms.templates import builtin_prompts

    templates = dict(builtin_prompts().get(prompt_language, {}))
    templates.update((overrides or {}).get(prompt_language, {}))
    missing = [key for key in PROMPT_KEYS if key not in templates]
    if missing:
        raise LexalignError(
            f"config templates.prompts.{prompt_language}: no population prompts for this language; "
            f"define {', '.join(missing)}"
        )
    used = {name for _, name, _, _ in string.Formatter().parse(templates["population_instruction"]) if name}
    if used != {"cue"}:
        raise LexalignError(
            f"config templates.prompts.{prompt_language}.population_instruction: must use exactly the "
            f"placeholder {{cue}} (found {', '.join(sorted(used)) or 'none'})"
        )
    return {key: templates[key] for key in PROMPT_KEYS}


def conversation(templates: Mapping[str, str], cue: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": templates["population_system"]},
        {"role": "user", "content": templates["population_instruction"].format(cue=cue)},
    ]


def select_cues(associations: pl.DataFrame, which: str, max_cues: int | None, seed: int) -> list[str]:
    """The cues the participants answer: the test split or all cues, optionally a seeded sample; sorted."""
    table = associations if which == "all" else associations.filter(pl.col("split") == "test")
    cues = table["cue"].unique().sort()
    if cues.len() == 0:
        raise LexalignError(f"population.cues: {which!r} selects no cue of the ingested norms")
    if max_cues is not None and cues.len() > max_cues:
        cues = cues.sample(n=max_cues, seed=seed).sort()
    return cues.to_list()


def sample_participants(
    model,
    tokenizer,
    stop_token_ids: Sequence[int],
    cues: Sequence[str],
    templates: Mapping[str, str],
    prompt_language: str,
    *,
    participants: int,
    temperature: float,
    settings: PopulationSettings,
    seed: int,
) -> pl.DataFrame:
    """Every participant answers every cue once, sampled at ``temperature``; one row per answer
    (:data:`GENERATIONS_SCHEMA`), the first three distinct parsed words in ``responses``."""
    from lexalign.lexical.parse import parse_associations
    from lexalign.models.generation import generate_on_model

    if participants < 1:
        raise LexalignError(f"config population.participants: {participants} (need at least 1)")
    prompts = {cue: conversation(templates, cue) for cue in cues}
    order = [(p, cue) for p in range(1, participants + 1) for cue in cues]
    answers = generate_on_model(
        model,
        tokenizer,
        [prompts[cue] for _, cue in order],
        stop_token_ids=stop_token_ids,
        max_new_tokens=int(settings.max_new_tokens),
        batch_size=int(settings.batch_size),
        do_sample=True,
        temperature=float(temperature),
        top_p=float(settings.top_p),
        seed=seed,
    )
    echo = {cue: [m["content"] for m in prompts[cue]] for cue in cues}
    responses = [
        parse_associations(a.raw, prompt_language, cue=cue, truncated=not a.finished, echo=echo[cue])[:RESPONSES]
        for (_, cue), a in zip(order, answers)
    ]
    return pl.DataFrame(
        {
            "temperature": [float(temperature)] * len(order),
            "participant": [p for p, _ in order],
            "cue": [cue for _, cue in order],
            "raw": [a.raw for a in answers],
            "responses": responses,
            "n_tokens": [a.n_tokens for a in answers],
            "finished": [a.finished for a in answers],
        },
        schema=GENERATIONS_SCHEMA,
    )


def simulate(job: SimulateJob) -> dict:
    """The ``population`` rule: N participants x the selected cues, at every temperature of ``job.settings``;
    writes ``job.participants_out`` (one SWOW file per temperature, in the same order), ``job.generations_out``
    (Parquet) and ``job.summary_out`` (JSON)."""
    from lexalign.models import memory
    from lexalign.models.devices import require_gpus
    from lexalign.models.generation import load_for_generation
    from lexalign.norms.ingest import load_associations

    settings, method, prompt_language, adapter_dir = job.settings, job.method, job.prompt_language, job.adapter_dir
    methods.check_job("population", methods.LEXICAL, method, adapter_dir)
    temperatures = [float(t) for t in settings.temperatures]
    files = job.participants_out
    if len(files) != len(temperatures):
        raise LexalignError(
            f"population: {len(files)} participant file(s) for {len(temperatures)} temperature(s); "
            "the rule's outputs must follow population.temperatures"
        )
    layout = layout_for(job.norms_path, job.norms)
    templates = prompts_for(prompt_language, job.prompt_overrides)
    if methods.get(method).context == "persona":  # the persona method's participants are told who they are
        from lexalign.norms.templates import prompt_templates

        persona = prompt_templates(prompt_language, job.prompt_overrides)["persona"]
        templates["population_system"] = f"{persona} {templates['population_system']}"
    seed = job.seed
    cues = select_cues(load_associations(job.associations_path), settings.cues, settings.max_cues, seed)
    if job.threads:
        import torch

        torch.set_num_threads(int(job.threads))
    tag = [str(v) for v in job.labels.values()]
    require_gpus(job.gpus, "population " + "/".join([*tag, method]))
    memory.check_fits(job.model_dir, purpose="inference", dtype=job.dtype)
    loaded = load_for_generation(job.model_dir, adapter_dir, job.dtype, job.attn_implementation)
    model = loaded.model
    frames, per_temperature = [], {}
    for temperature, file in zip(temperatures, files):
        started = time.perf_counter()
        frame = sample_participants(
            model,
            loaded.tokenizer,
            loaded.stop_token_ids,
            cues,
            templates,
            prompt_language,
            participants=int(settings.participants),
            temperature=temperature,
            settings=settings,
            seed=stats.derived_seed(seed, "population", *tag, method, temperature_label(temperature)),
        )
        rows = write_participants(
            file, layout, list(zip(frame["participant"], frame["cue"], frame["responses"].to_list()))
        )
        n_words = frame["responses"].list.len()
        per_temperature[temperature_label(temperature)] = {
            "temperature": temperature,
            "file": str(file),
            "rows": rows,
            "responses": int(n_words.sum()),
            "mean_responses_per_row": round(float(n_words.mean()), 3),
            "rows_without_response": int((n_words == 0).sum()),
            "rows_hit_token_cap": int((~frame["finished"]).sum()),
            "seconds": round(time.perf_counter() - started, 1),
        }
        frames.append(frame)
        log.info(
            "population %s %s: %s",
            method,
            temperature_label(temperature),
            per_temperature[temperature_label(temperature)],
        )
    with atomic_path(job.generations_out) as tmp:
        pl.concat(frames).write_parquet(tmp)
    summary = {
        "schema_version": SCHEMA_VERSION,
        **dict(job.labels),
        "method": method,
        "prompt_language": prompt_language,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "layout": {"source": layout.source, "header": list(layout.header), "separator": layout.separator},
        "ingest_norms": dict(layout.ingest_norms),
        "prompts": templates,
        "participants": int(settings.participants),
        "responses_per_participant": RESPONSES,
        "cues": {"selection": settings.cues, "max_cues": settings.max_cues, "n": len(cues)},
        "decoding": {
            "do_sample": True,
            "top_p": settings.top_p,
            "max_new_tokens": settings.max_new_tokens,
            "batch_size": settings.batch_size,
            "seed": seed,
            "stop_token_ids": list(loaded.stop_token_ids),
        },
        "temperatures": per_temperature,
    }
    write_json(job.summary_out, summary)
    return summary


# --------------------------------------------------------------------------- ingesting the model's norms


def ingest_population(
    participants_path: str | os.PathLike,
    norms: Mapping,
    human_associations_path: str | os.PathLike,
    associations_out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict:
    """The ``population_ingest`` rule for one file: read, clean and pool it with the human norms' own code
    (:func:`lexalign.norms.ingest.pooled_counts`) and label each cue with its split in the human norms."""
    from lexalign.norms.ingest import check_no_leakage, load_associations, pooled_counts

    pooled, counted = pooled_counts(participants_path, norms)
    human = load_associations(human_associations_path).select("cue", "split").unique("cue")
    table = pooled.join(human, on="cue", how="left")
    unknown = table.filter(pl.col("split").is_null())["cue"].unique().sort().to_list()
    if unknown:
        raise LexalignError(
            f"{participants_path}: cue {unknown[0]!r} is not in the human norms {human_associations_path}; "
            "a population file answers the human norms' cues only"
        )
    check_no_leakage(table)
    counted["split_cues"] = {name: int(n) for name, n in table.unique("cue").group_by("split").len().iter_rows()}
    counted["split_definition"] = "each cue's split in the human norms"
    with atomic_path(associations_out) as tmp:
        table.write_parquet(tmp, compression="lz4")
    write_json(stats_out, counted)
    log.info("ingested %s: %d cues, %d response tokens", participants_path, counted["cues"], counted["response_tokens"])
    return counted


def ingest_summary_files(job: PopulationIngestJob) -> list[dict]:
    """The ``population_ingest`` rule: every temperature's file (lists in the same order), read with the
    norms settings the ``population`` rule recorded for its layout (``population.json`` ``ingest_norms``)."""
    from lexalign.core.io import read_json

    summary = read_json(job.summary_path)
    if "ingest_norms" not in summary:
        raise LexalignError(f"{job.summary_path}: no ingest_norms; rerun the population rule")
    if not len(job.participants) == len(job.associations_out) == len(job.stats_out):
        raise LexalignError("population_ingest: participants, associations and stats outputs differ in number")
    return [
        ingest_population(file, summary["ingest_norms"], job.human_associations_path, out, stat)
        for file, out, stat in zip(job.participants, job.associations_out, job.stats_out)
    ]
