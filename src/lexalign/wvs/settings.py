"""What the stage's jobs are: the ``wvs`` config keys each rule reads (typed) and its wildcards and paths.

``wvs_humans`` reads :class:`HumansSettings` (one :class:`HumansJob`); ``wvs`` reads :class:`WvsSettings`, and
one rule job (:class:`WvsFramingJob`) asks one framing's every configured mode (a :class:`WvsJob` each).

Light on purpose (no numpy, scipy or torch): ``workflow/rules/wvs.smk`` imports it while Snakemake parses
the DAG, and :mod:`lexalign.wvs.evaluate` and :mod:`lexalign.wvs.humans` run the jobs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from lexalign.core.errors import LexalignError
from lexalign.core.settings import field_names, from_section
from lexalign.core.snake import Rule

FRAMINGS = ("interviewer", "neutral", "persona", "observer")
#: Answer modes: option probabilities, one greedy answer, N sampled answers, the distribution the model states.
MODES = ("logits", "generate", "sample", "describe")
#: Where assoc_prompt's associations come from: the language's human norms, or a method's tier-1 generations.
ASSOC_SOURCES = ("humans", "model")
#: The ``wvs`` keys neither rule's job reads: the run grid's (framings, modes) and the scheduler's (resources).
GRID_KEYS = ("framings", "modes", "resources")


@dataclasses.dataclass(frozen=True)
class NormsPromptSettings:
    """``wvs.norms`` (the norms_prompt method): the share of items that are norm sources, the split's seed and
    how many norms the prompt shows."""

    source_share: float
    seed: int
    max_norms: int

    def __post_init__(self):
        share, seed, max_norms = self.source_share, self.seed, self.max_norms
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
            raise LexalignError(f"config wvs.norms.source_share: {share!r} is not a number between 0 and 1 (exclusive)")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise LexalignError(f"config wvs.norms.seed: {seed!r} is not an integer in 0..2**32-1")
        if isinstance(max_norms, bool) or not isinstance(max_norms, int) or max_norms < 1:
            raise LexalignError(f"config wvs.norms.max_norms: {max_norms!r} is not a positive integer")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> NormsPromptSettings:
        return from_section(cls, section, "wvs.norms")


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Sample mode's decoding (``wvs.sample_*``, ``wvs.max_new_tokens``): ``n`` answers per item at
    ``temperature`` (top-p 1), seeded per item from ``seed``."""

    n: int
    temperature: float
    seed: int
    max_new_tokens: int


@dataclasses.dataclass(frozen=True)
class WvsSettings:
    """The ``wvs`` config keys a ``wvs`` job reads; build it from the validated section (schema defaults).
    The framing and mode are the job's own (:class:`WvsJob`), from the config's lists ``framings`` and ``modes``."""

    batch_size: int
    max_items: int | None
    high_tension_n: int
    kl_epsilon: float
    max_new_tokens: int  # generate and sample mode
    sample_n: int
    sample_temperature: float
    sample_seed: int
    describe_max_new_tokens: int
    assoc_top_k: int
    assoc_max_cues: int
    score_labels: bool
    assoc_source: str
    assoc_model_method: str | None  # resolved (lexalign.config.derive): the rule passes the derived value
    norms: NormsPromptSettings
    backend: str  # logits mode on hf (transformers) or vllm (lexalign.wvs.vllm)
    vllm: Mapping[str, Any]  # wvs.vllm: keyword arguments for vllm.LLM, passed through

    def __post_init__(self):
        if self.assoc_source not in ASSOC_SOURCES:
            raise LexalignError(f"config wvs.assoc_source: {self.assoc_source!r} is not one of {list(ASSOC_SOURCES)}")

    @property
    def sampling(self) -> Sampling:
        """Sample mode's decoding."""
        return Sampling(self.sample_n, float(self.sample_temperature), self.sample_seed, self.max_new_tokens)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WvsSettings:
        """From the ``wvs`` section (or the rule's subset of it); the keys wvs_humans and the grid read are left."""
        settings = from_section(cls, section, "wvs", ignore=(*field_names(HumansSettings), *GRID_KEYS))
        return dataclasses.replace(settings, norms=NormsPromptSettings.from_config(section["norms"]))


