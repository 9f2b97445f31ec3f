"""The report's figures (matplotlib, Agg backend), each saved as PNG and the configured formats.

Every function takes plain data (arrays, frames, dicts) prepared by :mod:`lexalign.report.build` and
an output stem (``.../figures/tension/gemma270m.zh``); it writes ``stem.png`` (and e.g. ``stem.pdf``)
and returns the PNG path. Method labels and colours come from the method registry.

Labels may be Chinese. The font comes with the package's dependencies: ``paperang-p2-fonts-cjk``
ships WenQuanYi Micro Hei (Apache-2.0), which :func:`configure_fonts` registers with matplotlib and
puts behind the default font, so matplotlib falls back to it glyph by glyph. Families named in
``report.cjk_fonts``, or a system CJK font, are used first when installed.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import MaxNLocator

from lexalign.config import methods
from lexalign.config.countries import short_name
from lexalign.report.format import label as method_label

log = logging.getLogger(__name__)

#: The PyPI package (a dependency) that ships the CJK font file, and the file inside it.
FONT_PACKAGE = "paperang_p2_fonts_cjk"
FONT_FILE = "fonts/wqy-microhei.ttc"
#: System font families used instead when installed (e.g. Debian's fonts-noto-cjk).
SYSTEM_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Hiragino Sans GB",
)
LANGUAGE_NAMES = {
    "en": "English (US)",
    "zh": "中文 (Mandarin)",
    "nl": "Nederlands",
    "es": "Español (Rioplatense)",
}
HUMAN_COLOR = "#e6ab02"
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.titlesize": 13,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.1,
}
_cjk: dict[str, str | None] = {}  # the configured CJK family under key "font" once looked up


def packaged_font_file() -> Path | None:
    """The CJK font file the dependency ships; None when the package is not installed."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / FONT_FILE
    return path if path.is_file() else None


def configure_fonts(preferred: Sequence[str] = (), force: bool = False) -> str | None:
    """The CJK fallback family (``preferred`` first, then a system CJK font, then the packaged one).

    Looked up once per process (``force``: again). Returns None, with a warning, only when none is
    available (the font package was removed and no system font is installed).
    """
    if "font" in _cjk and not force:
        return _cjk["font"]
    manager = font_manager.fontManager
    names = {f.name for f in manager.ttflist}
    found = next((name for name in (*preferred, *SYSTEM_CJK_FONTS) if name in names), None)
    if found is None and (path := packaged_font_file()) is not None:
        manager.addfont(str(path))
        found = font_manager.FontProperties(fname=str(path)).get_name()
    if found:
        log.info("figures: CJK labels use the font %s", found)
    else:
        log.warning(
            "figures: no CJK font found (the %s package is not installed and no system CJK font is); Chinese labels "
            "will "
            "show as boxes: pip install paperang-p2-fonts-cjk, or name an installed family in config report.cjk_fonts",
            FONT_PACKAGE,
        )
    _cjk["font"] = found
    return found


def style() -> dict:
    """The rc settings every figure is drawn with: readable sizes and the CJK fallback font."""
    found = configure_fonts()
    return {
        **STYLE,
        "font.family": ["DejaVu Sans", found] if found else ["DejaVu Sans"],
    }


def _styled(plot):
    """Draw and save ``plot`` inside ``style()``, leaving the caller's rcParams alone."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(style()):
            return plot(*args, **kwargs)

    return wrapper


def language_label(lang: str) -> str:
    name = LANGUAGE_NAMES.get(lang)
    return f"{lang}: {name}" if name else lang


def _color(method: str, index: int) -> str:
    return methods.REGISTRY[method].color if method in methods.REGISTRY else plt.get_cmap("tab10")(index % 10)


def save(fig, stem: Path, dpi: int = 150, formats: Sequence[str] = ("png", "pdf")) -> Path:
    """Write ``stem.png`` (always: the report embeds it) and the other ``formats``; return the PNG path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.parent / f"{stem.name}.png"
    try:
        for fmt in ["png", *[f for f in formats if f != "png"]]:
            fig.savefig(stem.parent / f"{stem.name}.{fmt}", dpi=dpi, facecolor="white")
    finally:
        plt.close(fig)
    return png


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols


