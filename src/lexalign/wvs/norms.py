"""Cultural-norm prompting (a method whose context is "norms", in the spirit of CNCA).

The WVS items are split, seeded, into a *norm source* part and an *evaluation* part
(:func:`split_items`, config ``wvs.norms``). The target country's majority answers to source items
become short natural-language norms in the prompt language (:func:`norm_sentences`; wording in the
``wvs_norms``, ``wvs_norm`` and ``wvs_norm_position`` prompt templates), shown in context while the
model answers the evaluation items only. :func:`check_no_leakage` makes sure that no item is both a
norm and a question, as ingest's check does for cues.

Every ``wvs`` job records the item ids it evaluated (``items_evaluated`` in metrics.json), so that
methods evaluated on different item sets are compared on the items they share (:func:`shared_items`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from lexalign.core.errors import LexalignError
from lexalign.norms.templates import check_placeholders
from lexalign.wvs.prompts import country_name, item_text
from lexalign.wvs.settings import NormsPromptSettings

K = TypeVar("K")
SOURCE, EVALUATION = "source", "evaluation"
#: The prompt template keys of this method (their placeholders: lexalign.norms.templates.PLACEHOLDERS).
TEMPLATE_KEYS = ("wvs_norms", "wvs_norm", "wvs_norm_position")
SPLIT_DEFINITION = (
    "sorted item ids shuffled by Python's random.Random(seed); the first round(source_share * n) items "
    "(at least 1, at most n - 1) are norm sources, the rest are evaluated"
)


def split_items(item_ids: Iterable[str], source_share: float, seed: int) -> dict[str, str]:
    """item id -> :data:`SOURCE` or :data:`EVALUATION` (:data:`SPLIT_DEFINITION`).

    The split depends on the set of ids only (not their order), so every job of a run draws the same one.
    """
    ids = sorted(set(item_ids))
    if len(ids) < 2:
        raise LexalignError(
            f"wvs: the norms split needs at least 2 items with human answers, got {len(ids)} "
            "(see results/wvs/humans.json)"
        )
    order = list(ids)
    random.Random(seed).shuffle(order)
    n_source = min(max(round(source_share * len(ids)), 1), len(ids) - 1)
    return {item_id: SOURCE if i < n_source else EVALUATION for i, item_id in enumerate(order)}


def check_no_leakage(source_ids: Iterable[str], evaluated_ids: Iterable[str]) -> None:
    """No item may be both a norm in context and an evaluated question."""
    leaked = sorted(set(source_ids) & set(evaluated_ids))
    if leaked:
        shown = ", ".join(leaked[:5]) + (" ..." if len(leaked) > 5 else "")
        raise RuntimeError(f"norms split leakage: {len(leaked)} items are both norm sources and evaluated ({shown})")


def _check_templates(templates: Mapping[str, Any], language: str) -> None:
    """Templates not from :func:`lexalign.norms.templates.prompt_templates` (which checks them all): these keys present,
    with the placeholders the one table allows."""
    for key in TEMPLATE_KEYS:
        if key not in templates:
            raise LexalignError(
                f"config templates.prompts.{language}: no {key} template (the norms prompt needs "
                f"{', '.join(TEMPLATE_KEYS)}; see src/lexalign/resources/prompts.yaml)"
            )
    check_placeholders(templates, language, TEMPLATE_KEYS)


def majority(item: Mapping[str, Any], target: str) -> tuple[int, float]:
    """(0-based option position, share) of the target country's most frequent answer (first on ties)."""
    shares = np.asarray(item[target], dtype=float)
    position = int(np.argmax(shares))
    return position, float(shares[position])


def norm_sentence(
    item: Mapping[str, Any], target: str, templates: Mapping[str, Any], language: str, country: str
) -> str:
    """One item's norm: the question and the target country's majority answer, in the prompt language."""
    _check_templates(templates, language)
    question, labels, _ = item_text(item, language)
    position, _ = majority(item, target)
    label = labels[position].strip()
    answer = label or templates["wvs_norm_position"].format(position=position + 1, n=item["n_options"])
    return templates["wvs_norm"].format(question=question, answer=answer, country=country_name(templates, country))


