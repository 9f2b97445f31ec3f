"""What the ``lexical`` rule reads: :class:`LexicalSettings` (config ``lexical``) and one :class:`LexicalJob`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lexalign.core.settings import field_names, from_section
from lexalign.core.snake import Rule
from lexalign.models.generation import Decoding


@dataclasses.dataclass(frozen=True)
class LexicalSettings:
    """Config ``lexical`` (its scheduler ``resources`` aside): decoding, list length, scoring and profile."""

    decoding: Decoding
    max_words: int | None  # stop a list once it has this many words (None: the model ends it)
    max_test_cues: int | None  # a seeded sample of the test cues (None: all)
    k: list[int]
    bootstrap_samples: int
    profile_words: int
    psycholinguistic: Mapping[str, Mapping[str, Any]]  # prompt language -> measure -> norms file

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> LexicalSettings:
        decoding_keys = field_names(Decoding)
        rest = {key: value for key, value in section.items() if key not in decoding_keys}
        return from_section(
            cls, {**rest, "decoding": Decoding.from_config(section, "lexical")}, "lexical", ignore=("resources",)
        )


@dataclasses.dataclass(frozen=True)
class LexicalJob:
    """One ``lexical`` job: one model (and adapter) x language x method, scored on the test cues."""

    model_dir: str
    eval_path: str
    associations_path: str
    outputs: Mapping[str, str]  # scores (JSON), generations and per_cue (Parquet)
    method: str
    prompt_language: str
    settings: LexicalSettings
    adapter_dir: str | None = None
    seed: int = 42
    dtype: str = "auto"
    threads: int | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_rule(cls, rule: Rule) -> LexicalJob:
        return cls(
            model_dir=rule.input["model"],
            eval_path=rule.input["eval"],
            associations_path=rule.input["associations"],
            outputs=dict(rule.output),
            method=rule.wildcards["method"],
            prompt_language=rule.params["prompt_language"],
            settings=LexicalSettings.from_config(rule.params["settings"]),
            adapter_dir=rule.input.get("adapter") or None,
            seed=rule.params["seed"],
            dtype=rule.params["dtype"],
            threads=rule.threads,
            labels={"model": rule.wildcards["model"], "lang": rule.wildcards["lang"]},
        )
