"""The study's reported numbers (resources/reference_numbers.yaml), looked up by this run's keys.

They appear only in columns labelled "reported by the study", beside (never in place of) what the
workflow measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

REFERENCE_FILE = resource("reference_numbers.yaml")
REPORTED = "reported by the study"
REPORTED_COLUMN = "reported_by_the_study"


class Reference:
    """The study's reported numbers (resources/reference_numbers.yaml), looked up by this run's keys."""

    def __init__(
        self,
        reference_models: Mapping[str, str],
        reference_languages: Mapping[str, str],
        path: Path = REFERENCE_FILE,
    ):
        self.data = yaml.safe_load(path.read_text(encoding="utf-8"))
        known = list(self.data["models"])
        for name, study in reference_models.items():
            if study not in known:
                raise LexalignError(
                    f"config report.reference_models.{name}: {study!r} is not a model the study reports "
                    f"(known: {', '.join(known)})"
                )
        self.models, self.languages = dict(reference_models), dict(reference_languages)

    def _rows(self, section: str, model: str, lang: str, method: str) -> list[dict]:
        study_model = self.models.get(model, model if model in self.data["models"] else None)
        study_lang = self.languages.get(lang, lang if lang in ("en", "zh") else None)
        if study_model is None or study_lang is None:
            return []
        return [
            r
            for r in self.data.get(section, [])
            if (r["model"], r["lang"], r["method"]) == (study_model, study_lang, method)
        ]

    def lexical(self, model: str, lang: str, method: str, metric: str) -> float | None:
        return next(
            (r["value"] for r in self._rows("lexical", model, lang, method) if r["metric"] == metric),
            None,
        )

    def tension(self, model: str, lang: str, method: str) -> dict:
        rows = self._rows("tension", model, lang, method)
        return rows[0] if rows else {}

    @property
    def active(self) -> bool:
        """Whether the config maps any model to the study's (then the reference columns always show)."""
        return bool(self.models)
