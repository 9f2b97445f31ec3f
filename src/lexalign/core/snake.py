"""Glue between the package and its callers: the one logging set-up, the one user-error handler, and the
one way a workflow script hands its job to the package.

Every entry point uses these: workflow scripts (``run_script``), the ``lexalign`` command and the
``python -m lexalign.<module>`` mains (``run_command``), and the Snakefile's config check
(``error_line``). A script never hands the ``snakemake`` object to a stage: ``run_script`` turns it into
a plain :class:`Rule` and the stage's job type builds itself from that (``Job.from_rule``).

A user error is one line on stderr starting ``lexalign error:``; an unexpected
error keeps its traceback, on the terminal and in the rule's log.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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


INTERRUPTED = 130  # the shell's status for a command stopped by SIGINT (128 + 2)


def _interrupted() -> int:
    line = "lexalign: interrupted; no output of this command was half-written"
    for handler in _file_handlers():
        handler.stream.write(line + "\n")
        handler.flush()
    print(line, file=sys.stderr)
    return INTERRUPTED


def run_command(command: Callable[..., int | None], *args: Any) -> int:
    """Run a command-line entry point: a LexalignError becomes one line and exit status 1; Ctrl-C (SIGINT)
    one line and exit status 130, also when a library caught the KeyboardInterrupt on its way out (a
    flag set by the signal handler says it came)."""
    signals: list[int] = []
    finished = False
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(number: int, frame: Any) -> None:
            signals.append(number)
            if not finished:  # once the command is over, a second Ctrl-C cannot cut the one line short
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        try:
            try:
                status = command(*args)
            finally:
                finished = True
        except KeyboardInterrupt:
            return _interrupted()
        except LexalignError as exc:
            return _interrupted() if signals else report_error(exc)
        except Exception:
            if signals:
                return _interrupted()
            _log_traceback()
            raise
        if signals:
            return _interrupted()
        return status if isinstance(status, int) and not isinstance(status, bool) else 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


J = TypeVar("J")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One job of a rule as plain values: named inputs and outputs (a path, or a list of paths), params,
    wildcards, threads, resources and the log file. Built from the ``snakemake`` object by
    :func:`rule_of`; a stage's ``Job.from_rule`` reads only this."""

    input: Mapping[str, Any]
    output: Mapping[str, Any]
    params: Mapping[str, Any]
    wildcards: Mapping[str, str]
    threads: int = 1
    resources: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    log: str | None = None


def _plain(value: Any) -> Any:
    """A Snakemake path list (a Namedlist of strings) as a list of str, a single path as str."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return value


def rule_of(snakemake: Any) -> Rule:
    """The :class:`Rule` of the running job: only named inputs and outputs are kept (every rule names its files)."""
    logs = list(getattr(snakemake, "log", []) or [])
    resources = {
        name: value for name, value in dict(getattr(snakemake, "resources", {}).items()).items() if not callable(value)
    }
    return Rule(
        input={name: _plain(value) for name, value in snakemake.input.items()},
        output={name: _plain(value) for name, value in snakemake.output.items()},
        params=dict(snakemake.params.items()),
        wildcards=dict(snakemake.wildcards.items()),
        threads=int(snakemake.threads),
        resources=resources,
        log=str(logs[0]) if logs else None,
    )


def run_script(snakemake: Any, build: Callable[[Rule], J], run: Callable[[J], object]) -> None:
    """The body of every ``workflow/scripts/*.py``: log to the rule's log, build the job from the rule
    (``build``, a stage's ``Job.from_rule``) and ``run`` it. A LexalignError (from building or running) is one
    line and exit status 1; an unexpected error's traceback goes to the log as well as to the terminal.

    Snakemake then marks the job failed and removes its declared outputs, and the package writes
    every output atomically, so nothing half-written survives.
    """
    rule = rule_of(snakemake)
    setup_logging(rule.log)

    def body() -> None:  # a stage's return value (stats, scores) is not an exit status
        run(build(rule))

    status = run_command(body)
    if status:
        sys.exit(status)
