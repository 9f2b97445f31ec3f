"""Tier 1, lexical alignment: score association lists against the human norms, and the ``lexical``
rule (generate for the test cues, parse, score, profile).

Public, stable API (documented in the README's tier-1 section):

- :func:`parse_associations` (defined in :mod:`lexalign.lexical.parse`) turns what a chat model wrote into a
  clean list of words;
- :func:`precision_at_k` is P@k for one cue; :func:`rank_agreement` the Spearman rank agreement for
  one cue; :func:`mean_precision_at_k` and :func:`rank_agreement_over_cues` average them over cues
  under a named definition (``"corrected"``, lexalign's, or ``"study"``, the study's code);
- :func:`score_table` scores many cues at once (the rule and ``lexalign score-associations`` use it);
- :func:`run` is the ``lexical`` rule (one :class:`lexalign.lexical.settings.LexicalJob`).

Definitions (``definition=``):

- ``corrected`` (default): every cue with norms is scored (an unparsable list scores 0); rank agreement
  is a Spearman rho per cue (cues with >= 2 overlapping words), averaged over cues.
- ``study``: the study's evaluation code. Rows whose parsed list has fewer than 3 words are dropped
  before averaging; rank agreement is ONE Spearman rho pooled over all kept cues' (gold rank,
  generated rank) pairs, gold ranks counted over every human response of the cue (count descending,
  ties by word), generated ranks 1-based positions in the deduplicated list.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence

import polars as pl

from lexalign.config import methods
from lexalign.config.definitions import DEFINITIONS
from lexalign.core import stats
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, read_parquet_table, write_json
from lexalign.lexical.parse import parse_associations
from lexalign.lexical.settings import LexicalJob
from lexalign.models.generation import Generation, generate, prompt_token_ids

__all__ = [
    "DEFINITIONS",
    "GENERATIONS_SCHEMA",
    "Generation",
    "MIN_OVERLAP",
    "SCHEMA_VERSION",
    "STUDY_MIN_WORDS",
    "format_scores",
    "generate",
    "mean_precision_at_k",
    "parse_associations",
    "precision_at_k",
    "prompt_token_ids",
    "rank_agreement",
    "rank_agreement_over_cues",
    "run",
    "score_table",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MIN_OVERLAP = 2  # Spearman needs at least two overlapping words
STUDY_MIN_WORDS = 3  # the study drops rows whose parsed list has fewer words than this
STUDY_NOTES = (
    f"P@k: rows whose parsed list has fewer than {STUDY_MIN_WORDS} words are dropped before averaging "
    "(corrected: every cue with norms is scored, an unparsable list scores 0)",
    "Spearman: one rho pooled over every kept cue's (gold rank, generated rank) pairs "
    "(corrected: one rho per cue with >= 2 overlapping words, averaged over cues)",
)


def _check_definition(definition: str) -> None:
    if definition not in DEFINITIONS:
        raise LexalignError(f"definition {definition!r} is not one of {', '.join(DEFINITIONS)}")


# --------------------------------------------------------------------------------------------------
# Scalar definitions (the vectorised score_table must agree with these; the tests check it)
# --------------------------------------------------------------------------------------------------


def precision_at_k(predicted: Sequence[str], human: set[str] | Collection[str], k: int) -> float:
    """P@k = |first k predicted words ∩ all human responses| / k.

    A list shorter than k counts its missing slots as misses. Words are compared exactly, so both
    sides should already be normalised (:func:`parse_associations` output vs ingested responses).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    human_set = human if isinstance(human, (set, frozenset)) else set(human)
    return len(set(predicted[:k]) & human_set) / k


def mean_precision_at_k(
    predicted: Mapping[str, Sequence[str]], human: Mapping[str, Collection[str]], k: int, definition: str = "corrected"
) -> float | None:
    """P@k averaged over the cues of ``predicted`` that have norms in ``human``.

    ``study`` averages only the cues whose list has at least :data:`STUDY_MIN_WORDS` words."""
    _check_definition(definition)
    values = [
        precision_at_k(words, human[cue], k)
        for cue, words in predicted.items()
        if cue in human and (definition == "corrected" or len(words) >= STUDY_MIN_WORDS)
    ]
    return sum(values) / len(values) if values else None


