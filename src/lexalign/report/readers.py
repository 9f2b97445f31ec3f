"""Readers: the only code that knows the stages' output layouts (docs/CONTRIBUTING_CONTRACTS.md).

One typed record per stage output, built from the stage's files by one reader each:

- :class:`LexicalResult` from ``results/lexical/{model}/{lang}/{method}/scores.json`` (+ ``per_cue.parquet``)
- :class:`WvsResult` from ``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/metrics.json`` (+
  ``answers.parquet``); every framing x mode in ``Results.wvs_variants``, the headline one (first framing,
  logits mode) in ``Results.wvs``
- :class:`TrainResult` from ``results/train/{model}/{lang}/{method}/metrics.json`` (+ ``log_history.jsonl``)

A file with a ``schema_version`` this report does not know is refused with one line; a file
without one is the first layout (version 1). A field of the wrong type is a LexalignError naming
the file and the field, which :func:`collect` turns into a note: the result is left out, the report
is still written. Optional blocks (the ``study`` definitions, the profile) may be absent.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from lexalign.config.grid import HEADLINE_MODE, parse_wvs_variant
from lexalign.core.errors import LexalignError
from lexalign.core.io import read_parquet_table
from lexalign.report.fields import Fields, read_results_json

log = logging.getLogger(__name__)

MEASURES = ("concreteness", "valence", "arousal")
GROUPS = ("overall", "2", "3", "4", ">=5", "high tension")

Key = tuple[str, str, str]  # (model, lang, method)
VariantKey = tuple[str, str, str, str, str]  # (model, lang, method, framing, mode): one wvs job


@dataclass(frozen=True)
class Summary:
    """A mean over cues or items with its CI, the CI's level and the count (stats.summarise's shape)."""

    mean: float | None
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    n: int | None = None

    @classmethod
    def parse(cls, obj: Fields) -> Summary:
        """``{mean, ci: [lo, hi] | null, confidence, n}`` (version 2) or ``{mean, ci95, n_cues}`` (version 1)."""
        ci, confidence = obj.data.get("ci"), obj.number("confidence")
        if "ci95" in obj.data and "ci" not in obj.data:
            ci, confidence = obj.data["ci95"], 0.95
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2):
            raise LexalignError(f"{obj.file}: {obj.where}.ci is {ci!r}, expected [low, high] or null")
        low, high = (
            (None, None)
            if ci is None
            else (Fields({"l": ci[0], "h": ci[1]}, obj.file, obj.where + ".ci").number(k) for k in "lh")
        )
        n = obj.integer("n") if obj.has("n") else obj.integer("n_cues")
        return cls(obj.number("mean"), low, high, confidence if low is not None else None, n)


@dataclass
class ProfileMeasure:
    """One psycholinguistic measure: model vs human means of per-cue medians, coverage, Wilcoxon test."""

    model: Summary | None = None
    human: Summary | None = None
    model_coverage: float | None = None
    human_coverage: float | None = None
    n_pairs: int | None = None
    p_value: float | None = None
    test: str | None = None
    skipped: str | None = None


@dataclass
class LexicalResult:
    """Tier 1 of one (model, lang, method). ``precision`` maps k -> P@k; ``study`` holds the study's
    definitions of the same numbers where the stage wrote them (``precision``, ``spearman``, ``notes``)."""

    n_cues: int | None = None
    precision: dict[int, Summary] = field(default_factory=dict)
    spearman: Summary | None = None
    words_per_cue: int | None = None
    profile: dict[str, ProfileMeasure] = field(default_factory=dict)
    study: LexicalStudy | None = None
    per_cue: pl.DataFrame | None = None  # canonical columns: cue, P@k..., Spearman, <measure>_model/_human


@dataclass
class LexicalStudy:
    precision: dict[int, Summary] = field(default_factory=dict)
    spearman: Summary | None = None
    notes: list[str] = field(default_factory=list)


def _precision(block: Fields | None) -> dict[int, Summary]:
    if block is None:
        return {}
    out = {}
    for k, value in block.items():
        if not str(k).isdigit():
            raise LexalignError(f"{block.file}: {block.where}.{k}: expected P@k keyed by an integer k")
        out[int(k)] = Summary.parse(Fields(value, block.file, f"{block.where}.{k}"))
    return dict(sorted(out.items()))


def _notes(obj: Fields, key: str = "notes") -> list[str]:
    value = obj.data.get(key) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise LexalignError(f"{obj.file}: {obj.where or 'top level'}.{key} is not a list of notes")
    return [str(v) for v in value]


def read_lexical(folder: Path) -> LexicalResult:
    """scores.json (required): ``n_cues``; ``precision_at_k: {"<k>": summary}``; ``spearman: summary``;
    ``psycholinguistic: {words_per_cue, measures: {<m>: {model, human, wilcoxon} | {skipped}}}``;
    ``study: {precision_at_k, spearman, notes}`` (optional). per_cue.parquet (optional): one row per cue
    with ``cue``, ``p_at_{k}``, ``spearman``, ``<measure>_model``, ``<measure>_human``."""
    path = folder / "scores.json"
    scores = read_results_json(path, "lexical")
    spearman = scores.object("spearman")
    result = LexicalResult(
        n_cues=scores.integer("n_cues"),
        precision=_precision(scores.object("precision_at_k")),
        spearman=Summary.parse(spearman) if spearman else None,
    )
    profile = scores.object("psycholinguistic")
    if profile is not None:
        result.words_per_cue = profile.integer("words_per_cue")
        measures = profile.object("measures")
        for measure in MEASURES:
            block = measures.object(measure) if measures else None
            if block is not None:
                result.profile[measure] = _profile_measure(block)
    study = scores.object("study")
    if study is not None:
        rho = study.object("spearman")
        result.study = LexicalStudy(
            _precision(study.object("precision_at_k")),
            Summary.parse(rho) if rho else None,
            _notes(study),
        )
    if (folder / "per_cue.parquet").is_file():
        frame = read_parquet_table(folder / "per_cue.parquet", ["cue"], "the lexical stage's per-cue table")
        renames = {c: f"P@{c[5:]}" for c in frame.columns if c.startswith("p_at_") and c[5:].isdigit()}
        result.per_cue = frame.rename(
            {
                **renames,
                **({"spearman": "Spearman"} if "spearman" in frame.columns else {}),
            }
        )
    return result


def _profile_measure(block: Fields) -> ProfileMeasure:
    if block.has("skipped"):
        return ProfileMeasure(skipped=str(block.data["skipped"]))
    out = ProfileMeasure()
    for side in ("model", "human"):
        part = block.object(side)
        if part is not None:
            setattr(out, side, Summary.parse(part))
            setattr(out, f"{side}_coverage", part.number("coverage"))
    test = block.object("wilcoxon")
    if test is not None:
        out.n_pairs, out.p_value, out.test = (
            test.integer("n_pairs"),
            test.number("p_value"),
            test.text("test")
            or (f"Wilcoxon signed-rank, {test.text('alternative')}" if test.has("alternative") else None),
        )
    return out


@dataclass
class TensionSet:
    """The high-tension items and which of the two countries' humans an answerer is closer to on them."""

    countries: tuple[str, str]  # the compared countries' names, in config order (the first is the x axis)
    n: int | None = None
    closer_first: int | None = None  # items closer to the first country's humans
    closer_second: int | None = None
    ties: int | None = None
    unanswered: int | None = None  # high-tension items the model gave no answer distribution for
    items: pl.DataFrame | None = None  # item, dist_first, dist_second

    @classmethod
    def parse(cls, block: Fields | None, countries: dict[str, str]) -> TensionSet | None:
        """``{n, closer_to: {key: n}, ties, unanswered, items: [{item_id, distance: {key: d}}]}``."""
        if block is None:
            return None
        (first, second), rows = list(countries), block.objects("items")
        items = None
        if rows:
            distances = [r.object("distance") or Fields({}, r.file, r.where + ".distance") for r in rows]
            items = pl.DataFrame(
                {
                    "item": [str(r.data.get("item_id")) for r in rows],
                    "dist_first": [d.number(first) for d in distances],
                    "dist_second": [d.number(second) for d in distances],
                },
                schema={"item": pl.String, "dist_first": pl.Float64, "dist_second": pl.Float64},
            ).drop_nulls()
        closer = block.object("closer_to")
        unanswered = block.data.get("unanswered")
        if isinstance(unanswered, list):
            unanswered = len(unanswered)
        elif unanswered is not None:
            unanswered = block.integer("unanswered")
        if unanswered is None and block.has("n_unanswered"):
            unanswered = block.integer("n_unanswered")
        return cls(
            tuple(countries.values()),
            block.integer("n"),
            closer.integer(first) if closer else None,
            closer.integer(second) if closer else None,
            block.integer("ties"),
            unanswered,
            items,
        )

    def counts(self) -> tuple[int | None, int | None, int | None, int | None]:
        """(closer to the first country, closer to the second, ties, items): as written, else from the items."""
        if (self.closer_first is None or self.closer_second is None) and self.items is not None:
            first = int((self.items["dist_first"] < self.items["dist_second"]).sum())
            second = int((self.items["dist_second"] < self.items["dist_first"]).sum())
            return first, second, self.items.height - first - second, self.items.height
        return self.closer_first, self.closer_second, self.ties, self.n


