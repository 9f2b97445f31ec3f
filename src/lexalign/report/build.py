"""Build the report: tables and figures from the readers' records, ``index.md`` linking them, all
written atomically (a failure leaves the previous report in place and no half-written one).

Layout under the report directory (``results/report/``), the folders of :mod:`lexalign.report.layout`
(workflow/rules/report.smk builds the rule's outputs from them)::

    index.md
    tables/tier1/    precision, gains, headline, profile, paired_tests, definitions (.csv, .md, .tex each)
    tables/tier2/    wvs_metrics, wvs_distance, tension, baselines, definitions (headline framing-mode),
                     framing_mode, logit_text_gap, logit_text_gap_items, answer_modes, mode_agreement,
                     mode_agreement_items (every framing x mode)
    tables/training/ training
    figures/precision_at_k/{lang}, figures/profile/{lang}, figures/tension/{model}.{lang},
    figures/training/{model}.{lang}                                            (.png + report.figure_formats)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from lexalign.config import methods
from lexalign.config.grid import RunGrid
from lexalign.core.io import atomic_folder, check_replaceable
from lexalign.core.settings import from_section
from lexalign.core.snake import Rule
from lexalign.report import format as f
from lexalign.report import tables as t
from lexalign.report import wvs_gap, wvs_modes
from lexalign.report import wvs_tables as w
from lexalign.report.definitions import study_tier1_table, study_tier2_table
from lexalign.report.headline import headline_table, paired_tests_table
from lexalign.report.layout import LAYOUT
from lexalign.report.readers import MEASURES, Results, collect
from lexalign.report.reference import Reference
from lexalign.report.training import training_table

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """The config's ``report`` section, validated against the schema (whose defaults are the only ones)."""

    reference_models: Mapping[str, str]
    reference_languages: Mapping[str, str]
    bootstrap_resamples: int
    confidence: float
    dpi: int
    figure_formats: list[str]
    cjk_fonts: list[str]
    tension_definition: str
    scope: str | None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ReportSettings:
        return from_section(cls, section, "report")


@dataclasses.dataclass(frozen=True)
class ReportJob:
    """One report: the run grid's result files (a file the grid names but the run lacks becomes a note), the
    settings, and where index.md goes (tables/ and figures/ beside it, :data:`lexalign.report.layout.LAYOUT`)."""

    index_out: str | os.PathLike
    grid: RunGrid
    settings: ReportSettings
    seed: int
    lexical: tuple[str, ...] = ()
    wvs: tuple[str, ...] = ()
    train: tuple[str, ...] = ()
    population: tuple[str, ...] = ()
    config: Mapping[str, Any] | None = None  # the whole config, shown in index.md (else the grid and settings)
    force: bool = False  # replace report files lexalign did not write (the rule: Snakemake owns results/report)

    @classmethod
    def from_rule(cls, rule: Rule) -> ReportJob:
        def files(name: str) -> tuple[str, ...]:  # a lone named input may come as a plain string
            value = rule.input.get(name) or []
            return (value,) if isinstance(value, str) else tuple(value)

        return cls(
            index_out=rule.output["index"],
            grid=RunGrid.from_config(rule.params["grid"]),
            settings=ReportSettings.from_config(rule.params["settings"]),
            seed=rule.params["seed"],
            lexical=files("lexical"),
            wvs=files("wvs"),
            train=files("train"),
            population=files("population"),
            force=True,
        )


def _missing_grid_notes(results: Results) -> None:
    """Notes for what the tables cannot show because the baseline method is absent."""
    if results.lexical and t.BASELINE not in results.methods:
        results.note(f"lexical: {t.BASELINE} is not in run.methods, so gains over {t.BASELINE} are left out")
        return
    for model in results.models:
        for lang in results.languages:
            have = {k[2] for k in results.lexical if k[:2] == (model, lang)}
            if have and t.BASELINE not in have:
                results.note(
                    f"lexical {model}/{lang}: the {t.BASELINE} result is missing, so gains over {t.BASELINE} are "
                    "left out"
                )


