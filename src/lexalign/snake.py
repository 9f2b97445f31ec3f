"""Glue between a Snakemake ``script:`` and the package: logging to the rule's log, clean user errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from lexalign.errors import LexalignError


def setup_logging(log_file: str | None = None, level: int = logging.INFO) -> None:
    """Log to stderr and, when given, to ``log_file`` (the rule's ``log:``)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)


def run_step(snakemake: Any, step: Callable[[], object]) -> None:
    """Run one workflow step; a LexalignError becomes one line on stderr and in the log, exit status 1.

    Snakemake then marks the job failed and removes its declared outputs, and the package writes
    every output atomically, so nothing half-written survives.
    """
    log_files = list(getattr(snakemake, "log", []) or [])
    setup_logging(log_files[0] if log_files else None)
    try:
        step()
    except LexalignError as exc:
        logging.getLogger("lexalign").error("%s", exc)
        print(f"lexalign error: {exc}", file=sys.stderr)
        sys.exit(1)