#: metrics[country][group] -> {metric: mean over items}; country: its name ("United States", "Germany").
Metrics = dict[str, dict[str, dict[str, float]]]


def _metrics(block: Fields | None, countries: dict[str, str]) -> tuple[Metrics, dict[str, int]]:
    """``{<key>: {overall, by_option_count: {2, 3, 4, >=5}, high_tension}}`` of ``{n, <metric>}`` per country."""
    metrics: Metrics = {}
    counts: dict[str, int] = {}
    if block is None:
        return metrics, counts
    for key, country in countries.items():
        per = block.object(key)
        if per is None:
            continue
        by = per.object("by_option_count")
        groups = {
            "overall": per.object("overall"),
            **({g: by.object(g) for g in GROUPS[1:5]} if by else {}),
            "high tension": per.object("high_tension"),
        }
        for group, values in groups.items():
            if values is None:
                continue
            numbers = {
                name: values.number(name)
                for name, v in values.items()
                if name != "n" and not isinstance(v, (dict, list, str))
            }
            metrics.setdefault(country, {})[group] = {k: v for k, v in numbers.items() if v is not None}
            if values.has("n"):
                counts[group] = values.integer("n")
    return metrics, counts


@dataclass
class WvsResult:
    """Tier 2 of one (model, lang, method): the model's metrics, the reference answerers' metrics, the
    high-tension set (corrected definition), and the study's definitions where the stage wrote them."""

    target: str | None = None  # the target country's name
    countries: dict[str, str] = field(default_factory=dict)  # the compared pair: key (usa) -> name, config order
    framing: str | None = None
    mode: str | None = None
    metrics: Metrics = field(default_factory=dict)
    n_items: dict[str, int] = field(default_factory=dict)
    references: dict[str, Metrics] = field(default_factory=dict)  # answerer (uniform, other_majority) -> metrics
    tension: TensionSet | None = None
    study_metrics: Metrics = field(default_factory=dict)
    study_tension: TensionSet | None = None
    answers: pl.DataFrame | None = None

    @property
    def target_key(self) -> str | None:
        """The target country's key in answers.parquet columns (``distance_<key>``)."""
        return next((k for k, v in self.countries.items() if v == self.target), None)

    def value(self, country: str, group: str, metric: str, study: bool = False) -> float | None:
        return (self.study_metrics if study else self.metrics).get(country, {}).get(group, {}).get(metric)

    def tension_set(self, definition: str) -> TensionSet | None:
        """The high-tension set under ``definition`` (corrected | study); None where the stage has none."""
        return self.study_tension if definition == "study" else self.tension