def build_tables(
    results: Results, precision: t.Precision, settings: ReportSettings, seed: int
) -> dict[str, list[f.Table]]:
    reference = Reference(settings.reference_models, settings.reference_languages)
    boot = (settings.bootstrap_resamples, settings.confidence, seed)
    paired = paired_tests_table(results, precision, *boot)
    tables = {
        "tier1": [
            *t.precision_tables(results, precision, reference),
            headline_table(results, precision, paired, settings.confidence),
            t.profile_table(results, *boot),
            paired,
            study_tier1_table(results, precision),
        ],
        "tier2": [
            *w.metrics_tables(results),
            w.tension_table(results, reference, settings.tension_definition),
            w.baselines_table(results, *boot),
            study_tier2_table(results),
        ],
        "tier2_variants": [*wvs_gap.tables(results, *boot), *wvs_modes.tables(results, *boot)],
        "training": [training_table(results)],
    }
    if not results.lexical:
        tables["tier1"][0].notes.append("no tier-1 results")
    headline = wvs_gap.headline_note(results)
    for table in tables["tier2"] if headline else []:
        table.notes.append(headline)
    tables["tier2"] += tables.pop("tier2_variants")
    for group, stage in (("tier1", "lexical"), ("tier2", "wvs"), ("training", "train")):
        left_out = [n for n in results.notes if n.startswith(stage + " ")]
        for table in tables[group]:
            table.notes.extend(left_out)
    return tables


def _by_method(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: mapping[k] for k in sorted(mapping, key=lambda m: (methods.order_key(m), m))}


def build_figures(
    results: Results, precision: t.Precision, out: Path, settings: ReportSettings
) -> dict[str, list[Path]]:
    from lexalign.report import figures

    figures.configure_fonts(settings.cjk_fonts, force=True)
    save = {"dpi": settings.dpi, "formats": list(settings.figure_formats)}
    made: dict[str, list[Path]] = {name: [] for name in ("fig_precision", "fig_profile", "fig_tension", "fig_training")}
    for name in made:
        (out / LAYOUT[name]).mkdir(parents=True, exist_ok=True)
    curves: dict[str, dict[str, dict[str, list]]] = {}
    for (model, lang, method), have in precision.values.items():
        series = [have.get(f"P@{k}") for k in precision.ks]
        if any(s is not None for s in series):
            curves.setdefault(lang, {}).setdefault(model, {})[method] = series
    levels = sorted(
        {s.confidence for have in precision.values.values() for s in have.values() if s.confidence is not None}
    )
    ci_label = f"{f.level(levels[0])} CI" if len(levels) == 1 else "CI"
    for lang in [x for x in results.languages if x in curves] + [x for x in curves if x not in results.languages]:
        models = {m: _by_method(curves[lang][m]) for m in [*results.models, *curves[lang]] if m in curves[lang]}
        stem = out / LAYOUT["fig_precision"] / lang
        made["fig_precision"].append(
            figures.precision_at_k(lang, precision.ks, models, stem, ci_label=ci_label, **save)
        )
    for lang, (human, groups) in _profile_inputs(results).items():
        made["fig_profile"].append(
            figures.profile(
                lang,
                human,
                groups,
                MEASURES,
                out / LAYOUT["fig_profile"] / lang,
                **save,
            )
        )
    panels: dict[tuple[str, str], dict[str, pl.DataFrame]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}  # (model, lang) -> the compared countries' names
    fell_back = False
    for (model, lang, method), result in results.wvs.items():
        chosen = result.tension_set(settings.tension_definition)
        if chosen is None and settings.tension_definition == "study":
            chosen, fell_back = result.tension, True
        if chosen is not None and chosen.items is not None and chosen.items.height:
            panels.setdefault((model, lang), {})[method] = chosen.items
            pairs[(model, lang)] = chosen.countries
    for (model, lang), by_method in panels.items():
        definition = "corrected" if fell_back else settings.tension_definition
        stem = out / LAYOUT["fig_tension"] / f"{model}.{lang}"
        made["fig_tension"].append(
            figures.tension(
                model, lang, _by_method(by_method), stem, pairs[(model, lang)], definition=definition, **save
            )
        )
    histories: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for (model, lang, method), result in results.train.items():
        if result.history:
            histories.setdefault((model, lang), {})[method] = result.history
    for (model, lang), by_method in histories.items():
        stem = out / LAYOUT["fig_training"] / f"{model}.{lang}"
        made["fig_training"].append(figures.training_curves(model, lang, _by_method(by_method), stem, **save))
    absent = {
        "fig_precision": (results.lexical, "no P@k values, so no P@k curves"),
        "fig_profile": (
            any(m.skipped is None for r in results.lexical.values() for m in r.profile.values()),
            "no per-cue concreteness/valence/arousal in per_cue.parquet, so no profile plots",
        ),
        "fig_tension": (
            results.wvs,
            "no per-item distances to the two countries (metrics.json high_tension.items), so no tension scatter",
        ),
        "fig_training": (
            results.train,
            "no trainer log history (log_history.jsonl), so no training curves",
        ),
    }
    for name, (had, why) in absent.items():
        if had and not made[name]:
            results.note(f"figures: {why}")
    return made


