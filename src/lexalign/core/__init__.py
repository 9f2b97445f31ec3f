"""Shared plumbing every stage uses: errors, atomic writes (``io``), checked CSV reading (``csvfile``), text
normalisation, bootstrap statistics, typed settings (``settings``), package data (``resources``) and the
Snakemake glue (``snake``: the one error line, logging, ``run_script``). Imports no other lexalign package."""
