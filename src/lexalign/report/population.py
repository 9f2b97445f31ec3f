"""The report's "model as participants" section: the model's norms (N simulated SWOW participants per
cue and temperature) against the human norms, from ``results/population/{model}/{lang}/{method}/compare.json``.

Tables (``tables/population/``): ``population`` (per-cue measures, means with bootstrap CIs over cues),
``population_structure`` (R1 vs R2/R3 and the cue-response graph). Figure (``figures/population/``):
the temperature sweep per model and language, variety ratio and P@k-style typicality against temperature,
one line per method. The model norms files (SWOW participant CSVs) are listed for download.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import polars as pl

from lexalign.config import methods
from lexalign.core.errors import LexalignError
from lexalign.core.io import read_json
from lexalign.report import format as f

log = logging.getLogger(__name__)

#: The highest compare.json schema_version this reader understands.
SCHEMA_VERSION = 1
TABLES = "tables/population"
FIGURES = "figures/population"
#: Shown in the per-cue table, in this order: (block, measure, column heading).
CUE_COLUMNS = (
    ("per_cue", "typicality", "typicality (P@k-style)"),
    ("per_cue", "top_k_overlap", "top-k overlap"),
    ("per_cue", "spearman", "Spearman of strengths"),
    ("per_cue", "variety_ratio", "variety ratio (rarefied types)"),
    ("per_cue", "types_ratio", "types ratio"),
    ("per_cue", "entropy_ratio", "entropy ratio"),
    ("per_cue", "model_single_share", "single-mention share, model"),
    ("per_cue", "human_single_share", "single-mention share, humans"),
)
STRUCTURE_COLUMNS = (
    ("position", "model_r1_human_hit", "R1 humans gave"),
    ("position", "model_r23_human_hit", "R2/R3 humans gave"),
    ("position", "model_r1_top_share", "R1 = top response, model"),
    ("position", "model_r23_top_share", "R2/R3 = top response, model"),
    ("position", "human_r1_top_share", "R1 = top response, humans"),
    ("position", "human_r23_top_share", "R2/R3 = top response, humans"),
    ("graph", "model_clustering", "clustering, model"),
    ("graph", "human_clustering", "clustering, humans"),
    ("graph", "model_in_strength_alpha", "in-strength exponent, model"),
    ("graph", "human_in_strength_alpha", "in-strength exponent, humans"),
    ("graph", "in_strength_ks", "in-strength KS distance"),
    ("graph", "in_strength_rho", "in-strength rank corr."),
    ("graph", "pagerank_rho", "PageRank rank corr."),
)


def _key(path: Path) -> tuple[str, str, str]:
    model, lang, method = path.parts[-4:-1]
    return model, lang, method


def read_results(files: Iterable[str | os.PathLike], notes: list[str]) -> dict[tuple[str, str, str], dict]:
    """(model, lang, method) -> compare.json; a missing, unreadable or newer-schema file is left out with a note."""
    out = {}
    for file in files:
        path = Path(file)
        try:
            data = read_json(path)
        except LexalignError as error:
            notes.append(f"population: {error}; left out")
            continue
        version = data.get("schema_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > SCHEMA_VERSION or not isinstance(data.get("temperatures"), dict):
            notes.append(f"population: {path}: schema_version {version!r} is not one this report reads; left out")
            continue
        out[_key(path)] = data
    return out


def _ordered(results: Mapping[tuple[str, str, str], dict]) -> list[tuple[str, str, str]]:
    return sorted(results, key=lambda k: (k[0], k[1], methods.order_key(k[2]), k[2]))


def _block(data: Mapping, block: str) -> Mapping:
    return data.get("graph", {}).get("measures", {}) if block == "graph" else data.get(block, {})


def _table(name: str, title: str, description: str, columns, results: Mapping[tuple[str, str, str], dict]) -> f.Table:
    long_rows, display_rows = [], []
    for key in _ordered(results):
        model, lang, method = key
        for data in results[key]["temperatures"].values():
            shown = {"model": model, "language": lang, "method": f.label(method), "T": f"{data['temperature']:g}"}
            shown["cues"] = f.fmt_int(data.get("n_cues"))
            for block, measure, heading in columns:
                value = _block(data, block).get(measure)
                if not isinstance(value, Mapping):
                    shown[heading] = f.MISSING
                    continue
                ci = value.get("ci") or [None, None]
                shown[heading] = f.fmt_ci(value.get("mean"), ci[0], ci[1])
                long_rows.append(
                    {
                        "model": model,
                        "language": lang,
                        "method": method,
                        "temperature": float(data["temperature"]),
                        "group": block,
                        "measure": measure,
                        "mean": value.get("mean"),
                        "ci_low": ci[0],
                        "ci_high": ci[1],
                        "confidence": value.get("confidence"),
                        "n": value.get("n"),
                    }
                )
            display_rows.append(shown)
    schema = {
        **f.KEY_SCHEMA,
        "temperature": pl.Float64,
        "group": pl.String,
        "measure": pl.String,
        "mean": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "confidence": pl.Float64,
        "n": pl.Int64,
    }
    table = f.Table(name, title, description, pl.DataFrame(long_rows, schema=schema), f.frame(display_rows))
    if not results:
        table.notes.append("no population results")
    return table


def tables(results: Mapping[tuple[str, str, str], dict]) -> list[f.Table]:
    level = next(
        (
            f.level(v.get("confidence"))
            for data in results.values()
            for t in data["temperatures"].values()
            for v in t.get("per_cue", {}).values()
            if isinstance(v, Mapping)
        ),
        "CI",
    )
    return [
        _table(
            "population",
            "The model as participants: its norms vs the human norms, per cue",
            f"Model norms from N simulated SWOW participants (three responses per cue) at each sampling temperature T, "
            f"against the human norms of the same cues; mean over cues [{level} bootstrap CI over cues]. Typicality: "
            "share of the model's k most frequent responses that humans also gave; top-k overlap: shared share of the "
            "two top-k lists; variety ratio: expected response types at the same number of responses, model / humans "
            "(1 = human variety); ratios are model / humans.",
            CUE_COLUMNS,
            results,
        ),
        _table(
            "population_structure",
            "The model as participants: response positions and the cue-response graph",
            "R1 vs R2/R3: share of the model's first and later responses that humans also gave, and how often each "
            "position gives the cue's most frequent response. Graph (cue -> response, weight = strength): average "
            "clustering, power-law exponent of node in-strengths, KS distance between model and human in-strengths, "
            f"Spearman of node in-strength and PageRank between the two graphs; [{level} percentile bootstrap CI over "
            "cues, graphs rebuilt; a cue drawn twice counts twice, so a graph statistic's interval need not contain "
            "its value on all cues].",
            STRUCTURE_COLUMNS,
            results,
        ),
    ]


def sweep_series(results: Mapping[tuple[str, str, str], dict], measure: str) -> dict:
    """(model, lang) -> method -> [(temperature, mean, low, high)] of one per-cue measure, by temperature."""
    out: dict = {}
    for model, lang, method in _ordered(results):
        points = []
        for data in results[(model, lang, method)]["temperatures"].values():
            value = data.get("per_cue", {}).get(measure)
            if isinstance(value, Mapping) and value.get("mean") is not None:
                ci = value.get("ci") or [None, None]
                points.append((float(data["temperature"]), value["mean"], ci[0], ci[1]))
        if points:
            out.setdefault((model, lang), {})[method] = sorted(points)
    return out


def sweep_figure(
    model: str,
    lang: str,
    variety: Mapping[str, Sequence[tuple]],
    typicality: Mapping[str, Sequence[tuple]],
    stem: Path,
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """Two panels: variety ratio and typicality against temperature, one line per method, CI bars."""
    import matplotlib.pyplot as plt

    from lexalign.report import figures

    with plt.rc_context(figures.style()):
        fig, axes = plt.subplots(1, 2, figsize=(10.4, 4.0), layout="constrained")
        panels = (
            (variety, "variety ratio (model / humans)", True),
            (typicality, "typicality (P@k-style)", False),
        )
        for ax, (series, ylabel, human_line) in zip(axes, panels):
            for i, (method, points) in enumerate(series.items()):
                xs = [p[0] for p in points]
                ys = [p[1] for p in points]
                lows = [p[1] - p[2] if p[2] is not None else 0.0 for p in points]
                highs = [p[3] - p[1] if p[3] is not None else 0.0 for p in points]
                color = methods.REGISTRY[method].color if method in methods.REGISTRY else f"C{i}"
                ax.errorbar(
                    xs, ys, yerr=[lows, highs], marker="o", ms=4, lw=1.8, capsize=3, color=color, label=f.label(method)
                )
            if human_line:
                ax.axhline(1.0, color=figures.HUMAN_COLOR, lw=1.5, ls="--", label="human variety")
            ax.set_xlabel("sampling temperature")
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(frameon=False)
        fig.suptitle(f"The model as participants: temperature sweep, {model}, {figures.language_label(lang)}")
        return figures.save(fig, stem, dpi, formats)


def closest_to_human_variety(results: Mapping[tuple[str, str, str], dict]) -> dict:
    """(model, lang, method) -> (temperature, variety ratio) of the temperature whose ratio is closest to 1."""
    out = {}
    for (model, lang), by_method in sweep_series(results, "variety_ratio").items():
        for method, points in by_method.items():
            temperature, ratio, _, _ = min(points, key=lambda p: (abs(p[1] - 1.0), p[0]))
            out[(model, lang, method)] = (temperature, ratio)
    return out


def figures_for(
    results: Mapping[tuple[str, str, str], dict], out: Path, dpi: int, formats: Sequence[str]
) -> list[Path]:
    variety, typicality = sweep_series(results, "variety_ratio"), sweep_series(results, "typicality")
    made = []
    for model, lang in sorted(set(variety) | set(typicality)):
        stem = out / FIGURES / f"{model}.{lang}"
        made.append(
            sweep_figure(
                model, lang, variety.get((model, lang), {}), typicality.get((model, lang), {}), stem, dpi, formats
            )
        )
    return made


def norms_files(results: Mapping[tuple[str, str, str], dict]) -> list[tuple[tuple[str, str, str], str, str]]:
    """((model, lang, method), temperature label, model norms file) of every result, in table order."""
    return [
        (key, label, data["model_norms"])
        for key in _ordered(results)
        for label, data in results[key]["temperatures"].items()
        if data.get("model_norms")
    ]


def section(
    files: Iterable[str | os.PathLike], out: Path, report_dir: Path, dpi: int, formats: Sequence[str], notes: list[str]
) -> list[str]:
    """Write the section's tables and figures under ``out`` (the report's build folder) and return its
    index.md lines (links relative to ``report_dir``, where index.md ends up)."""
    results = read_results(files, notes)
    lines = ["## The model as participants", ""]
    if not results:
        return [*lines, "_No population results (population.methods is empty, or the jobs did not run)._", ""]
    for table in tables(results):
        table.write(out / TABLES)
        rel = Path(TABLES) / table.name
        lines += [table.markdown("###"), f"Files: [CSV]({rel}.csv) · [Markdown]({rel}.md) · [LaTeX]({rel}.tex)", ""]
    lines += [
        "### Temperature sweep",
        "",
        "Variety ratio (expected response types at equal numbers of responses, model / humans; dashed line: human "
        "variety) and P@k-style typicality against the sampling temperature, one line per method; bars: bootstrap "
        "CI over cues.",
        "",
    ]
    for png in figures_for(results, out, dpi, formats):
        lines += [f"![Temperature sweep: {png.stem}]({png.relative_to(out)})", ""]
    closest = closest_to_human_variety(results)
    if closest:
        lines += ["Temperature whose variety ratio is closest to 1 (human variety), per method:", ""]
        lines += [
            f"- {model} / {lang} / {f.label(method)}: T = {t:g} (variety ratio {ratio:.2f})"
            for (model, lang, method), (t, ratio) in closest.items()
        ]
        lines.append("")
    lines += ["### Model norms files (SWOW participant layout)", ""]
    for (model, lang, method), label, file in norms_files(results):
        link = os.path.relpath(Path(file).resolve(), report_dir.resolve())
        lines.append(f"- {model} / {lang} / {f.label(method)} / {label}: [{Path(file).name}]({link})")
    return [*lines, ""]
