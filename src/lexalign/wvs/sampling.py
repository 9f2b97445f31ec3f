"""WVS sample mode: an item's answer distribution from N sampled text answers.

Each sampled answer is classified as generate mode's one answer is (:func:`lexalign.wvs.refusal.classify`:
an option, a refusal or no valid option). The item's distribution is the share of the valid answers (those
naming an option) that name each option; the refusal and no-valid-option shares of all N answers are kept
beside it. An item none of whose answers names an option has no distribution (it counts as unanswered,
like an unparsed generate answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lexalign.core.stats import derived_seed
from lexalign.wvs.refusal import NO_OPTION, OPTION, REFUSAL, TextAnswer


@dataclass(frozen=True)
class SampledDistribution:
    """The N answers of one item: per option how many name it, and how many refused or named no option."""

    counts: tuple[int, ...]
    n_refusal: int
    n_no_option: int

    @property
    def n_samples(self) -> int:
        return sum(self.counts) + self.n_refusal + self.n_no_option

    @property
    def n_valid(self) -> int:
        return sum(self.counts)

    @property
    def probs(self) -> list[float] | None:
        """Each option's share of the valid answers; None when no answer names an option."""
        return [count / self.n_valid for count in self.counts] if self.n_valid else None

    @property
    def refusal_share(self) -> float | None:
        return self.n_refusal / self.n_samples if self.n_samples else None

    @property
    def no_option_share(self) -> float | None:
        return self.n_no_option / self.n_samples if self.n_samples else None

    @property
    def invalid_share(self) -> float | None:
        """The share of the answers that name no option (refusals and no valid option)."""
        return (self.n_refusal + self.n_no_option) / self.n_samples if self.n_samples else None


def aggregate(answers: Sequence[TextAnswer], n_options: int) -> SampledDistribution:
    """Count one item's classified answers (``answers``: one :class:`TextAnswer` per sample)."""
    counts = [0] * n_options
    outcomes = {REFUSAL: 0, NO_OPTION: 0}
    for answer in answers:
        if answer.outcome == OPTION:
            if answer.position is None or not 0 <= answer.position < n_options:
                raise ValueError(f"sampled answer names option {answer.position}, not one of 0..{n_options - 1}")
            counts[answer.position] += 1
        elif answer.outcome in outcomes:
            outcomes[answer.outcome] += 1
        else:
            raise ValueError(f"sampled answer outcome {answer.outcome!r} is not one of option, refusal, no option")
    return SampledDistribution(tuple(counts), outcomes[REFUSAL], outcomes[NO_OPTION])


def mean_shares(distributions: Sequence[SampledDistribution]) -> dict[str, float | None]:
    """The refusal, no-valid-option and invalid shares of all answers of all items (each item weighs N)."""
    total = sum(d.n_samples for d in distributions)
    refused = sum(d.n_refusal for d in distributions)
    no_option = sum(d.n_no_option for d in distributions)
    if not total:
        return {"refusal": None, "no_valid_option": None, "invalid": None}
    return {"refusal": refused / total, "no_valid_option": no_option / total, "invalid": (refused + no_option) / total}


def item_seed(seed: int, item_id: str) -> int:
    """The sampling seed of one item: the same answers whatever else is asked with it or in which order."""
    return derived_seed(seed, "wvs-sample", str(item_id))
