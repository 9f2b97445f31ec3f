"""What one ``wvs`` job is: its settings (the ``wvs`` config keys it reads) and its wildcards and paths.

Light on purpose (no numpy, scipy or torch): ``workflow/rules/wvs.smk`` imports it while Snakemake parses
the DAG, and :mod:`lexalign.wvs.evaluate` runs the job.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from lexalign.core.errors import LexalignError

FRAMINGS = ("interviewer", "neutral", "persona", "observer")
MODES = ("logits", "generate")
#: Where assoc_prompt's associations come from: the language's human norms, or a method's tier-1 generations.
ASSOC_SOURCES = ("humans", "model")


@dataclasses.dataclass(frozen=True)
class WvsSettings:
    """The ``wvs`` config section's settings of one job; build it from the validated section (schema defaults).
    The framing and mode are the job's own (:class:`WvsJob`), from the config's lists ``framings`` and ``modes``."""

    batch_size: int
    max_items: int | None
    high_tension_n: int
    kl_epsilon: float
    max_new_tokens: int
    assoc_top_k: int
    assoc_max_cues: int
    score_labels: bool
    assoc_source: str
    assoc_model_method: str | None
    norms: Mapping[str, Any]  # wvs.norms (norms_prompt): source_share, seed, max_norms
    backend: str  # logits mode on hf (transformers) or vllm (lexalign.wvs.vllm)
    vllm: Mapping[str, Any]  # wvs.vllm: keyword arguments for vllm.LLM

    def __post_init__(self):
        if self.assoc_source not in ASSOC_SOURCES:
            raise LexalignError(f"config wvs.assoc_source: {self.assoc_source!r} is not one of {list(ASSOC_SOURCES)}")

    @classmethod
    def keys(cls) -> list[str]:
        """The ``wvs`` config keys a job reads (the rule passes only these, so other keys do not rerun it)."""
        return sorted(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WvsSettings:
        names = cls.keys()
        missing = [name for name in names if name not in section]
        if missing:
            raise LexalignError(
                f"config wvs: no {', '.join(missing)} (pass the wvs section validated against the schema)"
            )
        return cls(**{name: section[name] for name in names})


@dataclasses.dataclass(frozen=True)
class WvsJob:
    """One ``wvs`` job: which model, language, method, framing and answer mode, and where its inputs and
    outputs are (``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/``)."""

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
    threads: int | None = None

    def __post_init__(self):
        if self.framing not in FRAMINGS:
            raise LexalignError(f"wvs: framing {self.framing!r} is not one of {list(FRAMINGS)} (config wvs.framings)")
        if self.mode not in MODES:
            raise LexalignError(f"wvs: mode {self.mode!r} is not one of {list(MODES)} (config wvs.modes)")
