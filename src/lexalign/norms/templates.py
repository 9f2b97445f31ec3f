"""Templates: turn ingested norms into chat-format training and evaluation tables.

SFT examples (augmented by list subsampling), ranking tasks with gold orders for RL, DPO preference
pairs, and the evaluation prompts for test cues. Every table is deterministic for a seed, and no
test cue reaches a training table.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import string
from collections.abc import Mapping
from typing import Any

import polars as pl
import yaml

from lexalign.config.definitions import DEFINITIONS
from lexalign.config.validation import check_eval_bounds
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, write_json
from lexalign.core.resources import resource
from lexalign.core.settings import from_section
from lexalign.core.snake import Rule
from lexalign.norms.ingest import load_associations

log = logging.getLogger(__name__)

#: Tier 1 / training keys, then the tier-2 (WVS) keys; wvs_countries maps a wvs_country to its name in the language.
TEMPLATE_KEYS = (
    "system",
    "instruction",
    "persona",
    "ranking_instruction",
    "final_ranking_label",
    "separator",
    "wvs_interviewer",
    "wvs_observer",
    "wvs_persona",
    "wvs_options",
    "wvs_instruction",
    "wvs_instruction_label",
    "wvs_describe_interviewer",
    "wvs_describe_observer",
    "wvs_describe_persona",
    "wvs_describe_instruction",
    "wvs_associations",
    "wvs_association_colon",
    "wvs_countries",
    "wvs_norms",
    "wvs_norm",
    "wvs_norm_position",
)
#: The placeholders each template may use (a key not listed takes none it would fill).
PLACEHOLDERS = {
    "instruction": {"cue", "lo", "hi"},
    "ranking_instruction": {"cue", "k", "words"},
    **{key: {"country"} for key in ("wvs_interviewer", "wvs_observer", "wvs_persona")},
    # WVS describe mode (lexalign.wvs.text_answers): the framing lines, persona and instruction
    **{f"wvs_describe_{key}": {"country"} for key in ("interviewer", "observer", "persona", "instruction")},
    "wvs_norms": {"country"},  # the norms_prompt context (lexalign.wvs.norms)
    "wvs_norm": {"question", "answer", "country"},
    "wvs_norm_position": {"position", "n"},
}
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
#: The tables a template job writes (besides stats.json).
TABLES = ("sft", "ranking", "dpo", "eval")


@dataclasses.dataclass(frozen=True)
class TemplateSettings:
    """Config ``templates``, as one language's template job reads it (``prompts``: that language's entry only)."""

    definition: str  # corrected or study: how SFT copies are counted and which splits ranking draws from
    sft_target_examples: int
    subsample_fraction: float
    max_list_length: int | None
    bound_margin: float
    bound_jitter: float
    ranking_size: int
    ranking_per_cue: int
    eval_bounds: list[int]  # [lo, hi]: how many associates the evaluation prompt asks for
    prompts: Mapping[str, Mapping[str, Any]]  # prompt language -> template overrides (free-form)

    def __post_init__(self):
        if self.definition not in DEFINITIONS:
            raise LexalignError(
                f"config templates.definition: {self.definition!r} is not one of {', '.join(DEFINITIONS)}"
            )
        check_eval_bounds(self.eval_bounds)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TemplateSettings:
        return from_section(cls, section, "templates")


@dataclasses.dataclass(frozen=True)
class TemplateJob:
    """One ``template`` job: a language's ingested norms in, ``results/templates/{lang}/`` out."""

    associations_path: str
    outputs: Mapping[str, str]  # sft, ranking, dpo, eval and stats -> path
    prompt_language: str
    settings: TemplateSettings
    seed: int

    @classmethod
    def from_rule(cls, rule: Rule) -> TemplateJob:
        return cls(
            associations_path=rule.input["associations"],
            outputs={name: rule.output[name] for name in (*TABLES, "stats")},
            prompt_language=rule.params["prompt_language"],
            settings=TemplateSettings.from_config(rule.params["templates"]),
            seed=rule.params["seed"],
        )


def builtin_prompts() -> dict[str, dict[str, str]]:
    return yaml.safe_load(resource("prompts.yaml").read_text(encoding="utf-8"))


def prompt_templates(prompt_language: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str]:
    """The template strings for one prompt language: built-ins with config overrides on top."""
    templates = dict(builtin_prompts().get(prompt_language, {}))
    templates.update((overrides or {}).get(prompt_language, {}))
    missing = [key for key in TEMPLATE_KEYS if key not in templates]
    if missing:
        raise LexalignError(
            f"config templates.prompts.{prompt_language}: no built-in templates for this language; "
            f"define {', '.join(missing)}"
        )
    check_placeholders(templates, prompt_language, PLACEHOLDERS)
    return templates