@_styled
def precision_at_k(
    lang: str,
    ks: Sequence[int],
    models: Mapping[str, Mapping[str, Sequence]],
    stem: Path,
    ci_label: str = "CI",
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """One panel per model: P@k against k, one line per method, CI band.

    ``models``: model -> method -> list (one per k) of summaries with ``mean``, ``low``, ``high`` (or None);
    ``ci_label`` names the bands' level ("95% CI"), as the results carry it.
    """
    rows, cols = _grid(len(models))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(5.2 * cols, 4.0 * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    shown = [
        e
        for by_method in models.values()
        for series in by_method.values()
        for e in series
        if e is not None and e.mean is not None
    ]
    top = max(e.high if e.high is not None else e.mean for e in shown)
    for ax, (model, by_method) in zip(axes.flat, models.items()):
        for i, (method, series) in enumerate(by_method.items()):
            xs = [k for k, e in zip(ks, series) if e is not None and e.mean is not None]
            ys = [e.mean for e in series if e is not None and e.mean is not None]
            color = _color(method, i)
            ax.plot(
                xs,
                ys,
                marker="o",
                ms=4,
                lw=1.8,
                color=color,
                label=method_label(method),
            )
            bands = [
                (k, e.low, e.high)
                for k, e in zip(ks, series)
                if e is not None and e.low is not None and e.high is not None
            ]
            if len(bands) >= 2:
                bx, lo, hi = zip(*bands)
                ax.fill_between(bx, lo, hi, color=color, alpha=0.18, lw=0)
        ax.set_title(model)
        ax.set_xlabel("k (first k generated words)")
        ax.set_xticks(list(ks))
        ax.set_ylim(0, min(1.0, top * 1.08) if top > 0 else 1.0)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    axes.flat[0].set_ylabel("P@k (share of words humans gave)")
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    fig.suptitle(f"P@k by method, {language_label(lang)} (bands: {ci_label})")
    return save(fig, stem, dpi, formats)


@_styled
def profile(
    lang: str,
    human: Mapping[str, np.ndarray],
    models: Mapping[tuple[str, str], Mapping[str, np.ndarray]],
    measures: Sequence[str],
    stem: Path,
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """Violin plots per measure: humans, then every model x method (per-cue medians).

    ``models``: (model, method) -> measure -> per-cue medians; a group without rated words keeps its
    place on the axis, marked "no rated words".
    """
    measures = [
        m for m in measures if (m in human and len(human[m])) or any(m in v and len(v[m]) for v in models.values())
    ]
    groups = [("humans", human, HUMAN_COLOR)] + [
        (f"{model}\n{method_label(method)}", values, _color(method, i))
        for i, ((model, method), values) in enumerate(models.items())
    ]
    fig, axes = plt.subplots(
        len(measures),
        1,
        figsize=(max(6.0, 1.1 * len(groups) + 2), 3.2 * len(measures)),
        squeeze=False,
        layout="constrained",
    )
    for ax, measure in zip(axes[:, 0], measures):
        positions = np.arange(1, len(groups) + 1)
        filled = [
            (pos, np.asarray(values.get(measure, []), dtype=float), color)
            for pos, (_, values, color) in zip(positions, groups)
        ]
        rated = [(pos, data, color) for pos, data, color in filled if data.size]
        parts = ax.violinplot(
            [d if d.size > 1 else np.repeat(d, 2) for _, d, _ in rated],
            positions=[p for p, _, _ in rated],
            showmedians=False,
            showextrema=False,
            widths=0.8,
        )
        for body, (_, _, color) in zip(parts["bodies"], rated):
            body.set_facecolor(color)
            body.set_edgecolor("black")
            body.set_alpha(0.55)
        ax.boxplot(
            [d for _, d, _ in rated],
            positions=[p for p, _, _ in rated],
            widths=0.18,
            showfliers=False,
            medianprops={"color": "black"},
        )
        for pos, data, _ in filled:
            if not data.size:
                ax.text(
                    pos,
                    0.5,
                    "no rated\nwords",
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="grey",
                )
        ax.set_xticks(positions, [label for label, _, _ in groups], fontsize=9)
        ax.set_xlim(0.4, len(groups) + 0.6)
        ax.set_ylabel(measure)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Psycholinguistic profile of associations, {language_label(lang)} (per-cue medians)")
    return save(fig, stem, dpi, formats)


@_styled
def tension(
    model: str,
    lang: str,
    panels: Mapping[str, object],
    stem: Path,
    countries: tuple[str, str],
    definition: str = "corrected",
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """One panel per method: each high-tension item at (distance to the first country's humans, distance to the
    second's), the items and distances of ``definition`` (corrected | study); ``countries``: the two names in
    config order (e.g. United States, China).

    ``panels``: method -> polars frame with ``dist_first`` and ``dist_second``. Points below the diagonal are
    closer to the second country. Colour = bias = distance to the second − distance to the first (negative:
    closer to the second).
    """
    first, second = countries
    a, b = (short_name(name) for name in countries)
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n + 1.0, 4.3), squeeze=False, layout="constrained")
    all_x = np.concatenate([p["dist_first"].to_numpy() for p in panels.values()])
    all_y = np.concatenate([p["dist_second"].to_numpy() for p in panels.values()])
    top = float(np.nanmax(np.concatenate([all_x, all_y]))) * 1.08 or 1.0
    bias_all = all_y - all_x
    span = float(np.nanmax(np.abs(bias_all))) or 1.0
    norm = TwoSlopeNorm(vmin=-span, vcenter=0.0, vmax=span)
    scatter = None
    for ax, (method, frame) in zip(axes[0], panels.items()):
        x, y = frame["dist_first"].to_numpy(), frame["dist_second"].to_numpy()
        bias = y - x
        scatter = ax.scatter(
            x,
            y,
            c=bias,
            cmap="coolwarm_r",
            norm=norm,
            s=36,
            edgecolor="black",
            linewidth=0.4,
        )
        ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        closer_second, closer_first = int((y < x).sum()), int((x < y).sum())
        box = {"boxstyle": "round", "facecolor": "white", "alpha": 0.85}
        ax.text(
            0.04,
            0.96,
            f"closer to {a}: {closer_first} / {len(x)}",
            transform=ax.transAxes,
            va="top",
            ha="left",
            bbox=box,
            fontsize=9,
        )
        ax.text(
            0.96,
            0.04,
            f"closer to {b}: {closer_second} / {len(x)}",
            transform=ax.transAxes,
            va="bottom",
            ha="right",
            bbox=box,
            fontsize=9,
        )
        ax.set_title(method_label(method))
        ax.set_xlabel(f"distance to {first} humans")
        ax.grid(alpha=0.25)
    axes[0][0].set_ylabel(f"distance to {second} humans")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=list(axes[0]), shrink=0.85)
        bar.set_label(f"bias: dist {b} − dist {a}\n(< 0: closer to {second})")
    fig.suptitle(f"High-tension WVS items ({definition} definition): {model}, {language_label(lang)}")
    return save(fig, stem, dpi, formats)


def _series(history: Sequence[Mapping], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, record in enumerate(history):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
            xs.append(float(record.get("step", i)))
            ys.append(float(value))
    return xs, ys


REWARD_KEYS = ("reward", "rewards/spearman_ranking/mean", "rewards/margins")


@_styled
def training_curves(
    model: str,
    lang: str,
    histories: Mapping[str, Sequence[Mapping]],
    stem: Path,
    dpi: int = 150,
    formats: Sequence[str] = ("png", "pdf"),
) -> Path:
    """Loss (solid: train, dashed: eval) and reward per step, one colour per method."""
    has_reward = any(_series(h, k)[0] for h in histories.values() for k in REWARD_KEYS)
    fig, axes = plt.subplots(
        1,
        2 if has_reward else 1,
        figsize=(11 if has_reward else 6, 4),
        squeeze=False,
        layout="constrained",
    )
    loss_ax = axes[0][0]
    for i, (method, history) in enumerate(histories.items()):
        color = _color(method, i)
        xs, ys = _series(history, "loss")
        if xs:
            loss_ax.plot(xs, ys, color=color, lw=1.6, label=f"{method_label(method)} train")
        xs, ys = _series(history, "eval_loss")
        if xs:
            loss_ax.plot(
                xs,
                ys,
                color=color,
                lw=1.6,
                ls="--",
                marker="o",
                ms=3,
                label=f"{method_label(method)} eval",
            )
        if has_reward:
            for key in REWARD_KEYS:
                xs, ys = _series(history, key)
                if xs:
                    label = method_label(method) + (" (chosen − rejected margin)" if key == "rewards/margins" else "")
                    axes[0][1].plot(xs, ys, color=color, lw=1.6, label=label)
                    break
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_title("loss")
    loss_ax.set_xlabel("step")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(frameon=False)
    if has_reward:
        axes[0][1].set_title("reward")
        axes[0][1].set_xlabel("step")
        axes[0][1].grid(alpha=0.3)
        axes[0][1].legend(frameon=False)
    fig.suptitle(f"Training curves: {model}, {language_label(lang)}")
    return save(fig, stem, dpi, formats)