def rank_agreement(predicted: Sequence[str], human_counts: Mapping[str, float]) -> float | None:
    """Spearman rho between the human frequency rank and the generated position of the words that
    occur on both lists; positive when the model lists frequent associations first.

    None when fewer than two words overlap or when the overlapping words tie in human frequency.
    """
    from scipy.stats import spearmanr

    overlap = [(i, human_counts[word]) for i, word in enumerate(dict.fromkeys(predicted)) if word in human_counts]
    if len(overlap) < MIN_OVERLAP:
        return None
    positions, counts = zip(*overlap)
    if len(set(counts)) < 2:
        return None
    rho = spearmanr(positions, [-c for c in counts]).statistic
    return None if math.isnan(rho) else float(rho)


def study_rank_pairs(predicted: Sequence[str], human_counts: Mapping[str, float]) -> list[tuple[int, int]]:
    """The study's (gold rank, generated rank) pairs of one cue; [] with fewer than two overlaps.

    Gold ranks are 1-based over every human response (count descending, ties by word); generated
    ranks are 1-based positions in the deduplicated list."""
    gold = {word: rank for rank, (word, _) in enumerate(sorted(human_counts.items(), key=lambda x: (-x[1], x[0])), 1)}
    pairs = [
        (gold[word], rank) for rank, word in enumerate(dict.fromkeys(w for w in predicted if w), 1) if word in gold
    ]
    return pairs if len(pairs) >= MIN_OVERLAP else []


def rank_agreement_over_cues(
    predicted: Mapping[str, Sequence[str]],
    human_counts: Mapping[str, Mapping[str, float]],
    definition: str = "corrected",
) -> float | None:
    """Rank agreement over cues: ``corrected`` = per-cue rho averaged; ``study`` = one pooled rho
    over the cues with at least :data:`STUDY_MIN_WORDS` words."""
    from scipy.stats import spearmanr

    _check_definition(definition)
    cues = [cue for cue in predicted if cue in human_counts]
    if definition == "corrected":
        values = [rho for cue in cues if (rho := rank_agreement(predicted[cue], human_counts[cue])) is not None]
        return sum(values) / len(values) if values else None
    pairs = [
        p
        for cue in cues
        if len(predicted[cue]) >= STUDY_MIN_WORDS
        for p in study_rank_pairs(predicted[cue], human_counts[cue])
    ]
    if len(pairs) < 2:
        return None
    rho = spearmanr([g for g, _ in pairs], [r for _, r in pairs]).statistic
    return None if math.isnan(rho) else float(rho)


# --------------------------------------------------------------------------------------------------
# Vectorised scoring
# --------------------------------------------------------------------------------------------------


def pk_column(k: int) -> str:
    return f"p_at_{k}"


