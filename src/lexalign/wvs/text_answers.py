"""The WVS answer modes that read the model's text (on the transformers model; ``wvs.backend: vllm`` moves
only logits mode): ``generate`` (one greedy answer per item, the study's text readout), ``sample`` (N sampled
answers per item: :mod:`lexalign.wvs.sampling`) and ``describe`` (the distribution the model states for the
target country's people: :mod:`lexalign.wvs.describe`).

Each returns, per item, the dict :func:`lexalign.wvs.evaluate.evaluate` scores (``probs`` None when the item
has no distribution) and the raw answer text; :func:`mode_columns` / :func:`mode_record` are a mode's own
answers.parquet columns and :func:`mode_summary` its own metrics.json block.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from lexalign.core.errors import LexalignError
from lexalign.norms.templates import check_placeholders
from lexalign.wvs.describe import BY_POSITION, BY_REFERENCE, DESCRIBE_OUTCOMES, STATED, classify_stated
from lexalign.wvs.prompts import country_name, item_text
from lexalign.wvs.refusal import OUTCOMES, classify
from lexalign.wvs.sampling import SampledDistribution, aggregate, item_seed, mean_shares
from lexalign.wvs.settings import Sampling

log = logging.getLogger(__name__)

GENERATE, SAMPLE, DESCRIBE = "generate", "sample", "describe"
TEXT_MODES = (GENERATE, SAMPLE, DESCRIBE)
#: describe mode's prompt template keys: a framing line (interviewer, observer), the persona system prompt and
#: the question's last line, each with the placeholder {country}.
DESCRIBE_KEYS = (
    "wvs_describe_interviewer",
    "wvs_describe_observer",
    "wvs_describe_persona",
    "wvs_describe_instruction",
)
#: A stated list whose numbers sum this far (percent points) from 100 is counted as not summing to 100.
SUM_TOLERANCE = 1.0
SCORES = {
    SAMPLE: "probs: each option's share of the item's sampled answers that name an option (refusals and answers "
    "naming no option left out; their shares in refusal_share, no_option_share)",
    DESCRIBE: "probs: the shares the model states for the target country's people, normalised to sum to 1 "
    "(the raw sum in stated_raw_sum)",
}


def _unscored(probs, outcome: str | None) -> dict:
    return {"logprobs": None, "probs": probs, "probs_norm": probs, "valid_mass": None, "text_outcome": outcome}


def _warn_if_none(scored: Sequence[Mapping], texts: Sequence[str], mode: str, where: str) -> None:
    """A result (all refusals, say), not an error: the report's tables read it."""
    if scored and all(s["probs"] is None for s in scored):
        example = next((t for t in texts if t), "")
        log.warning(
            "wvs: none of the %d answers of %s gives a distribution (mode %s; e.g. %r)",
            len(scored),
            where,
            mode,
            example[:60],
        )