def norm_sentences(
    source_items: Sequence[Mapping[str, Any]],
    target: str,
    templates: Mapping[str, Any],
    language: str,
    country: str,
    max_norms: int,
) -> tuple[list[str], list[str]]:
    """(sentences, their item ids): the ``max_norms`` source items whose majority answer is the clearest
    (largest target-country share; item id breaks ties), in that order."""
    ranked = sorted(source_items, key=lambda item: (-majority(item, target)[1], item["item_id"]))[:max_norms]
    sentences = [norm_sentence(item, target, templates, language, country) for item in ranked]
    return sentences, [item["item_id"] for item in ranked]


def plan(
    humans: Sequence[Mapping[str, Any]],
    selected: Sequence[Mapping[str, Any]],
    target: str,
    norms: NormsPromptSettings,
    templates: Mapping[str, Any],
    language: str,
    country: str,
) -> tuple[list[dict], list[str], dict]:
    """The items a norms-prompted job asks, its norm sentences and the record for metrics.json.

    ``humans``: every item with human answers (the split is drawn over all of them, so it does not depend on
    ``wvs.max_items``); ``selected``: the items every other method asks; the job asks those of them in the
    evaluation part.
    """
    share, seed, max_norms = float(norms.source_share), norms.seed, norms.max_norms
    parts = split_items((item["item_id"] for item in humans), share, seed)
    source = [item for item in humans if parts[item["item_id"]] == SOURCE]
    evaluated = [dict(item) for item in selected if parts[item["item_id"]] == EVALUATION]
    if not evaluated:
        raise LexalignError(
            f"config wvs.norms.source_share: {share} leaves none of the {len(selected)} items asked "
            "(wvs.max_items) in the evaluation part; lower it or ask more items"
        )
    sentences, used = norm_sentences(source, target, templates, language, country, max_norms)
    check_no_leakage(used, (item["item_id"] for item in evaluated))
    record = {
        "split": SPLIT_DEFINITION,
        "source_share": share,
        "seed": seed,
        "max_norms": max_norms,
        "n_source_items": len(source),
        "n_evaluation_items": len(parts) - len(source),
        "n_asked": len(evaluated),
        "n_not_asked": len(selected) - len(evaluated),
        "norm_items": used,
        "norms": sentences,
        "leakage_check": "passed: no norm item is evaluated",
    }
    return evaluated, sentences, record


def shared_items(evaluated: Mapping[str, Iterable[str]]) -> list[str]:
    """The item ids every job evaluated (``evaluated``: job name -> its metrics.json ``items_evaluated``),
    sorted: the set on which methods with different item sets are compared."""
    sets = [set(ids) for ids in evaluated.values()]
    return sorted(set.intersection(*sets)) if sets else []


def on_shared_items(answers: Mapping[K, Any], group: Callable[[K], Hashable]) -> dict[K, Any]:
    """Each job's answers.parquet table restricted to the items that every job of its ``group`` asked.

    ``answers``: job key -> its answers table (polars, column ``item_id``) or None (left as None, and not
    counted in its group); ``group``: job key -> comparison group (e.g. model, language, framing, mode: all
    methods of one comparison). Tables of a group whose jobs asked the same items come back unchanged.
    """
    import polars as pl

    groups: dict[Hashable, list[K]] = {}
    for key, table in answers.items():
        if table is not None:
            groups.setdefault(group(key), []).append(key)
    out: dict[K, Any] = dict(answers)
    for keys in groups.values():
        shared = shared_items({key: answers[key]["item_id"].to_list() for key in keys})
        for key in keys:
            if answers[key].height != len(shared):
                out[key] = answers[key].filter(pl.col("item_id").is_in(shared))
    return out
