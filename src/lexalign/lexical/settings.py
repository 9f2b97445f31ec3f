"""What the ``lexical`` rule reads: :class:`LexicalSettings` (config ``lexical``, its ``norms`` block a
:class:`DemonstrationSettings`) and one :class:`LexicalJob`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.settings import field_names, from_section
from lexalign.core.snake import Rule
from lexalign.models.generation import Decoding


@dataclasses.dataclass(frozen=True)
class DemonstrationSettings:
    """Config ``lexical.norms`` (the norms_prompt method; ``wvs.norms`` in tier 2): demonstrations per prompt,
    words per demonstration list, their seed."""

    demonstrations: int
    list_length: int | None  # None: as many words as the evaluation prompt asks for at least (eval_bounds' lo)
    seed: int

    def __post_init__(self):
        if self.demonstrations < 1:
            raise LexalignError(f"config lexical.norms.demonstrations: {self.demonstrations} is not at least 1")
        if self.list_length is not None and self.list_length < 1:
            raise LexalignError(f"config lexical.norms.list_length: {self.list_length} is not at least 1")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DemonstrationSettings:
        return from_section(cls, section, "lexical.norms")

    def words(self, eval_bounds: Sequence[int]) -> int:
        """Words per demonstration list: ``list_length``, or the lower bound the evaluation prompt asks for."""
        return self.list_length if self.list_length is not None else int(eval_bounds[0])


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
    # The norms_prompt method's demonstrations; None in the other methods' jobs (the rule passes the block to
    # norms_prompt jobs only, so that a new demonstration seed reruns no other method).
    norms: DemonstrationSettings | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> LexicalSettings:
        decoding_keys = field_names(Decoding)
        rest = {key: value for key, value in section.items() if key not in decoding_keys}
        if rest.get("norms") is not None:
            rest["norms"] = DemonstrationSettings.from_config(rest["norms"])
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
    # templates.prompts and templates.eval_bounds, as the templates stage built the test prompts: the norms_prompt
    # method's demonstrations are the same instruction for train cues
    prompt_overrides: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    eval_bounds: tuple[int, int] | None = None
    adapter_dir: str | None = None
    seed: int = 42
    dtype: str = "auto"
    attn_implementation: str | None = None  # models.<name>.attn_implementation
    gpus: int = 0  # resources gpu: fewer visible stops the job
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
            prompt_overrides=rule.params["prompts"],
            eval_bounds=tuple(rule.params["eval_bounds"]),
            adapter_dir=rule.input.get("adapter") or None,
            seed=rule.params["seed"],
            dtype=rule.params["dtype"],
            attn_implementation=rule.params["attn_implementation"],
            gpus=int(rule.resources.get("gpu", 0) or 0),
            threads=rule.threads,
            labels={"model": rule.wildcards["model"], "lang": rule.wildcards["lang"]},
        )