def _profile_inputs(results: Results) -> dict[str, tuple[dict, dict]]:
    """lang -> (human per-cue medians by measure, (model, method) -> model per-cue medians by measure)."""
    out: dict[str, tuple[dict, dict]] = {}
    for key in t.ordered(results, results.lexical):
        frame = results.lexical[key].per_cue
        present = [m for m in MEASURES if frame is not None and f"{m}_model" in frame.columns]
        if not present:
            continue
        human, groups = out.setdefault(key[1], ({}, {}))
        for measure in present:
            groups.setdefault(key[::2], {})[measure] = (
                frame[f"{measure}_model"].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
            )
            if f"{measure}_human" in frame.columns and measure not in human:
                human[measure] = frame[f"{measure}_human"].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    return out


def figure_text(results: Results, settings: ReportSettings) -> dict[str, tuple[str, str]]:
    first, second = results.country_pair() or ("the first country", "the second country")
    return {
        "fig_precision": (
            "P@k curves",
            "P@k for the run's k, one line per method, shaded band = the bootstrap CI over cues.",
        ),
        "fig_profile": (
            "Psycholinguistic profile",
            f"Per-cue medians of concreteness, valence and arousal of {t.words_per_cue_text(results)}: humans vs "
            "each model and method.",
        ),
        "fig_tension": (
            "Tension scatter",
            (
                f"High-tension WVS items ({settings.tension_definition} definition): distance to {first} humans (x) "
                f"vs distance to {second} humans (y); points below the diagonal are closer to {second}. Colour = bias "
                f"(distance to {second} − distance to {first})."
            ),
        ),
        "fig_training": (
            "Training curves",
            "Loss (train and eval) and reward per logged step, from each trainer's log history.",
        ),
    }


