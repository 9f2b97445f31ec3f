"""Glue between the package and its callers: the one logging set-up and the one user-error handler.

Every entry point uses these: workflow scripts (``run_step``), the ``lexalign`` command and the
``python -m lexalign.<module>`` mains (``run_command``), and the Snakefile's config check
(``error_line``). A user error is one line on stderr starting ``lexalign error:``; an unexpected
error keeps its traceback, on the terminal and in the rule's log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

from lexalign.core.errors import LexalignError

PREFIX = "lexalign error: "


def error_line(exc: BaseException | str) -> str:
    """The one line a user sees for a user error: ``lexalign error: <message>``."""
    return PREFIX + " ".join(str(exc).split())


def setup_logging(log_file: str | None = None, level: int = logging.INFO, mode: str = "w", prefix: str = "") -> None:
    """Log to stderr and, when given, to ``log_file`` (the rule's ``log:``; ``mode="a"`` to append)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode=mode, encoding="utf-8"))
    fmt = f"%(asctime)s {prefix}%(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=handlers, force=True)


def _file_handlers() -> list[logging.FileHandler]:
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def report_error(exc: LexalignError) -> int:
    """Print the one line on stderr, write it to the log file(s) too; return the exit status (1)."""
    for handler in _file_handlers():
        handler.stream.write(error_line(exc) + "\n")
        handler.flush()
    print(error_line(exc), file=sys.stderr)
    return 1


def _log_traceback() -> None:
    """Put the traceback of the error being handled into the log file(s) (the terminal gets it from Python)."""
    text = traceback.format_exc()
    for handler in _file_handlers():
        handler.stream.write(text)
        handler.flush()


def run_command(command: Callable[..., int | None], *args: Any) -> int:
    """Run a command-line entry point: a LexalignError becomes one line and exit status 1."""
    try:
        status = command(*args)
    except LexalignError as exc:
        return report_error(exc)
    except Exception:
        _log_traceback()
        raise
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


def run_step(snakemake: Any, step: Callable[[], object]) -> None:
    """Run one workflow step: logging goes to the rule's log; a LexalignError becomes one line and
    exit status 1; an unexpected error's traceback goes to the log as well as to the terminal.

    Snakemake then marks the job failed and removes its declared outputs, and the package writes
    every output atomically, so nothing half-written survives.
    """
    log_files = list(getattr(snakemake, "log", []) or [])
    setup_logging(log_files[0] if log_files else None)

    def body() -> None:  # a step's return value (stats, scores) is not an exit status
        step()

    status = run_command(body)
    if status:
        sys.exit(status)
