"""What the population rules read: :class:`PopulationSettings` and :class:`CompareSettings` (config
``population``), and one job type per rule (:class:`SimulateJob`, :class:`PopulationIngestJob`,
:class:`CompareJob`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lexalign.core.settings import field_names, from_section
from lexalign.core.snake import Rule

#: Keys of config ``population`` that neither rule reads (the grid's, the scheduler's).
_NEITHER = ("methods", "resources")


@dataclasses.dataclass(frozen=True)
class PopulationSettings:
    """Config ``population`` as the ``population`` rule reads it: who answers which cues, and how."""

    participants: int
    temperatures: Sequence[float]
    top_p: float
    cues: str  # which cues: all, test, train, ...
    max_cues: int | None
    batch_size: int
    max_new_tokens: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PopulationSettings:
        return from_section(cls, section, "population", ignore=(*_NEITHER, *field_names(CompareSettings)))


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """Config ``population`` as the ``population_compare`` rule reads it."""

    top_k: int
    bootstrap_samples: int
    graph_bootstrap_samples: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> CompareSettings:
        return from_section(cls, section, "population", ignore=(*_NEITHER, *field_names(PopulationSettings)))


def _labels(rule: Rule, *names: str) -> dict[str, str]:
    return {name: rule.wildcards[name] for name in names}


def _paths(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclasses.dataclass(frozen=True)
class SimulateJob:
    """One ``population`` job: a model (and adapter) as N participants of one language, every temperature."""

    model_dir: str
    associations_path: str
    norms_path: str
    norms: Mapping[str, Any]  # config languages.<lang>.norms: the layout the written files follow
    participants_out: list[str]  # one SWOW file per temperature, in population.temperatures order
    generations_out: str
    summary_out: str
    method: str
    prompt_language: str
    settings: PopulationSettings
    prompt_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    adapter_dir: str | None = None
    seed: int = 42
    dtype: str = "auto"
    attn_implementation: str | None = None  # models.<name>.attn_implementation
    gpus: int = 0  # resources gpu: fewer visible stops the job
    threads: int | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_rule(cls, rule: Rule) -> SimulateJob:
        return cls(
            model_dir=rule.input["model"],
            associations_path=rule.input["associations"],
            norms_path=rule.input["norms"],
            norms=rule.params["norms"],
            participants_out=_paths(rule.output["participants"]),
            generations_out=rule.output["generations"],
            summary_out=rule.output["summary"],
            method=rule.wildcards["method"],
            prompt_language=rule.params["prompt_language"],
            settings=PopulationSettings.from_config(rule.params["settings"]),
            prompt_overrides=rule.params["prompts"] or {},
            adapter_dir=rule.input.get("adapter") or None,
            seed=rule.params["seed"],
            dtype=rule.params["dtype"],
            attn_implementation=rule.params["attn_implementation"],
            gpus=int(rule.resources.get("gpu", 0) or 0),
            threads=rule.threads,
            labels=_labels(rule, "model", "lang"),
        )


@dataclasses.dataclass(frozen=True)
class PopulationIngestJob:
    """One ``population_ingest`` job: every temperature's participant file read as the human norms are."""

    summary_path: str
    participants: list[str]
    human_associations_path: str
    associations_out: list[str]
    stats_out: list[str]

    @classmethod
    def from_rule(cls, rule: Rule) -> PopulationIngestJob:
        return cls(
            summary_path=rule.input["summary"],
            participants=_paths(rule.input["participants"]),
            human_associations_path=rule.input["associations"],
            associations_out=_paths(rule.output["associations"]),
            stats_out=_paths(rule.output["stats"]),
        )


@dataclasses.dataclass(frozen=True)
class CompareJob:
    """One ``population_compare`` job: every temperature's model norms against the human norms."""

    human_associations_path: str
    human_norms_path: str
    human_norms: Mapping[str, Any]
    model_associations: list[str]
    participant_files: list[str]
    population_summary_path: str
    outputs: Mapping[str, str]  # compare (JSON), per_cue (Parquet)
    settings: CompareSettings
    seed: int = 42
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_rule(cls, rule: Rule) -> CompareJob:
        return cls(
            human_associations_path=rule.input["human"],
            human_norms_path=rule.input["norms"],
            human_norms=rule.params["norms"],
            model_associations=_paths(rule.input["model"]),
            participant_files=_paths(rule.input["participants"]),
            population_summary_path=rule.input["summary"],
            outputs=dict(rule.output),
            settings=CompareSettings.from_config(rule.params["settings"]),
            seed=rule.params["seed"],
            labels=_labels(rule, "model", "lang", "method"),
        )
