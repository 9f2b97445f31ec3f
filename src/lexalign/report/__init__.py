"""The report stage (rule ``report``): reads every per-(model, lang, method) result of the run grid (tier 1's
scores.json, tier 2's metrics.json and answers.parquet, training's metrics.json, the population comparisons)
and writes tables and figures under ``results/report/`` with ``index.md`` linking them.

Modules, each one concern: :mod:`~lexalign.report.readers` (the stages' output contracts, typed),
:mod:`~lexalign.report.tables` (tier 1, training) and :mod:`~lexalign.report.wvs_tables` (tier 2),
:mod:`~lexalign.report.format` (CSV / Markdown / LaTeX), :mod:`~lexalign.report.figures`
(matplotlib), :mod:`~lexalign.report.layout` (the report's folders), :mod:`~lexalign.report.build`
(index.md, atomic writing; :class:`~lexalign.report.build.ReportSettings`, the rule's
:class:`~lexalign.report.build.ReportJob` and :func:`~lexalign.report.build.run`).
``python -m lexalign.report`` rebuilds the report from whatever results exist.

Nothing is imported here: Snakemake imports :mod:`~lexalign.report.layout` while it parses the DAG.
"""
