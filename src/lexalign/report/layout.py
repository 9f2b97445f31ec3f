"""The report's folders under its directory (``results/report/``): one declaration that the package writes
into (:data:`LAYOUT`) and ``workflow/rules/report.smk`` builds the rule's outputs from (:data:`FOLDERS`, each
marked for ``snakemake --report`` with its caption and category).

Light on purpose (no polars or matplotlib): Snakemake imports it while it parses the DAG.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

TIER1, TIER2, TRAINING, POPULATION = (
    "Tier 1: lexical alignment",
    "Tier 2: World Values Survey",
    "Training",
    "Model as participants",
)


@dataclasses.dataclass(frozen=True)
class Folder:
    """One output folder of the report rule and how the HTML report (``snakemake --report``) shows its files."""

    path: str  # relative to the report directory
    pattern: str  # the files the HTML report lists
    caption: str  # the caption file under workflow/report/
    category: str
    subcategory: str
    labels: Mapping[str, str]


def _figure(path: str, caption: str, category: str, subcategory: str, figure: str, by_model: bool) -> Folder:
    """A figure folder: one PNG per language, or per model and language (its other formats beside it)."""
    labels = {"figure": figure, **({"model": "{model}"} if by_model else {}), "language": "{lang}"}
    return Folder(path, "{model}.{lang}.png" if by_model else "{lang}.png", caption, category, subcategory, labels)


def _tables(path: str, caption: str, category: str) -> Folder:
    """A table folder: every table as CSV (long form), Markdown and LaTeX; the HTML report lists the CSVs."""
    return Folder(path, "{table}.csv", caption, category, "Tables", {"table": "{table}"})


#: Output name of the report rule -> its folder (in the rule's output order).
FOLDERS: dict[str, Folder] = {
    "tier1": _tables("tables/tier1", "tables_tier1.rst", TIER1),
    "tier2": _tables("tables/tier2", "tables_tier2.rst", TIER2),
    "training": _tables("tables/training", "tables_training.rst", TRAINING),
    "fig_precision": _figure(
        "figures/precision_at_k", "fig_precision_at_k.rst", TIER1, "P@k curves", "P@k curves", by_model=False
    ),
    "fig_profile": _figure(
        "figures/profile", "fig_profile.rst", TIER1, "Psycholinguistic profile", "profile", by_model=False
    ),
    "fig_tension": _figure(
        "figures/tension", "fig_tension.rst", TIER2, "Tension scatter", "tension scatter", by_model=True
    ),
    "fig_training": _figure(
        "figures/training", "fig_training.rst", TRAINING, "Training curves", "training curves", by_model=True
    ),
    "population": _tables("tables/population", "tables_population.rst", POPULATION),
    "fig_population": _figure(
        "figures/population", "fig_population.rst", POPULATION, "Temperature sweep", "temperature sweep", by_model=True
    ),
}
#: Output name -> folder relative to the report directory: where the package writes each group.
LAYOUT: dict[str, str] = {name: folder.path for name, folder in FOLDERS.items()}