@dataclasses.dataclass(frozen=True)
class WvsJob:
    """One framing x answer mode of a ``wvs`` job: which model, language, method, framing and mode, and where
    its inputs and outputs are (``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/``)."""

    model_dir: str | os.PathLike
    humans_path: str | os.PathLike
    metrics_out: str | os.PathLike
    answers_out: str | os.PathLike
    lang: str
    method: str
    prompt_language: str
    country: str | None
    model_name: str
    framing: str
    mode: str
    adapter_dir: str | os.PathLike | None = None
    associations_path: str | os.PathLike | None = None
    dtype: str = "auto"
    attn_implementation: str | None = None  # models.<name>.attn_implementation
    gpus: int = 0  # resources gpu: fewer visible stops the job
    threads: int | None = None

    def __post_init__(self):
        if self.framing not in FRAMINGS:
            raise LexalignError(f"wvs: framing {self.framing!r} is not one of {list(FRAMINGS)} (config wvs.framings)")
        if self.mode not in MODES:
            raise LexalignError(f"wvs: mode {self.mode!r} is not one of {list(MODES)} (config wvs.modes)")


@dataclasses.dataclass(frozen=True)
class WvsFramingJob:
    """One ``wvs`` rule job: one model x language x method x framing, every configured mode asked on one
    loaded model (``modes``: a :class:`WvsJob` per mode, in ``wvs.modes`` order)."""

    modes: tuple[WvsJob, ...]
    settings: WvsSettings
    prompts: Mapping[str, Mapping[str, Any]]  # templates.prompts of the job's prompt language (free-form overrides)

    @classmethod
    def from_rule(cls, rule: Rule) -> WvsFramingJob:
        """The rule's ``modes`` param pairs with its ``metrics`` and ``answers`` outputs, one folder per mode."""
        params, wildcards = rule.params, rule.wildcards
        modes, metrics, answers = list(params["modes"]), list(rule.output["metrics"]), list(rule.output["answers"])
        if not len(modes) == len(metrics) == len(answers):
            raise LexalignError(
                f"wvs: {len(modes)} modes but {len(metrics)} metrics and {len(answers)} answers outputs"
            )
        jobs = tuple(
            WvsJob(
                model_dir=rule.input["model"],
                humans_path=rule.input["humans"],
                metrics_out=metrics_out,
                answers_out=answers_out,
                lang=wildcards["lang"],
                method=wildcards["method"],
                prompt_language=params["prompt_language"],
                country=params["country"],
                model_name=wildcards["model"],
                framing=wildcards["framing"],
                mode=mode,
                adapter_dir=rule.input.get("adapter") or None,
                associations_path=rule.input.get("associations") or None,
                dtype=params["dtype"],
                attn_implementation=params["attn_implementation"],
                gpus=int(rule.resources.get("gpu", 0) or 0),
                threads=rule.threads,
            )
            for mode, metrics_out, answers_out in zip(modes, metrics, answers)
        )
        return cls(jobs, WvsSettings.from_config(params["settings"]), params["prompts"])


@dataclasses.dataclass(frozen=True)
class WvsSource:
    """``wvs.source``: the kind of file (``wvs_csv`` or ``global_opinions``) and its path (None: the shipped
    illustrative file of that kind, :func:`lexalign.config.derive.wvs_source_path`)."""

    type: str
    path: str | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WvsSource:
        return from_section(cls, section, "wvs.source")


@dataclasses.dataclass(frozen=True)
class HumansSettings:
    """The ``wvs`` config keys the ``wvs_humans`` job reads: the source file, the item catalog (None: the
    built-in one), what to do with bad source rows and the two compared countries."""

    source: WvsSource
    catalog: str | None
    bad_rows: str
    countries: list[str]

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> HumansSettings:
        """From the ``wvs`` section (or the rule's params, the same keys); the keys a wvs job reads are left."""
        settings = from_section(cls, section, "wvs", ignore=(*field_names(WvsSettings), *GRID_KEYS))
        return dataclasses.replace(settings, source=WvsSource.from_config(section["source"]))