def answer_generate(
    loaded, items, conversations, language: str, batch_size: int, max_new_tokens: int, where: str
) -> tuple[list[dict], list[str]]:
    """One greedy answer per item: the option it names (one-hot), a refusal or no valid option."""
    from lexalign.models.generation import generate_on_model

    generations = generate_on_model(
        loaded.model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    raw_texts = [g.raw for g in generations]
    scored = []
    for item, text in zip(items, raw_texts):
        answer = classify(text, item_text(item, language)[1], language)
        choice = answer.position
        probs = None if choice is None else [float(i == choice) for i in range(item["n_options"])]
        scored.append(_unscored(probs, answer.outcome))
    _warn_if_none(scored, raw_texts, GENERATE, where)
    return scored, raw_texts


def answer_sample(
    loaded, items, conversations, language: str, sampling: Sampling, where: str
) -> tuple[list[dict], list[None]]:
    """``sampling.n`` answers per item at ``sampling.temperature`` (top-p 1), each classified; one generate
    call per item whose batch is the item's prompt N times, seeded per item
    (:func:`lexalign.wvs.sampling.item_seed`: an item's answers do not depend on the other items asked)."""
    from lexalign.models.generation import generate_on_model

    scored, all_texts = [], []
    for item, conversation in zip(items, conversations):
        generations = generate_on_model(
            loaded.model,
            loaded.tokenizer,
            [conversation] * sampling.n,
            stop_token_ids=loaded.stop_token_ids,
            max_new_tokens=sampling.max_new_tokens,
            batch_size=sampling.n,
            do_sample=True,
            temperature=sampling.temperature,
            seed=item_seed(sampling.seed, item["item_id"]),
        )
        texts = [g.raw for g in generations]
        labels = item_text(item, language)[1]
        answers = [classify(text, labels, language) for text in texts]
        sampled = aggregate(answers, item["n_options"])
        scored.append(
            {
                **_unscored(sampled.probs, None),
                "sampled": sampled,
                "sample_texts": texts,
                "sample_outcomes": [a.outcome for a in answers],
            }
        )
        all_texts += texts
    _warn_if_none(scored, all_texts, SAMPLE, where)
    return scored, [None] * len(items)


def describe_templates(templates: Mapping[str, Any], language: str, country: str) -> dict[str, Any]:
    """The prompt templates with describe mode's keys in the places :func:`lexalign.wvs.prompts.build_prompt`
    reads (framing lines, persona system prompt) and its instruction, the country filled in, as
    ``wvs_describe_instruction``; one line naming a missing or wrong template."""
    for key in DESCRIBE_KEYS:
        if key not in templates:
            raise LexalignError(
                f"config templates.prompts.{language}: no {key} template (describe mode needs "
                f"{', '.join(DESCRIBE_KEYS)}; see src/lexalign/resources/prompts.yaml)"
            )
    check_placeholders(templates, language, DESCRIBE_KEYS)
    place = country_name(templates, country)
    return {
        **templates,
        "wvs_interviewer": templates["wvs_describe_interviewer"],
        "wvs_observer": templates["wvs_describe_observer"],
        "wvs_persona": templates["wvs_describe_persona"],
        "wvs_describe_instruction": templates["wvs_describe_instruction"].format(country=place),
    }


def answer_describe(
    loaded, items, conversations, language: str, batch_size: int, max_new_tokens: int, where: str
) -> tuple[list[dict], list[str]]:
    """One greedy answer per item stating each option's share of the target country's people, parsed."""
    from lexalign.models.generation import generate_on_model

    generations = generate_on_model(
        loaded.model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    raw_texts = [g.raw for g in generations]
    scored = []
    for item, text in zip(items, raw_texts):
        stated = classify_stated(text, item_text(item, language)[1], language)
        shares = list(stated.shares) if stated.shares is not None else None
        scored.append({**_unscored(shares, stated.outcome), "stated": stated})
    _warn_if_none(scored, raw_texts, DESCRIBE, where)
    return scored, raw_texts


# --------------------------------------------------------------------------------------------------
# A mode's own outputs

MODE_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    SAMPLE: {
        "n_samples": pl.Int64,
        "sample_counts": pl.List(pl.Int64),
        "refusal_share": pl.Float64,
        "no_option_share": pl.Float64,
        "invalid_share": pl.Float64,
        "sample_outcomes": pl.List(pl.String),
        "sample_texts": pl.List(pl.String),
    },
    DESCRIBE: {
        "stated_raw": pl.List(pl.Float64),
        "stated_raw_sum": pl.Float64,
        "stated_assigned_by": pl.String,
        "stated_numbers": pl.Int64,
    },
}


def mode_columns(mode: str) -> dict[str, pl.DataType]:
    """answers.parquet's columns of ``mode`` alone (none for logits and generate)."""
    return dict(MODE_COLUMNS.get(mode, {}))


def mode_record(mode: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """One item's values of :func:`mode_columns` from its scored dict."""
    if mode == SAMPLE:
        sampled: SampledDistribution = row["sampled"]
        return {
            "n_samples": sampled.n_samples,
            "sample_counts": list(sampled.counts),
            "refusal_share": sampled.refusal_share,
            "no_option_share": sampled.no_option_share,
            "invalid_share": sampled.invalid_share,
            "sample_outcomes": row["sample_outcomes"],
            "sample_texts": row["sample_texts"],
        }
    if mode == DESCRIBE:
        stated = row["stated"]
        return {
            "stated_raw": list(stated.raw) if stated.raw is not None else None,
            "stated_raw_sum": stated.raw_sum,
            "stated_assigned_by": stated.assigned_by,
            "stated_numbers": stated.n_numbers,
        }
    return {}


def text_outcomes(mode: str, scored: Sequence[Mapping[str, Any]]) -> dict[str, int] | None:
    """How many answers had each outcome: generate's items, sample's answers (all N of every item), describe's
    items; None for logits mode."""
    if mode == GENERATE:
        return {outcome: sum(s.get("text_outcome") == outcome for s in scored) for outcome in OUTCOMES}
    if mode == SAMPLE:
        outcomes = [o for s in scored for o in s["sample_outcomes"]]
        return {outcome: outcomes.count(outcome) for outcome in OUTCOMES}
    if mode == DESCRIBE:
        return {outcome: sum(s.get("text_outcome") == outcome for s in scored) for outcome in DESCRIBE_OUTCOMES}
    return None


def mode_summary(mode: str, scored: Sequence[Mapping[str, Any]], sampling: Sampling | None = None) -> dict | None:
    """metrics.json's block of sample mode (``sampling``: its decoding, ``wvs.sample_*``) or describe mode;
    None for the others."""
    if mode == SAMPLE:
        if sampling is None:
            raise ValueError("sample mode's summary needs its decoding settings")
        sampled = [s["sampled"] for s in scored]
        return {
            "n": sampling.n,
            "temperature": sampling.temperature,
            "top_p": 1.0,
            "seed": sampling.seed,
            "seeding": "per item: lexalign.wvs.sampling.item_seed(seed, item_id)",
            "max_new_tokens": sampling.max_new_tokens,
            "answers": sum(d.n_samples for d in sampled),
            "shares": mean_shares(sampled),
            "items_without_valid_answer": sum(d.probs is None for d in sampled),
        }
    if mode == DESCRIBE:
        stated = [s["stated"] for s in scored]
        sums = [d.raw_sum for d in stated if d.outcome == STATED]
        return {
            "invalid_share": (len(stated) - len(sums)) / len(stated) if stated else None,
            "raw_sum": {
                "mean": statistics.fmean(sums) if sums else None,
                "min": min(sums, default=None),
                "max": max(sums, default=None),
                "items_not_100": sum(abs(total - 100) > SUM_TOLERANCE for total in sums),
                "tolerance": SUM_TOLERANCE,
            },
            "assigned_by": {how: sum(d.assigned_by == how for d in stated) for how in (BY_REFERENCE, BY_POSITION)},
        }
    return None
