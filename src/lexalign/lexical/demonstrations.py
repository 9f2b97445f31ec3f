"""Norms in context for tier 1: the demonstrations of the untrained method whose registry context is ``norms``.

The in-context counterpart of SFT on the same data (the few-shot set-up evaluation harnesses use for base
models, as chat turns): each demonstration is one train cue with its human association list, most frequent
first (the norms' own order, as the SFT and DPO targets), in the task's own form: the evaluation instruction
for that cue as a user turn, the list joined by the template's separator as the model's answer. The test
cue's own prompt follows unchanged, so SFT minus this method is the part of the gain that needs training.

Demonstrations are drawn once per job with their own seed from the train cues only (never a validation or
test cue: :func:`check_leakage`), so every test cue of a job sees the same ones. Config
``lexical.norms``: how many, how long each list, the seed
(:class:`lexalign.lexical.settings.DemonstrationSettings`). :func:`norms_prompts` is what the ``lexical`` rule calls.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Collection, Mapping, Sequence

import polars as pl

from lexalign.core.errors import LexalignError
from lexalign.lexical.settings import DemonstrationSettings, LexicalJob
from lexalign.norms.templates import cue_lists, prompt_templates

log = logging.getLogger(__name__)

#: The only split demonstrations come from.
TRAIN = "train"


@dataclasses.dataclass(frozen=True)
class Demonstration:
    """One train cue and the first words of its human association list, most frequent first."""

    cue: str
    words: tuple[str, ...]


def train_lists(associations: pl.DataFrame) -> list[Demonstration]:
    """Every train cue of an ingested associations table with its whole list (count descending, ties by
    word), sorted by cue."""
    lists = cue_lists(associations.filter(pl.col("split") == TRAIN)).sort("cue")
    return [Demonstration(cue, tuple(responses)) for cue, responses in lists.select("cue", "responses").iter_rows()]


def draw_demonstrations(associations: pl.DataFrame, k: int, list_length: int, seed: int) -> tuple[Demonstration, ...]:
    """``k`` train cues drawn with ``seed``, each with the first ``list_length`` words of its list.

    Drawn among the train cues whose list has at least ``list_length`` words (a shorter demonstration
    would teach a shorter answer than the instruction asks for); where fewer than ``k`` have, among every
    train cue, with a warning. The draw depends only on the train cues, ``k`` and ``seed``: every test cue
    of a job, and every model and method, sees the same demonstrations.
    """
    lists = train_lists(associations)
    if len(lists) < k:
        raise LexalignError(
            f"config lexical.norms.demonstrations: {k} demonstrations need {k} train cues, the norms have {len(lists)}"
        )
    full = [entry for entry in lists if len(entry.words) >= list_length]
    if len(full) < k:
        log.warning(
            "norms prompt: only %d train cues have %d or more responses; drawing %d demonstrations from all %d "
            "train cues, some shorter",
            len(full),
            list_length,
            k,
            len(lists),
        )
        full = lists
    picked = random.Random(seed).sample(full, k)
    return tuple(Demonstration(entry.cue, entry.words[:list_length]) for entry in picked)


def check_leakage(
    demonstrations: Sequence[Demonstration], associations: pl.DataFrame, eval_cues: Collection[str]
) -> str:
    """The leakage check's line for the log and scores.json; a demonstration cue that is not a train cue of
    the norms, or that the job evaluates, is a bug (RuntimeError, as the template stage's leakage check)."""
    splits = dict(associations.select("cue", "split").unique("cue").iter_rows())
    evaluated = set(eval_cues)
    leaked = [d.cue for d in demonstrations if splits.get(d.cue) != TRAIN or d.cue in evaluated]
    if leaked:
        shown = ", ".join(f"{cue!r} ({splits.get(cue, 'not in the norms')})" for cue in leaked)
        raise RuntimeError(f"norms prompt leakage: demonstration cue(s) {shown} are not train cues or are evaluated")
    return (
        f"passed: {len(demonstrations)} demonstrations, all train cues; none is a validation or test cue or one of "
        f"the {len(evaluated)} cues evaluated"
    )


def demonstration_turns(
    demonstrations: Sequence[Demonstration], templates: Mapping[str, str], eval_bounds: Sequence[int]
) -> list[dict[str, str]]:
    """The demonstrations as chat turns in the task's form: the evaluation instruction for the cue (the same
    bounds as the test cue's), then the human list as the model's answer."""
    lo, hi = eval_bounds
    turns = []
    for demonstration in demonstrations:
        turns.append({"role": "user", "content": templates["instruction"].format(cue=demonstration.cue, lo=lo, hi=hi)})
        turns.append({"role": "assistant", "content": templates["separator"].join(demonstration.words)})
    return turns


def with_demonstrations(prompt: Sequence[Mapping[str, str]], turns: Sequence[Mapping[str, str]]) -> list[dict]:
    """A test cue's chat prompt with the demonstration turns after its system message(s) and before its own turn."""
    head = 0
    while head < len(prompt) and prompt[head]["role"] == "system":
        head += 1
    return [dict(m) for m in prompt[:head]] + [dict(t) for t in turns] + [dict(m) for m in prompt[head:]]


def norms_context(
    settings: DemonstrationSettings, demonstrations: Sequence[Demonstration], list_length: int, leakage: str
) -> dict:
    """What scores.json records of the demonstrations a job showed."""
    return {
        "demonstrations": [{"cue": d.cue, "n_words": len(d.words)} for d in demonstrations],
        "list_length": list_length,
        "seed": settings.seed,
        "split": TRAIN,
        "leakage_check": leakage,
    }


def prepare(
    associations: pl.DataFrame,
    settings: DemonstrationSettings,
    templates: Mapping[str, str],
    eval_bounds: Sequence[int],
    eval_cues: Collection[str],
) -> tuple[list[dict[str, str]], dict]:
    """One job's demonstration turns (drawn, leakage-checked, logged) and what scores.json records of them."""
    list_length = settings.words(eval_bounds)
    demonstrations = draw_demonstrations(associations, settings.demonstrations, list_length, settings.seed)
    leakage = check_leakage(demonstrations, associations, eval_cues)
    log.info(
        "norms prompt: demonstrations %s (%d words each at most, seed %d); leakage check %s",
        ", ".join(d.cue for d in demonstrations),
        list_length,
        settings.seed,
        leakage,
    )
    turns = demonstration_turns(demonstrations, templates, eval_bounds)
    return turns, norms_context(settings, demonstrations, list_length, leakage)


def norms_prompts(
    prompts: Sequence[Sequence[Mapping[str, str]]], cues: Sequence[str], associations: pl.DataFrame, job: LexicalJob
) -> tuple[list[list[dict]], dict]:
    """The norms_prompt job's chat prompts for its test ``cues`` (``prompts`` in their order): the same
    demonstrations before each one's own turn, in the instruction the templates stage built them from
    (``job.prompt_overrides``, ``job.eval_bounds``); and what scores.json records of the demonstrations."""
    if job.settings.norms is None or job.eval_bounds is None:
        raise LexalignError(
            f"lexical {job.method}: the job has no lexical.norms settings or templates.eval_bounds "
            "(the lexical rule passes both)"
        )
    templates = prompt_templates(job.prompt_language, job.prompt_overrides)
    turns, shown = prepare(associations, job.settings.norms, templates, job.eval_bounds, cues)
    return [with_demonstrations(prompt, turns) for prompt in prompts], shown