def write_index(
    path: Path,
    results: Results,
    tables: Mapping[str, list[f.Table]],
    made: Mapping[str, list[Path]],
    settings: ReportSettings,
    config: Mapping | None,
    extra: Iterable[str] = (),
) -> None:
    out = path.parent
    lines = [
        "# lexalign report",
        "",
        "Reproduction of the ALIGN study: language models fine-tuned on word-association norms, evaluated on",
        "lexical alignment with human associations (tier 1) and on World Values Survey answer distributions (tier 2).",
        "",
        f"- models: {', '.join(results.models)}",
        f"- languages: {', '.join(results.languages)}",
        f"- methods: {', '.join(results.methods)}",
        f"- results read: {len(results.lexical)} tier-1, {len(results.wvs)} tier-2, {len(results.train)} training",
        "",
    ]
    if settings.scope:
        lines += ["## What this run shows", "", settings.scope.strip(), ""]
    if results.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in results.notes), ""]
    for group, heading in (
        ("tier1", "Tier 1: lexical alignment"),
        ("tier2", "Tier 2: World Values Survey"),
        ("training", "Training"),
    ):
        lines += [f"## {heading}", ""]
        if group == "tier2":
            lines += wvs_modes.index_text(results)
        for table in tables[group]:
            rel = Path(LAYOUT[group]) / table.name
            lines += [
                table.markdown("###", brief=True),
                f"Files: [CSV]({rel}.csv) · [Markdown]({rel}.md) · [LaTeX]({rel}.tex)",
                "",
            ]
    lines += ["## Figures", ""]
    for name, (title, text) in figure_text(results, settings).items():
        lines += [f"### {title}", "", text, ""]
        if not made.get(name):
            lines += ["_No figure: the results it needs are absent (see Notes)._", ""]
        for png in made.get(name, []):
            others = " · ".join(
                f"[{p.suffix[1:].upper()}]({p.relative_to(out)})"
                for p in sorted(png.parent.glob(png.stem + ".*"))
                if p != png
            )
            lines += [f"![{title}: {png.stem}]({png.relative_to(out)})", others, ""]
    lines += list(extra)  # further sections (the model as participants)
    shown = (
        _plain(config)
        if config is not None
        else {
            "run": {"models": results.models, "languages": results.languages, "methods": results.methods},
            "report": dataclasses.asdict(settings),
        }
    )
    title = "Configuration of this run" if config is not None else "Run grid and report settings"
    lines += [
        f"## {title}",
        "",
        "```yaml",
        yaml.safe_dump(_plain(shown), sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _plain(value: Any) -> Any:
    """Snakemake config objects (and settings mappings) as plain dicts/lists for YAML."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: The report's own folders: replaced whole on every build (the files lexalign wrote in them, or with force).
REPLACED = tuple(sorted({Path(folder).parts[0] for folder in LAYOUT.values()}))
_OLD_SCRATCH = re.compile(r"\.report-build\.[a-z0-9_]{8}")  # earlier versions' build folder inside the report


def build_report(
    results: Results,
    index_path: str | os.PathLike,
    settings: ReportSettings,
    seed: int,
    config: Mapping | None = None,
    population: Iterable[str | os.PathLike] = (),
    force: bool = False,
) -> Path:
    """Write index.md, tables/ and figures/ next to ``index_path``; returns the index path.

    The report folder is built whole beside the old one and renamed into place when all of it worked
    (:func:`lexalign.core.io.atomic_folder`): the user's other files in it are kept; index.md and the
    files in tables/ and figures/ are replaced only where lexalign wrote them, or with ``force``.
    """
    index_path = Path(index_path)
    out = index_path.parent
    check_replaceable(index_path, force, what="report")
    for folder in REPLACED:  # refused before the work; atomic_folder checks again before the swap
        check_replaceable(out / folder, force, what="report")
    if out.is_dir():
        for entry in out.iterdir():
            if _OLD_SCRATCH.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
    _missing_grid_notes(results)
    with atomic_folder(out, force=force, replaced=REPLACED, what="report") as tmp:
        precision = t.Precision(
            results,
            settings.bootstrap_resamples,
            settings.confidence,
            seed,
        )
        tables = build_tables(results, precision, settings, seed)
        for group, group_tables in tables.items():
            for table in group_tables:
                table.write(tmp / LAYOUT[group])
        made = build_figures(results, precision, tmp, settings)
        from lexalign.report.population import section

        extra = section(population, tmp, out, settings.dpi, settings.figure_formats, results.notes)
        write_index(tmp / index_path.name, results, tables, made, settings, config, extra)
        for relative in LAYOUT.values():
            (tmp / relative).mkdir(parents=True, exist_ok=True)
    log.info("report: %s (%d notes)", index_path, len(results.notes))
    return index_path


def run(job: ReportJob) -> Path:
    """Read the job's result files and write index.md, tables/ and figures/ beside ``job.index_out``."""
    grid = job.grid
    results = collect(grid.models, grid.languages, grid.methods, job.lexical, job.wvs, job.train)
    return build_report(
        results,
        job.index_out,
        job.settings,
        job.seed,
        config=job.config,
        population=job.population,
        force=job.force,
    )
