"""The method registry: the one place that says what each ``{method}`` wildcard value is.

Rules, the config check, training, both evaluation tiers, the report and the figures read these
records; nothing else spells a method's name, label, colour or data table.
"""

from __future__ import annotations

import dataclasses

from lexalign.core.errors import LexalignError

LEXICAL = "lexical"
WVS = "wvs"


@dataclasses.dataclass(frozen=True)
class Method:
    """One way of getting a model to answer: untrained (in-context) or a trained LoRA adapter."""

    name: str
    label: str  # in tables and figure legends
    color: str  # in figures
    tiers: frozenset[str]  # evaluation stages that run it
    trainer: str | None = None  # TRL trainer ("sft", "grpo", "dpo"); None = untrained
    data_table: str | None = None  # template table it trains on (results/templates/{lang}/<table>.parquet)
    preset_sections: tuple[str, ...] = ()  # preset sections merged, in order, into its hyper-parameters
    init_from: str | None = None  # method whose adapter training starts from
    context: str | None = None  # what an untrained method adds to the prompt ("persona", "associations", "norms")

    @property
    def trained(self) -> bool:
        return self.trainer is not None


_BOTH = frozenset({LEXICAL, WVS})

REGISTRY: dict[str, Method] = {
    method.name: method
    for method in (
        Method("vanilla", "vanilla", "#4d4d4d", _BOTH),
        Method("prompt", "persona prompt", "#8c6bb1", _BOTH, context="persona"),
        Method("assoc_prompt", "association prompt", "#b07aa1", frozenset({WVS}), context="associations"),
        # Tier 1: train cues with their human lists as demonstrations (lexalign.lexical.demonstrations); tier 2:
        # the target country's majority answers to other items (lexalign.wvs.norms).
        Method("norms_prompt", "norms prompt", "#e377c2", _BOTH, context="norms"),
        Method("sft", "SFT", "#1f77b4", _BOTH, trainer="sft", data_table="sft", preset_sections=("train", "sft")),
        Method("rl", "RL", "#ff7f0e", _BOTH, trainer="grpo", data_table="ranking", preset_sections=("train", "rl")),
        Method(
            "sft_rl",
            "SFT+RL",
            "#2ca02c",
            _BOTH,
            trainer="grpo",
            data_table="ranking",
            preset_sections=("train", "rl", "sft_rl"),
            init_from="sft",
        ),
        Method("dpo", "DPO", "#d62728", _BOTH, trainer="dpo", data_table="dpo", preset_sections=("train", "dpo")),
    )
}

#: The method gains are measured against: the untrained model as is.
BASELINE = "vanilla"
#: Every method name, in the order tables and legends list them.
NAMES: tuple[str, ...] = tuple(REGISTRY)
TRAINED: tuple[str, ...] = tuple(name for name, method in REGISTRY.items() if method.trained)


def get(name: str) -> Method:
    """The record of ``name``; an unknown name is a user error naming the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise LexalignError(f"unknown method {name!r} (known: {', '.join(NAMES)})") from None


def evaluated_by(tier: str, names: tuple[str, ...] | list[str] = NAMES) -> list[str]:
    """The methods among ``names`` that evaluation ``tier`` (lexical or wvs) runs, in registry order."""
    return [name for name in NAMES if name in names and tier in REGISTRY[name].tiers]


def trained(names: tuple[str, ...] | list[str] = NAMES) -> list[str]:
    """The trained methods among ``names``, in registry order."""
    return [name for name in TRAINED if name in names]


def wildcard_pattern(names: tuple[str, ...] | list[str]) -> str:
    """A ``wildcard_constraints`` regex matching exactly ``names``."""
    return "|".join(names)


def order_key(name: str) -> int:
    """Sort key that puts methods in registry order (unknown names last)."""
    return NAMES.index(name) if name in REGISTRY else len(NAMES)


def check_job(stage: str, tier: str, name: str, adapter_dir) -> Method:
    """The record of the method a ``stage`` job runs; one line when evaluation ``tier`` does not run it, or
    when it is trained and the job was given no adapter."""
    method = get(name)
    if tier not in method.tiers:
        known = ", ".join(evaluated_by(tier))
        raise LexalignError(f"{stage}: method {name!r} has no {tier} evaluation (known: {known})")
    if method.trained and not adapter_dir:
        raise LexalignError(f"{stage}: method {name!r} is a trained method but no adapter directory was given")
    return method
