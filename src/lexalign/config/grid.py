"""The run grid: which result files a (models x languages x methods) run produces, computed once.

``workflow/rules/common.smk`` (the DAG's targets and the report's inputs) and ``python -m
lexalign.report`` (rebuilding the report without Snakemake) both call :func:`result_files`, so the
grid the report expects is the grid the workflow builds.

A wvs job is also one framing and one answer mode (the config's ``wvs.framings`` x ``wvs.modes``): its
files are under ``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/`` (:func:`wvs_variant`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lexalign.config import methods
from lexalign.core.settings import from_section

#: stage -> (results sub-folder, the file that marks a finished job)
STAGE_FILES = {
    "train": ("train", "metrics.json"),
    "lexical": ("lexical", "scores.json"),
    "wvs": ("wvs", "metrics.json"),
}
#: The answer mode whose results the report's headline tier-2 tables show (with the first framing).
HEADLINE_MODE = "logits"


@dataclasses.dataclass(frozen=True)
class RunGrid:
    """The config's ``run`` section: the models, languages and methods the default target builds."""

    models: list[str]
    languages: list[str]
    methods: list[str]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> RunGrid:
        return from_section(cls, section, "run")


def wvs_variant(framing: str, mode: str) -> str:
    """The folder of one framing x mode under a wvs job's ``{model}/{lang}/{method}/``."""
    return f"{framing}-{mode}"


def parse_wvs_variant(folder: str) -> tuple[str, str] | None:
    """(framing, mode) from a :func:`wvs_variant` folder name; None for any other name."""
    framing, sep, mode = folder.rpartition("-")
    return (framing, mode) if sep and framing and mode else None


def stage_methods(stage: str, names: Sequence[str]) -> list[str]:
    """The methods among ``names`` that ``stage`` runs, in registry order."""
    if stage == "train":
        return methods.trained(list(names))
    return methods.evaluated_by(methods.LEXICAL if stage == "lexical" else methods.WVS, list(names))


def result_files(
    models: Sequence[str],
    languages: Sequence[str],
    names: Sequence[str],
    results: str | os.PathLike = "results",
    *,
    framings: Sequence[str],
    modes: Sequence[str],
) -> dict[str, list[str]]:
    """``{"train": [...], "lexical": [...], "wvs": [...]}``: every job's marker file, model-major order;
    wvs once per framing x mode (``wvs.framings``, ``wvs.modes``), framings outer."""
    base = Path(results)
    variants = [wvs_variant(framing, mode) for framing in framings for mode in modes]
    files: dict[str, list[str]] = {}
    for stage, (folder, marker) in STAGE_FILES.items():
        wanted = stage_methods(stage, names)
        files[stage] = [
            str(base / folder / model / lang / method / variant / marker)
            for model in models
            for lang in languages
            for method in wanted
            for variant in (variants if stage == "wvs" else [""])
        ]
    return files


# --------------------------------------------------------------------------- the model as participants


def temperature_label(temperature: float) -> str:
    """The folder of one sampling temperature's files under a population job: ``T1``, ``T0.7``, ``T2``."""
    return f"T{float(temperature):g}"


#: Contexts a simulated participant is asked with (the persona's system prompt; nothing).
_PARTICIPANT_CONTEXTS = (None, "persona")


def _askable(name: str) -> bool:
    return methods.get(name).context in _PARTICIPANT_CONTEXTS


def population_methods(names: Sequence[str], chosen: Sequence[str] | None) -> list[str]:
    """The methods the population stage simulates: those of ``population.methods`` (``chosen``; None = every
    method among ``names`` that tier 1 evaluates and a participant can be asked with) that the run has. A chosen
    method the run does not have is skipped (a config that narrows run.methods keeps the default's list); one
    tier 1 cannot ask, or one whose context the participant task has no place for, is an error."""
    from lexalign.core.errors import LexalignError

    tier1 = [name for name in methods.evaluated_by(methods.LEXICAL, list(names)) if _askable(name)]
    if chosen is None:
        return tier1
    for name in chosen:
        if methods.LEXICAL not in methods.get(name).tiers:
            raise LexalignError(
                f"config population.methods: {name!r} gives no association lists (tier 1 does not run it); "
                f"choose among {', '.join(methods.evaluated_by(methods.LEXICAL))}"
            )
        if name in names and not _askable(name):
            raise LexalignError(
                f"config population.methods: {name!r} puts norms in context, which the participant task "
                "(three words per cue) has no place for; choose among "
                + ", ".join(m for m in methods.evaluated_by(methods.LEXICAL) if _askable(m))
            )
    return [name for name in tier1 if name in chosen]


def population_files(
    models: Sequence[str],
    languages: Sequence[str],
    simulated: Sequence[str],
    temperatures: Sequence[float],
    results: str | os.PathLike = "results",
) -> dict[str, list[str]]:
    """``{"population": [compare.json ...], "participants": [participants.csv ...]}``: the population
    stage's marker files (one comparison per job) and its model-norms files (one per temperature).
    ``simulated``: the methods it simulates (:func:`population_methods`, computed once by
    :func:`lexalign.config.derive.derive`); ``temperatures``: ``population.temperatures``."""
    base = Path(results) / "population"
    jobs = [base / model / lang / method for model in models for lang in languages for method in simulated]
    labels = [temperature_label(t) for t in temperatures]
    return {
        "population": [str(job / "compare.json") for job in jobs],
        "participants": [str(job / label / "participants.csv") for job in jobs for label in labels],
    }
