"""The run grid: which result files a (models x languages x methods) run produces, computed once.

``workflow/rules/common.smk`` (the DAG's targets and the report's inputs) and ``python -m
lexalign.report`` (rebuilding the report without Snakemake) both call :func:`result_files`, so the
grid the report expects is the grid the workflow builds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lexalign import methods

#: stage -> (results sub-folder, the file that marks a finished job)
STAGE_FILES = {
    "train": ("train", "metrics.json"),
    "lexical": ("lexical", "scores.json"),
    "wvs": ("wvs", "metrics.json"),
}


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
) -> dict[str, list[str]]:
    """``{"train": [...], "lexical": [...], "wvs": [...]}``: every job's marker file, model-major order."""
    base = Path(results)
    files: dict[str, list[str]] = {}
    for stage, (folder, marker) in STAGE_FILES.items():
        wanted = stage_methods(stage, names)
        files[stage] = [
            str(base / folder / model / lang / method / marker)
            for model in models
            for lang in languages
            for method in wanted
        ]
    return files
