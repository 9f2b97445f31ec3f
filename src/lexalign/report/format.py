"""Tables as files: the :class:`Table` record (long CSV frame + display frame) and its Markdown and
LaTeX writers, with the number formats every table shares."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from lexalign.config import methods

MISSING = "—"


def label(method: str) -> str:
    """A method's label in tables and legends (the registry's; an unknown name as is)."""
    return methods.REGISTRY[method].label if method in methods.REGISTRY else method


def level(confidence: float | None) -> str:
    """``0.95`` -> ``95%``; None -> ``CI`` (a table whose CIs carry no level)."""
    return f"{100 * confidence:g}%" if confidence is not None else "CI"


#: The key columns every long (CSV) table starts with.
KEY_SCHEMA = {"model": pl.String, "language": pl.String, "method": pl.String}


def frame(rows: list[dict]) -> pl.DataFrame:
    """A display frame (every cell a string) from rows that may lack some columns."""
    if not rows:
        return pl.DataFrame()
    columns = list(dict.fromkeys(c for row in rows for c in row))
    return pl.DataFrame({c: [str(row.get(c, MISSING)) for row in rows] for c in columns})


def fmt(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_signed(value: float | None, digits: int = 3) -> str:
    return MISSING if value is None or math.isnan(value) else f"{value:+.{digits}f}"


def fmt_int(value: Any) -> str:
    return MISSING if value is None else str(int(value))


def fmt_ci(value, low, high, signed: bool = False) -> str:
    main = fmt_signed(value) if signed else fmt(value)
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return main
    return f"{main} [{fmt(low)}, {fmt(high)}]"


def fmt_gain(points, percent) -> str:
    if points is None:
        return MISSING
    return f"{points:+.1f} ({percent:+.1f}%)" if percent is not None else f"{points:+.1f}"


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.0f}%"


def out_of(value, n) -> str:
    if value is None:
        return MISSING
    return f"{value} / {n}" if n is not None else str(value)


def arrow(first, last) -> str:
    return MISSING if first is None and last is None else f"{fmt(first)} → {fmt(last)}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pl.DataFrame) -> str:
    if table.is_empty():
        return "_No results._\n"
    header = "| " + " | ".join(_md_cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join([header, rule, *body]) + "\n"


_TEX_ESCAPE = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    "Δ": r"$\Delta$",
    "−": "$-$",
    "→": r"$\to$",
    "≥": r"$\geq$",
    "—": "---",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def _tex(text: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in str(text))


def to_latex(table: pl.DataFrame, caption: str, name: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); CJK text needs xeCJK or CJKutf8."""
    if table.is_empty():
        return f"% {caption}: no results\n"
    spec = "l" * min(3, len(table.columns)) + "r" * max(0, len(table.columns) - 3)
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        "\\small",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex(c) for c in table.columns) + " \\\\",
        "\\midrule",
        *(" & ".join(_tex(v) for v in row) + " \\\\" for row in table.iter_rows()),
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{_tex(caption)}}}",
        f"\\label{{tab:{name}}}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Table:
    """One report table: a long frame for the CSV, a display frame for Markdown and LaTeX."""

    name: str
    title: str
    description: str
    long: pl.DataFrame
    display: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    #: A shorter display for index.md (the files keep every row), with a line saying what was cut.
    brief: tuple[pl.DataFrame, str] | None = None

    def markdown(self, heading: str = "###", brief: bool = False) -> str:
        display, cut = self.brief if brief and self.brief is not None else (self.display, None)
        parts = [
            f"{heading} {self.title}\n",
            f"{self.description}\n",
            to_markdown(display),
        ]
        if cut:
            parts.append(f"\n_{cut}_\n")
        if self.notes:
            parts.append("\n" + "\n".join(f"> Note: {n}" for n in self.notes) + "\n")
        return "\n".join(parts)

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.long.write_csv(folder / f"{self.name}.csv")
        (folder / f"{self.name}.md").write_text(self.markdown("#"), encoding="utf-8")
        latex = to_latex(self.display, f"{self.title}. {self.description}", self.name)
        (folder / f"{self.name}.tex").write_text(latex, encoding="utf-8")


def item_ci_cells(cells: Mapping[str, Mapping[str, Any]], confidence: float) -> dict[str, str]:
    """Display cells ``"<name> [95% CI]"``: mean [low, high] (n items), from summaries with ``mean``,
    ``ci_low``, ``ci_high`` and ``n_items``."""
    header = f"{level(confidence)} CI"
    return {
        f"{name} [{header}]": f"{fmt_ci(c['mean'], c['ci_low'], c['ci_high'])} (n {fmt_int(c['n_items'])})"
        for name, c in cells.items()
    }