def score_table(
    generations: pl.DataFrame,
    human: pl.DataFrame,
    ks: Sequence[int],
    bootstrap_samples: int,
    seed: int,
    confidence: float = stats.CONFIDENCE,
) -> tuple[pl.DataFrame, dict]:
    """Score parsed lists against the norms, under both definitions.

    ``generations`` has one row per cue with ``cue`` and ``parsed`` (list of normalised words);
    ``human`` has ``cue, response, count`` rows (other cues are ignored). Returns the per-cue table
    (P@k columns, overlap, Spearman, list length, ``unparsable``) and the summary: the corrected
    numbers (means with bootstrap CIs over cues, counts of unparsable lists and of cues without norms)
    and a ``study`` block with the study's definitions.
    """
    from scipy.stats import spearmanr

    ks = sorted(set(int(k) for k in ks))
    gens = generations.select(
        pl.col("cue").cast(pl.String),
        pl.col("parsed").cast(pl.List(pl.String)).list.drop_nulls().list.unique(maintain_order=True),
    )
    human = human.select(pl.col("cue"), pl.col("response").alias("word"), pl.col("count").cast(pl.Int64))
    human = human.join(gens.select("cue"), on="cue", how="semi").sort(
        ["cue", "count", "word"], descending=[False, True, False]
    )
    human = human.with_columns(pl.int_range(1, pl.len() + 1).over("cue").alias("gold_rank"))
    normed = gens.join(human.select("cue").unique(), on="cue", how="semi")
    without_norms = gens.join(normed.select("cue"), on="cue", how="anti")["cue"].to_list()
    hit = pl.col("count").is_not_null()
    long = (
        normed.select("cue", pl.col("parsed").alias("word"))
        .explode("word")
        .drop_nulls("word")
        .with_columns(pl.int_range(pl.len()).over("cue").alias("position"))
        .join(human, on=["cue", "word"], how="left")
    )
    per_word = long.group_by("cue").agg(
        *[(hit & (pl.col("position") < k)).sum().truediv(k).alias(pk_column(k)) for k in ks],
        hit.sum().cast(pl.UInt32).alias("n_overlap"),
        pl.corr(-pl.col("count").filter(hit), pl.col("position").filter(hit), method="spearman").alias("spearman"),
    )
    per_cue = (
        normed.with_columns(pl.col("parsed").list.len().cast(pl.UInt32).alias("n_words"))
        .join(human.group_by("cue").agg(pl.len().cast(pl.UInt32).alias("n_human_types")), on="cue", how="left")
        .join(per_word, on="cue", how="left")
        .with_columns(
            *[pl.col(pk_column(k)).fill_null(0.0) for k in ks],
            pl.col("n_overlap").fill_null(0),
            pl.when((pl.col("n_overlap") >= MIN_OVERLAP) & pl.col("spearman").is_not_nan())
            .then(pl.col("spearman"))
            .otherwise(None)
            .alias("spearman"),
            (pl.col("n_words") == 0).alias("unparsable"),
        )
        .select("cue", "n_words", "n_human_types", *[pk_column(k) for k in ks], "n_overlap", "spearman", "unparsable")
        .sort("cue")
    )
    unparsable = per_cue.filter(pl.col("unparsable"))["cue"].to_list()
    tied = per_cue.filter((pl.col("n_overlap") >= MIN_OVERLAP) & pl.col("spearman").is_null()).height

    def summary_of(values: Iterable[float | None]) -> dict:
        return stats.summarise(values, bootstrap_samples, seed, confidence)

    # The study's block: short lists dropped; one Spearman pooled over the kept cues' rank pairs.
    kept = per_cue.filter(pl.col("n_words") >= STUDY_MIN_WORDS)
    pooled_cues = kept.filter(pl.col("n_overlap") >= MIN_OVERLAP)["cue"]
    pairs = long.filter(hit & pl.col("cue").is_in(pooled_cues.to_list()))
    rho = p_value = None
    if pairs.height >= 2:
        test = spearmanr(pairs["gold_rank"].to_numpy(), (pairs["position"] + 1).to_numpy())
        rho, p_value = stats.round_or_none(float(test.statistic)), stats.round_or_none(float(test.pvalue))
    study = {
        "definition": "study",
        "n_cues": kept.height,
        "n_cues_dropped": per_cue.height - kept.height,
        "precision_at_k": {str(k): summary_of(kept[pk_column(k)].to_list()) for k in ks},
        "spearman": {
            "mean": rho,
            "ci": None,
            "confidence": confidence,
            "n": pooled_cues.len(),
            "form": "pooled",
            "n_pairs": pairs.height,
            "p_value": p_value,
        },
        "notes": list(STUDY_NOTES),
    }
    summary = {
        "n_cues": per_cue.height,
        "n_unparsable": len(unparsable),
        "unparsable_cues": unparsable[:50],
        "n_cues_without_norms": len(without_norms),
        "cues_without_norms": without_norms[:50],
        "mean_words_per_cue": stats.round_or_none(per_cue["n_words"].mean()) if per_cue.height else None,
        "definition": "corrected",
        "precision_at_k": {str(k): summary_of(per_cue[pk_column(k)].to_list()) for k in ks},
        "spearman": {
            **summary_of(per_cue["spearman"].to_list()),
            "form": "per_cue",
            "min_overlap": MIN_OVERLAP,
            "n_cues_tied": tied,
        },
        "bootstrap": {"resamples": bootstrap_samples, "seed": seed, "confidence": confidence, "over": "cues"},
        "study": study,
    }
    return per_cue, summary


# --------------------------------------------------------------------------------------------------
# The lexical rule
# --------------------------------------------------------------------------------------------------

MESSAGES = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
GENERATIONS_SCHEMA = {
    "cue": pl.String,
    "prompt": MESSAGES,
    "raw": pl.String,
    "parsed": pl.List(pl.String),
    "n_tokens": pl.UInt32,
    "finished": pl.Boolean,
    "list_complete": pl.Boolean,
}