def _countries(data: Fields) -> dict[str, str]:
    """``countries: {key: name}`` (two, config order), required from schema_version 3 on."""
    block = data.object("countries", required=True)
    countries = {key: block.text(key) for key in block.data}
    if len(countries) != 2 or not all(countries.values()):
        raise LexalignError(f"{data.file}: countries is {block.data!r}, expected two {{key: name}} entries")
    return countries


def read_wvs(folder: Path) -> WvsResult:
    """metrics.json (required, schema_version 3): ``countries: {key: name}`` (the compared pair, e.g. usa, chn),
    ``target_country`` (name); ``results.<answerer>.<key>`` metric blocks (answerer ``model``, ``uniform``,
    ``target_majority``, ``other_country``); ``high_tension: {n, closer_to: {key: n}, ties, items: [{item_id,
    distance: {key: d}}]}``; ``study: {results: {model: ...}, high_tension: {..., unanswered}, notes}``
    (optional). answers.parquet (optional): one row per item."""
    path = folder / "metrics.json"
    data = read_results_json(path, "wvs")
    if data.integer("schema_version") is None or data.integer("schema_version") < 3:
        raise LexalignError(
            f"{path}: schema_version {data.data.get('schema_version', 1)} (US/China keys) is older than this report "
            "reads (3: countries keyed by code); rerun the wvs job"
        )
    countries = _countries(data)
    results = data.object("results", required=True)
    result = WvsResult(
        target=data.text("target_country"), countries=countries, framing=data.text("framing"), mode=data.text("mode")
    )
    result.metrics, result.n_items = _metrics(results.object("model"), countries)
    result.tension = TensionSet.parse(data.object("high_tension"), countries)
    study = data.object("study")
    if study is not None:
        block = study.object("results")
        result.study_metrics = _metrics(block.object("model") if block else None, countries)[0]
        result.study_tension = TensionSet.parse(study.object("high_tension"), countries)
    if (folder / "answers.parquet").is_file():
        result.answers = read_parquet_table(folder / "answers.parquet", ["item_id"], "the wvs stage's answers table")
        if result.tension is not None and result.tension.items is None:
            result.tension.items = _items_from_answers(result.answers, list(countries))
    return result