def check_placeholders(templates: Mapping[str, str], prompt_language: str, keys) -> None:
    """Every template of ``keys`` uses only the placeholders :data:`PLACEHOLDERS` allows; one line naming the key."""
    for key in keys:
        allowed = PLACEHOLDERS[key]
        used = {name for _, name, _, _ in string.Formatter().parse(templates[key]) if name}
        if used - allowed:
            raise LexalignError(
                f"config templates.prompts.{prompt_language}.{key}: unknown placeholder(s) "
                f"{', '.join(sorted(used - allowed))}; allowed: {', '.join(sorted(allowed))}"
            )


def list_bounds(n: int, margin: float, jitter: float, rng: random.Random) -> tuple[int, int]:
    """Ask for n*(1-margin)..n*(1+margin) words, both ends shifted by the same jitter, at least 1."""
    shift = rng.uniform(-jitter, jitter) * n
    lo = max(1, round(n * (1 - margin) + shift))
    hi = max(lo, round(n * (1 + margin) + shift))
    return lo, hi


def _messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def cue_lists(associations: pl.DataFrame) -> pl.DataFrame:
    """One row per cue: split, responses (most frequent first) and their counts."""
    return (
        associations.sort(["cue", "count", "response"], descending=[False, True, False])
        .group_by("cue", maintain_order=True)
        .agg(pl.col("split").first(), pl.col("response").alias("responses"), pl.col("count").alias("counts"))
    )