def load_eval_table(path: str | os.PathLike, prompt_column: str) -> pl.DataFrame:
    """The templates stage's eval.parquet: one row per test cue with its chat prompts."""
    table = read_parquet_table(path, ("cue", prompt_column), "the templates stage's eval table")
    duplicated = table.filter(pl.col("cue").is_duplicated())["cue"].unique().to_list()
    if duplicated:
        raise LexalignError(f"{path}: cue {duplicated[0]!r} appears more than once")
    if table.height == 0:
        raise LexalignError(f"{path}: no test cues")
    return table.select("cue", pl.col(prompt_column).alias("prompt"))


def select_cues(table: pl.DataFrame, max_cues: int | None, seed: int) -> pl.DataFrame:
    """All cues, or a seeded random sample of ``max_cues`` of them; sorted by cue either way."""
    if max_cues is not None and table.height > max_cues:
        table = table.sort("cue").sample(n=max_cues, seed=seed)
    return table.sort("cue")


def run(job: LexicalJob) -> dict:
    """The ``lexical`` rule: generate for the test cues, parse, score, profile; write ``job.outputs``
    (``scores``: JSON, ``generations`` and ``per_cue``: Parquet). Returns the scores."""
    from lexalign.lexical.profile import profile
    from lexalign.models.loading import dtype_name, read_manifest
    from lexalign.norms.ingest import load_associations

    settings, method, prompt_language, adapter_dir = job.settings, job.method, job.prompt_language, job.adapter_dir
    methods.check_job("lexical", methods.LEXICAL, method, adapter_dir)
    if job.threads:
        import torch

        torch.set_num_threads(int(job.threads))
    context = methods.get(method).context
    column = "prompt_persona" if context == "persona" else "prompt"
    table = select_cues(load_eval_table(job.eval_path, column), settings.max_test_cues, job.seed)
    associations = load_associations(job.associations_path)
    human = associations.join(table.select("cue"), on="cue", how="semi")
    log.info(
        "lexical %s: %d test cues, %s backend, prompts from %r", method, table.height, settings.decoding.backend, column
    )
    shown = None  # what scores.json records of the norms_prompt demonstrations
    if context == "norms":
        from lexalign.lexical.demonstrations import norms_prompts

        prompts, shown = norms_prompts(table["prompt"].to_list(), table["cue"].to_list(), associations, job)
        table = table.with_columns(pl.Series("prompt", prompts, dtype=MESSAGES))

    cues, prompts = table["cue"].to_list(), table["prompt"].to_list()
    max_words = settings.max_words

    def words(i: int, text: str, finished: bool) -> list[str]:
        found = parse_associations(
            text, prompt_language, cue=cues[i], truncated=not finished, echo=message_texts(prompts[i])
        )
        return found[:max_words] if max_words else found

    def complete(i: int, text: str) -> bool:  # the list is long enough: a small model need not find its own end
        return len(words(i, text, False)) >= max_words

    extra = {"complete": complete} if max_words else {}
    answers = generate(
        job.model_dir,
        prompts,
        settings.decoding,
        adapter_dir=adapter_dir,
        dtype=job.dtype,
        seed=job.seed,
        gpus=job.gpus,
        attn_implementation=job.attn_implementation,
        **extra,
    )
    parsed = [words(i, answer.raw, answer.finished) for i, answer in enumerate(answers)]
    generations = pl.DataFrame(
        {
            "cue": table["cue"],
            "prompt": table["prompt"],
            "raw": [a.raw for a in answers],
            "parsed": parsed,
            "n_tokens": [a.n_tokens for a in answers],
            "finished": [a.finished for a in answers],
            "list_complete": [a.complete for a in answers],
        },
        schema=GENERATIONS_SCHEMA,
    )
    per_cue, summary = score_table(generations, human, settings.k, settings.bootstrap_samples, job.seed)
    if summary["n_unparsable"]:
        log.warning(
            "%d of %d generations gave no parsable word; they score zero", summary["n_unparsable"], summary["n_cues"]
        )
    psycho, psycho_per_cue = profile(
        generations.select("cue", "parsed"),
        human,
        prompt_language,
        settings.psycholinguistic,
        n_words=settings.profile_words,
        bootstrap_samples=settings.bootstrap_samples,
        seed=job.seed,
    )
    per_cue = per_cue.join(psycho_per_cue, on="cue", how="left")
    decoding = settings.decoding.record() | {"max_words": max_words, "max_test_cues": settings.max_test_cues}
    scores = {
        "schema_version": SCHEMA_VERSION,
        **dict(job.labels),
        "method": method,
        "prompt_language": prompt_language,
        "prompt_column": column,
        "adapter": str(adapter_dir) if adapter_dir else None,
        **({"norms_context": shown} if shown else {}),
        "generation": decoding
        | {
            "seed": job.seed,
            "dtype": dtype_name(job.dtype) if decoding["backend"] == "hf" else job.dtype,
            "stop_token_ids": list(read_manifest(job.model_dir).get("stop_token_ids", [])),
            "n_hit_token_cap": int((~generations["finished"] & ~generations["list_complete"]).sum()),
            "n_list_complete": int(generations["list_complete"].sum()),
        },
        **summary,
        "psycholinguistic": psycho,
        "notes": notes_for(summary, psycho, generations),
    }
    with atomic_path(job.outputs["generations"]) as tmp:
        generations.write_parquet(tmp)
    with atomic_path(job.outputs["per_cue"]) as tmp:
        per_cue.write_parquet(tmp)
    write_json(job.outputs["scores"], scores)
    log.info("lexical %s: %s", method, format_scores(scores).replace("\n", " | "))
    return scores


