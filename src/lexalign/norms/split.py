"""The cue-level split of the norms into train, val and test (config ``split``), used by the ingest stage."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np

from lexalign.core.errors import LexalignError
from lexalign.core.settings import from_section

SPLITS = ("train", "val", "test")
SPLIT_DEFINITIONS = {
    "corrected": "sorted cues shuffled by Python's random.Random(seed); train and val sizes rounded to the nearest cue",
    "study": "the study's code: sorted cues shuffled by numpy's legacy RandomState(seed); train and val sizes floored",
}


@dataclasses.dataclass(frozen=True)
class SplitSettings:
    """Config ``split``: the train/val/test shares of the cues and how they are drawn (:func:`split_cues`)."""

    train: float
    val: float
    test: float
    definition: str = "corrected"

    def __post_init__(self):
        if self.definition not in SPLIT_DEFINITIONS:
            raise LexalignError(
                f"config split.definition: {self.definition!r} is not one of {', '.join(SPLIT_DEFINITIONS)}"
            )
        for name in SPLITS:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 <= value <= 1
            ):
                raise LexalignError(f"config split.{name}: {value!r} is not a share between 0 and 1")
        total = sum(float(getattr(self, name)) for name in SPLITS)
        if abs(total - 1.0) > 1e-6:
            raise LexalignError(f"config split: train + val + test must sum to 1 (got {total:g})")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SplitSettings:
        return from_section(cls, section, "split")

    @classmethod
    def of(cls, split: SplitSettings | Mapping[str, Any]) -> SplitSettings:
        """A SplitSettings as it is, or from a split mapping that may leave out ``definition`` (then corrected)."""
        if isinstance(split, cls):
            return split
        return from_section(cls, {"definition": cls.definition, **split}, "split")


def split_cues(cues: list[str], split: SplitSettings | Mapping, seed: int) -> dict[str, str]:
    """Assign every cue to train/val/test by a seeded shuffle of the sorted cue list.

    ``split.definition``: ``corrected`` (Python's ``random.Random(seed)``; sizes rounded to the nearest cue)
    or ``study`` (the study's code: numpy's legacy ``RandomState(seed).shuffle``; train and val sizes
    floored, so test gets the remainder: 1,004 Mandarin test cues where rounding gives 1,002).
    ``split`` may be a mapping without ``definition`` (then ``corrected``).
    """
    split = SplitSettings.of(split)
    order = sorted(cues)
    if split.definition == "study":
        if not 0 <= seed < 2**32:
            raise LexalignError(
                f"config seed: {seed} is outside 0..2**32-1, which numpy's RandomState (split.definition study) needs"
            )
        np.random.RandomState(seed).shuffle(order)
        n_train = int(float(split.train) * len(order))
        n_val = int(float(split.val) * len(order))
    else:
        random.Random(seed).shuffle(order)
        n_train = round(float(split.train) * len(order))
        n_val = round(float(split.val) * len(order))
    assignment = dict.fromkeys(order[:n_train], "train")
    assignment.update(dict.fromkeys(order[n_train : n_train + n_val], "val"))
    assignment.update(dict.fromkeys(order[n_train + n_val :], "test"))
    return assignment
