"""Tier-2 comparison: the model and three reference answerers scored against the two configured countries'
humans (``wvs.countries``; keyed by :attr:`lexalign.config.countries.Country.key`).

Answerers: ``model`` (its answer distribution; None where it gave no usable answer), ``uniform``
(1/N on every option), ``target_majority`` (the target country's majority answer, one-hot) and
``other_country`` (the other country's human distribution, as if it answered). Every answerer is
summarised over the items the model answered, so that the rows are comparable.

High-tension set (the study's ``tension.py``): the ``high_tension_n`` items with the largest
tension distance between the two countries among *all* items asked, answered or not; the items of the set
that the model did not answer are listed and count as closer to neither country. One summary per
metric definition (:data:`lexalign.wvs.metrics.DEFINITIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lexalign.config.countries import Country
from lexalign.wvs.metrics import (
    METRICS,
    STUDY_METRICS,
    closer_counts,
    item_metrics,
    one_hot_majority,
    summarise,
    uniform,
)

ANSWERERS = ("model", "uniform", "target_majority", "other_country")
REFERENCE_ANSWERERS = ANSWERERS[1:]
#: Per-item metric columns of answers.parquet (corrected definition), per answerer and country.
PER_ITEM_COLUMNS = ("emd", "emd_norm", "js", "kl_model_human", "kl_human_model", "cosine", "acc", "distance")
#: Per-item columns whose study form differs from the corrected one (answers.parquet ``study_<metric>_<country>``).
STUDY_COLUMNS = ("js", "kl_model_human", "kl_human_model", "distance")
#: humans.parquet column holding the two countries' tension under each definition.
TENSION_COLUMN = {"corrected": "tension", "study": "tension_study"}


def reference_answer(name: str, item: Mapping[str, Any], target: str, other: str) -> list[float]:
    """The distribution a reference answerer gives for ``item``."""
    if name == "uniform":
        return uniform(item["n_options"])
    if name == "target_majority":
        return one_hot_majority(item[target])
    if name == "other_country":
        return list(item[other])
    raise ValueError(f"unknown reference answerer {name!r}")


def per_item(
    items: Sequence[Mapping[str, Any]],
    answers: Mapping[str, Sequence[Sequence[float] | None]],
    kl_epsilon: float,
    definition: str,
    countries: Sequence[Country],
) -> dict[str, dict[str, list[dict | None]]]:
    """answerer -> country key -> per-item metrics (None where the answerer gave no distribution)."""
    return {
        name: {
            country: [
                None if dist is None else item_metrics(dist, item[country], kl_epsilon, definition)
                for item, dist in zip(items, dists)
            ]
            for country in (c.key for c in countries)
        }
        for name, dists in answers.items()
    }


def high_tension_set(items: Sequence[Mapping[str, Any]], n: int, definition: str) -> list[int]:
    """Indices of the ``n`` items with the largest human tension between the countries (all items, answered or not)."""
    column = TENSION_COLUMN[definition]
    ranked = sorted(range(len(items)), key=lambda i: (-items[i][column], i))
    return ranked[: min(int(n), len(items))]


def summary(
    items: Sequence[Mapping[str, Any]],
    rows: Mapping[str, Mapping[str, Sequence[dict | None]]],
    high: Sequence[int],
    definition: str,
    countries: Sequence[Country],
) -> dict:
    """results (answerer -> country key -> overall / by option count / high tension) and the high-tension block."""
    keys = [c.key for c in countries]
    answered = [i for i, row in enumerate(rows["model"][keys[0]]) if row is not None]
    in_high = set(high)
    names = METRICS if definition == "corrected" else STUDY_METRICS
    counts = [items[i]["n_options"] for i in answered]
    subset = [i in in_high for i in answered]
    results = {
        name: {c: summarise([by_country[c][i] for i in answered], counts, subset, names) for c in keys}
        for name, by_country in rows.items()
    }

    def distances(name: str, country: str) -> list[float | None]:
        return [None if rows[name][country][i] is None else rows[name][country][i]["distance"] for i in high]

    column = TENSION_COLUMN[definition]
    model = {key: distances("model", key) for key in keys}
    pair = f"{countries[0].name}-{countries[1].name}"
    block = {
        "n": len(high),
        "countries": {c.key: c.name for c in countries},
        "ranking": f"the {len(high)} items (of all {len(items)} asked, answered or not) with the largest human "
        f"{pair} tension distance ({definition} definition)",
        "closer_by": f"tension distance of the answerer to {countries[0].name} vs to {countries[1].name} humans; "
        "unanswered items count in neither",
        "answered": sum(d is not None for d in model[keys[0]]),
        "unanswered": [items[i]["item_id"] for i, d in zip(high, model[keys[0]]) if d is None],
        **closer_counts(model),
        "reference": {
            name: closer_counts({key: distances(name, key) for key in keys})
            for name in REFERENCE_ANSWERERS
            if name in rows
        },
        "items": [
            {
                "item_id": items[i]["item_id"],
                "human_tension": items[i][column],
                "distance": {key: model[key][j] for key in keys},
            }
            for j, i in enumerate(high)
        ],
    }
    return {"results": results, "high_tension": block}