def message_texts(messages: Iterable[Mapping[str, str]] | None) -> list[str]:
    """The texts of a chat prompt's messages (what an answer may echo)."""
    return [m["content"] for m in messages or [] if m and m.get("content")]


def notes_for(summary: Mapping, psycho: Mapping, generations: pl.DataFrame) -> list[str]:
    """The one-line notes of a scores file."""
    notes = []
    if summary["n_unparsable"]:
        notes.append(
            f"{summary['n_unparsable']} of {summary['n_cues']} generations gave no parsable word and score zero"
        )
    if summary["n_cues_without_norms"]:
        notes.append(f"{summary['n_cues_without_norms']} cues have no human responses in the norms and are not scored")
    capped = int((~generations["finished"]).sum()) if "finished" in generations.columns else 0
    if "list_complete" in generations.columns:
        complete = int(generations["list_complete"].sum())
        capped -= complete
        if complete:
            notes.append(f"{complete} generations were stopped once their list had lexical.max_words words")
    if capped:
        notes.append(f"{capped} generations hit max_new_tokens; their unfinished last item was dropped")
    notes.extend(psycho.get("notes", []))
    return notes


def format_scores(scores: Mapping, definition: str = "corrected") -> str:
    """A small plain-text table of the averaged numbers under one definition."""
    _check_definition(definition)
    block = scores if definition == "corrected" else scores["study"]
    level = f"{round(100 * scores['bootstrap']['confidence'])}% CI"
    rows = [("metric", "mean", level, "cues")]
    for k, value in block["precision_at_k"].items():
        rows.append((f"P@{k}", _fmt(value["mean"]), _fmt_ci(value["ci"]), str(value["n"])))
    rho = block["spearman"]
    rows.append((f"Spearman ({rho['form']})", _fmt(rho["mean"]), _fmt_ci(rho["ci"]), str(rho["n"])))
    for measure, result in scores.get("psycholinguistic", {}).get("measures", {}).items():
        if "skipped" in result:
            rows.append((measure, "skipped", "", ""))
            continue
        for side in ("model", "human"):
            rows.append(
                (f"{measure} ({side})", _fmt(result[side]["mean"]), _fmt_ci(result[side]["ci"]), str(result[side]["n"]))
            )
        test = result["wilcoxon"] if definition == "corrected" else result["study"]["wilcoxon"]
        if test.get("p_value") is not None:
            rows.append((f"{measure} Wilcoxon p", _fmt(test["p_value"]), "", str(test["n_pairs"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    head = (
        f"{definition} definitions: {scores['n_cues']} cues scored, {scores['n_unparsable']} unparsable, "
        f"{scores['n_cues_without_norms']} without norms"
    )
    if definition == "study":
        head += f"; {block['n_cues']} kept, {block['n_cues_dropped']} dropped (fewer than {STUDY_MIN_WORDS} words)"
    return "\n".join([head, *lines])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