def _items_from_answers(answers: pl.DataFrame, keys: list[str]) -> pl.DataFrame | None:
    first, second = (f"distance_{key}" for key in keys)
    if not {"high_tension", first, second} <= set(answers.columns):
        return None
    return (
        answers.filter(pl.col("high_tension"))
        .select(
            pl.col("item_id").cast(pl.String).alias("item"),
            pl.col(first).alias("dist_first"),
            pl.col(second).alias("dist_second"),
        )
        .drop_nulls()
    )


@dataclass
class TrainResult:
    """One training run: the trainer summary (metrics.json) and the trainer's log records."""

    steps: int | None = None
    epochs: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    eval_loss: float | None = None
    reward_first: float | None = None
    reward_last: float | None = None
    runtime_s: float | None = None
    device: str | None = None
    history: list[dict] = field(default_factory=list)


def read_train(folder: Path) -> TrainResult:
    """metrics.json: ``global_step``, ``epochs``, ``train_loss: {first, last, ...}``, ``eval_loss``,
    ``reward: {first, last, ...} | null``, ``runtime_s`` (else ``wall_s``), ``device``; log_history.jsonl (optional)."""
    path = folder / "metrics.json"
    m = read_results_json(path, "train")
    loss, reward = m.object("train_loss"), m.object("reward")
    result = TrainResult(
        steps=m.integer("global_step"),
        epochs=m.number("epochs"),
        loss_first=loss.number("first") if loss else None,
        loss_last=loss.number("last") if loss else None,
        eval_loss=m.number("eval_loss"),
        reward_first=reward.number("first") if reward else None,
        reward_last=reward.number("last") if reward else None,
        runtime_s=m.number("runtime_s") if m.has("runtime_s") else m.number("wall_s"),
        device=m.text("device"),
    )
    history = folder / "log_history.jsonl"
    if history.is_file():
        for number, line in enumerate(history.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    result.history.append(json.loads(line))
                except ValueError:
                    log.warning("%s:%d: not JSON, skipped", history, number)
    return result


@dataclass
class Results:
    """Everything the report reads, keyed by (model, lang, method); ``notes`` say what was left out.
    ``wvs`` holds each key's headline framing x mode, ``wvs_variants`` every one that was read."""

    models: list[str]
    languages: list[str]
    methods: list[str]
    lexical: dict[Key, LexicalResult] = field(default_factory=dict)
    wvs: dict[Key, WvsResult] = field(default_factory=dict)
    train: dict[Key, TrainResult] = field(default_factory=dict)
    wvs_variants: dict[VariantKey, WvsResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def country_pair(self) -> tuple[str, str] | None:
        """The compared countries' names (config order) of the first tier-2 result read; None without one."""
        return next((tuple(r.countries.values()) for r in self.wvs_variants.values() if r.countries), None)

    def note(self, text: str) -> None:
        if text not in self.notes:
            log.warning("report: %s", text)
            self.notes.append(text)


def _key_of(path: str | os.PathLike) -> Key:
    """(model, lang, method) from ``.../{model}/{lang}/{method}/<file>``."""
    parts = Path(path).parts
    if len(parts) < 4:
        raise LexalignError(f"{path}: expected a path ending in <model>/<lang>/<method>/<file>")
    return parts[-4], parts[-3], parts[-2]


def _wvs_key_of(path: str | os.PathLike) -> tuple[Key, tuple[str, str] | None]:
    """(model, lang, method) and (framing, mode) of ``.../{model}/{lang}/{method}/{framing}-{mode}/<file>`` (no
    variant for a file directly in the method's folder, the older layout: the file says its framing and mode)."""
    parts = Path(path).parts
    variant = parse_wvs_variant(parts[-2]) if len(parts) >= 5 else None
    return (_key_of(path), None) if variant is None else ((parts[-5], parts[-4], parts[-3]), variant)


def _collect_wvs(results: Results, files: Iterable[str | os.PathLike]) -> None:
    """Every framing x mode into ``wvs_variants``; per (model, lang, method) the headline one (the first
    listed in logits mode, else the first listed) into ``wvs``, when it was read."""
    listed = [(file, *_wvs_key_of(file)) for file in files]
    headline = {key: file for file, key, _ in reversed(listed)}  # reversed: the first listed wins
    headline |= {key: file for file, key, v in reversed(listed) if v and v[1] == HEADLINE_MODE}
    for file, key, variant in listed:
        label = "/".join(key) + (f"/{variant[0]}-{variant[1]}" if variant else "")
        if not Path(file).is_file():
            results.note(f"wvs {label}: {file} is missing; left out")
            continue
        try:
            result = read_wvs(Path(file).parent)
        except LexalignError as exc:
            results.note(f"wvs {label}: {exc}; left out")
            continue
        if variant:
            result.framing, result.mode = variant
        results.wvs_variants[(*key, result.framing or "unknown", result.mode or "unknown")] = result
        if headline[key] == file:
            results.wvs[key] = result


READERS = {"lexical": read_lexical, "wvs": read_wvs, "train": read_train}


def collect(
    models: Sequence[str],
    languages: Sequence[str],
    methods: Sequence[str],
    lexical: Iterable[str | os.PathLike] = (),
    wvs: Iterable[str | os.PathLike] = (),
    train: Iterable[str | os.PathLike] = (),
) -> Results:
    """Read every given result file (and its siblings); missing or unreadable ones become notes."""
    results = Results(list(models), list(languages), list(methods))
    for stage, files in (("lexical", lexical), ("wvs", wvs), ("train", train)):
        if stage == "wvs":
            _collect_wvs(results, files)
            continue
        store = getattr(results, stage)
        for file in files:
            key = _key_of(file)
            if not Path(file).is_file():
                results.note(f"{stage} {'/'.join(key)}: {file} is missing; left out")
                continue
            try:
                store[key] = READERS[stage](Path(file).parent)
            except LexalignError as exc:
                results.note(f"{stage} {'/'.join(key)}: {exc}; left out")
    return results
