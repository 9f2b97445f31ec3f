"""Values the validated config implies but does not spell out, computed by one function.

The DAG (``workflow/rules/common.smk``), the ``lexalign`` command and the report all call :func:`derive`,
so each sees the same values and none writes them back into the config.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lexalign.config import methods
from lexalign.config.grid import population_methods
from lexalign.core.errors import LexalignError

# The invented files the embedded default reads when wvs.source.path is null (relative to the checkout).
ILLUSTRATIVE_WVS = Path("data") / "illustrative" / "wvs"
ILLUSTRATIVE_WVS_SOURCES = {
    "wvs_csv": ILLUSTRATIVE_WVS / "WVS_Cross-National_Wave_7_illustrative.csv",
    "global_opinions": ILLUSTRATIVE_WVS / "global_opinions_illustrative.csv",
}


@dataclasses.dataclass(frozen=True)
class Derived:
    """What :func:`derive` computes from a validated config."""

    wvs_source_path: str  # wvs.source.path, or the shipped illustrative file of wvs.source.type
    assoc_model_method: str | None  # the method whose tier-1 lists feed assoc_source: model (None: humans)
    population_methods: tuple[str, ...]  # the run's methods the population stage simulates


def wvs_source_path(source: Mapping[str, Any], checkout: str | os.PathLike | None = None) -> str:
    """The configured WVS source file, or the illustrative file of its type inside ``checkout``."""
    if source.get("path"):
        return str(source["path"])
    relative = ILLUSTRATIVE_WVS_SOURCES[source["type"]]
    return str(Path(checkout, relative) if checkout is not None else relative)


def assoc_model_method(wvs: Mapping[str, Any], run_methods: Sequence[str]) -> str | None:
    """The method whose tier-1 generations feed ``assoc_source: model`` (None with ``assoc_source: humans``):
    ``wvs.assoc_model_method``, else the first trained method of ``run.methods``."""
    if wvs.get("assoc_source", "humans") != "model":
        return None
    name = wvs.get("assoc_model_method")
    lexical = methods.evaluated_by(methods.LEXICAL)
    if name is None:
        trained = methods.trained(list(run_methods))
        if not trained:
            raise LexalignError(
                "config wvs.assoc_model_method: run.methods has no trained method whose tier-1 generations "
                f"assoc_source model could use; name one of {', '.join(lexical)}"
            )
        return trained[0]
    if name not in lexical:
        raise LexalignError(
            f"config wvs.assoc_model_method: {name!r} is not a method with tier-1 generations "
            f"(one of {', '.join(lexical)})"
        )
    return name


def derive(config: Mapping[str, Any], checkout: str | os.PathLike | None = None) -> Derived:
    """The derived values of a validated ``config``; ``checkout`` is the workflow's folder (where the
    illustrative data lies), None for paths relative to the working directory."""
    run_methods = config["run"]["methods"]
    return Derived(
        wvs_source_path=wvs_source_path(config["wvs"]["source"], checkout),
        assoc_model_method=assoc_model_method(config["wvs"], run_methods),
        population_methods=tuple(population_methods(run_methods, config["population"]["methods"])),
    )