def sft_copies(target: int, train_cues: int, all_cues: int, definition: str = "corrected") -> int:
    """Augmented copies per train cue for an SFT target of ``target`` examples, at least 1.

    corrected: round(target / train cues), so that the train split holds about ``target`` examples.
    study: target // all cues (the study's notebook divided by every cue, val and test included:
    81 EN, 99 ZH at 1,000,000), so its SFT set held about 70% of the target.
    """
    if definition == "study":
        return max(1, target // max(1, all_cues))
    if definition == "corrected":
        return max(1, round(target / max(1, train_cues)))
    raise LexalignError(f"config templates.definition: {definition!r} is not one of {', '.join(DEFINITIONS)}")


def ranking_splits(definition: str) -> list[str]:
    """Splits that ranking tasks are drawn from: study = train only (the study's generator forces the
    train split); corrected = train and val (val rows let a user score RL on held-out cues)."""
    return ["train"] if definition == "study" else ["train", "val"]


def sft_examples(
    lists: pl.DataFrame, templates: Mapping[str, str], settings: TemplateSettings, rng: random.Random
) -> list[dict]:
    """Augmented SFT rows for train cues (random ordered subsets), one full-list row per val cue."""
    train = lists.filter(pl.col("split") == "train")
    copies = sft_copies(settings.sft_target_examples, train.height, lists.height, settings.definition)
    cap = settings.max_list_length
    rows, seen = [], set()
    for cue, split, responses in (
        lists.filter(pl.col("split").is_in(["train", "val"])).select("cue", "split", "responses").iter_rows()
    ):
        responses = responses[:cap] if cap else responses
        for _ in range(copies if split == "train" else 1):
            if split == "train":
                keep = max(1, round(settings.subsample_fraction * len(responses)))
                chosen = sorted(rng.sample(range(len(responses)), keep))
                words = [responses[i] for i in chosen]
            else:
                words = responses
            target = templates["separator"].join(words)
            if (cue, target) in seen:
                continue
            seen.add((cue, target))
            lo, hi = list_bounds(len(words), settings.bound_margin, settings.bound_jitter, rng)
            prompt = _messages(templates["system"], templates["instruction"].format(cue=cue, lo=lo, hi=hi))
            rows.append({"cue": cue, "split": split, "prompt": prompt, "completion": _assistant(target)})
    return rows


def ranking_tasks(
    lists: pl.DataFrame, templates: Mapping[str, str], settings: TemplateSettings, rng: random.Random
) -> list[dict]:
    """Rank k sampled associates of a cue by human frequency; cues with fewer than k associates are skipped."""
    k = settings.ranking_size
    rows = []
    for cue, split, responses, counts in lists.filter(
        pl.col("split").is_in(ranking_splits(settings.definition))
    ).iter_rows():
        if len(responses) < k:
            continue
        for _ in range(settings.ranking_per_cue):
            picked = sorted(rng.sample(range(len(responses)), k))  # list order is human order
            shown = [responses[i] for i in picked]
            rng.shuffle(shown)
            user = templates["ranking_instruction"].format(cue=cue, k=k, words=templates["separator"].join(shown))
            rows.append(
                {
                    "cue": cue,
                    "split": split,
                    "prompt": _messages(templates["system"], user),
                    "words": shown,
                    "gold": [responses[i] for i in picked],
                    "gold_counts": [int(counts[i]) for i in picked],
                }
            )
    return rows


def preference_pairs(
    lists: pl.DataFrame, templates: Mapping[str, str], settings: TemplateSettings, rng: random.Random
) -> list[dict]:
    """DPO pairs: chosen = the human list in frequency order; rejected = a worse list of the same
    length (least frequent associates first, about half swapped for other cues' associates)."""
    cap = settings.max_list_length
    pool = lists.filter(pl.col("split").is_in(["train", "val"]))
    vocabulary = sorted({w for responses in pool["responses"].to_list() for w in responses})
    rows = []
    for cue, split, responses in pool.select("cue", "split", "responses").iter_rows():
        words = responses[:cap] if cap else responses
        if len(words) < 2:
            continue
        taken = set(responses) | {cue}
        rejected = list(reversed(words))
        for i in rng.sample(range(len(rejected)), len(rejected) // 2):
            for _ in range(20):  # a few tries; keep the own word when the vocabulary is tiny
                other = rng.choice(vocabulary)
                if other not in taken:
                    rejected[i] = other
                    taken.add(other)
                    break
        lo, hi = list_bounds(len(words), settings.bound_margin, settings.bound_jitter, rng)
        rows.append(
            {
                "cue": cue,
                "split": split,
                "prompt": _messages(templates["system"], templates["instruction"].format(cue=cue, lo=lo, hi=hi)),
                "chosen": _assistant(templates["separator"].join(words)),
                "rejected": _assistant(templates["separator"].join(rejected)),
            }
        )
    return rows


def eval_prompts(lists: pl.DataFrame, templates: Mapping[str, str], settings: TemplateSettings) -> list[dict]:
    lo, hi = settings.eval_bounds
    rows = []
    for cue, responses, counts in (
        lists.filter(pl.col("split") == "test").select("cue", "responses", "counts").iter_rows()
    ):
        user = templates["instruction"].format(cue=cue, lo=lo, hi=hi)
        rows.append(
            {
                "cue": cue,
                "prompt": _messages(templates["system"], user),
                "prompt_persona": _messages(templates["persona"], user),
                "human": responses,
                "human_counts": [int(c) for c in counts],
            }
        )
    return rows


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


SCHEMAS = {
    "sft": {"cue": pl.String, "split": pl.String, "prompt": pl.List(MESSAGE), "completion": pl.List(MESSAGE)},
    "ranking": {
        "cue": pl.String,
        "split": pl.String,
        "prompt": pl.List(MESSAGE),
        "words": pl.List(pl.String),
        "gold": pl.List(pl.String),
        "gold_counts": pl.List(pl.Int64),
    },
    "dpo": {
        "cue": pl.String,
        "split": pl.String,
        "prompt": pl.List(MESSAGE),
        "chosen": pl.List(MESSAGE),
        "rejected": pl.List(MESSAGE),
    },
    "eval": {
        "cue": pl.String,
        "prompt": pl.List(MESSAGE),
        "prompt_persona": pl.List(MESSAGE),
        "human": pl.List(pl.String),
        "human_counts": pl.List(pl.Int64),
    },
}


def build_templates(
    associations_path: str | os.PathLike,
    prompt_language: str,
    settings: TemplateSettings,
    seed: int,
    outputs: Mapping[str, str | os.PathLike],
) -> dict:
    """Write the sft/ranking/dpo/eval tables and stats.json named in ``outputs``."""
    templates = prompt_templates(prompt_language, settings.prompts)
    lists = cue_lists(load_associations(associations_path))
    tables = {
        "sft": sft_examples(lists, templates, settings, random.Random(f"{seed}-sft")),
        "ranking": ranking_tasks(lists, templates, settings, random.Random(f"{seed}-ranking")),
        "dpo": preference_pairs(lists, templates, settings, random.Random(f"{seed}-dpo")),
        "eval": eval_prompts(lists, templates, settings),
    }
    frames = {name: _frame(rows, SCHEMAS[name]) for name, rows in tables.items()}
    test_cues = set(frames["eval"]["cue"].to_list())
    for name in ("sft", "ranking", "dpo"):
        leaked = test_cues & set(frames[name]["cue"].to_list())
        if leaked:
            raise RuntimeError(f"template leakage: {len(leaked)} test cues in the {name} table")
    if frames["sft"].filter(pl.col("split") == "train").height == 0:
        raise LexalignError(f"{associations_path}: no train cues, so no SFT examples; check the split fractions")
    for name, frame in frames.items():
        with atomic_path(outputs[name]) as tmp:
            frame.write_parquet(tmp)
    stats = {
        "prompt_language": prompt_language,
        "definition": settings.definition,
        "copies_per_train_cue": sft_copies(
            settings.sft_target_examples,
            lists.filter(pl.col("split") == "train").height,
            lists.height,
            settings.definition,
        ),
        **{
            f"{name}_rows": {s: n for s, n in frame.group_by("split").len().iter_rows()}
            if "split" in frame.columns
            else frame.height
            for name, frame in frames.items()
        },
        "leakage_check": "passed: no test cue in sft, ranking or dpo tables",
    }
    write_json(outputs["stats"], stats)
    log.info("templates for %s: %s", prompt_language, stats)
    return stats


def run(job: TemplateJob) -> dict:
    """The template stage for one language; returns the stats written to ``job.outputs["stats"]``."""
    return build_templates(job.associations_path, job.prompt_language, job.settings, job.seed, job.outputs)
