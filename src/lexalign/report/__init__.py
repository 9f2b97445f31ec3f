"""The report stage: every per-(model, lang, method) result as tables and figures.

Modules, each one concern: :mod:`~lexalign.report.readers` (the stages' output contracts, typed),
:mod:`~lexalign.report.tables` (tier 1, training) and :mod:`~lexalign.report.wvs_tables` (tier 2),
:mod:`~lexalign.report.format` (CSV / Markdown / LaTeX), :mod:`~lexalign.report.figures`
(matplotlib), :mod:`~lexalign.report.build` (index.md, atomic writing, the rule's entry point).
``python -m lexalign.report`` rebuilds the report from whatever results exist.
"""

from lexalign.report.build import LAYOUT, build_report, report
from lexalign.report.readers import collect

__all__ = ["LAYOUT", "build_report", "collect", "report"]
