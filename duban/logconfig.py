"""Operational logs with structlog: readable on a terminal, JSON lines otherwise.

Logs go to stderr, never to stdout, so `--json` output stays one clean document. The
audit log is domain data and lives in the database; these logs are for operators.

structlog is imported when the first line is logged, not before: a command that logs
nothing (`duban case show`) never pays for it (README "Performance"). Every duban module
logs through `get_logger`, and records from the standard library (alembic, SQLAlchemy) go
through the handler set here, so `configure(defer=True)` (what `duban` does) leaves
structlog unloaded until one of them logs a line.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

_deferred = False  # configure(defer=True) ran and structlog is not configured yet


def configure(default_level: str = "WARNING", *, defer: bool = False) -> None:
    """Send logs to stderr at `DUBAN_LOG_LEVEL` (default `default_level`); with `defer`,
    configure structlog only when the first line is logged."""
    global _deferred
    level = getattr(logging, os.environ.get("DUBAN_LOG_LEVEL", default_level).upper(), logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(console=sys.stderr.isatty()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in ("transitions", "apscheduler", "alembic", "sqlalchemy"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    _deferred = defer
    if not defer:
        _configure_structlog()


def get_logger(name: str) -> Any:
    """A structlog logger that imports structlog (and finishes a deferred `configure`) at its
    first call."""
    return _Logger(name)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}


def _dropped(*_args: Any, **_kw: Any) -> None:
    return None


class _Logger:
    def __init__(self, name: str) -> None:
        self._name = name
        self._std = logging.getLogger(name)
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        level = _LEVELS.get(method)
        if level is not None and not self._std.isEnabledFor(level):
            # what structlog's `filter_by_level` decides, decided before structlog builds a
            # bound logger and runs its processors for a line nobody will see (a hot path
            # logs a line per step: ~8 µs a line saved)
            return _dropped
        if _deferred:  # checked at every line: this logger may have been first used before `configure`
            _configure_structlog()
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)


class _Formatter(logging.Formatter):
    """structlog's `ProcessorFormatter` for standard-library records, built (importing
    structlog) when the first record is formatted."""

    def __init__(self, *, console: bool) -> None:
        super().__init__()
        self._console = console
        self._inner: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._inner is None:
            import structlog

            renderer: structlog.types.Processor = (
                structlog.dev.ConsoleRenderer(colors=False)
                if self._console
                else structlog.processors.JSONRenderer(ensure_ascii=False)
            )
            self._inner = structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_shared(),
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                            structlog.processors.dict_tracebacks, renderer],
            )
        return self._inner.format(record)


def _shared() -> list[structlog.types.Processor]:
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _configure_structlog() -> None:
    global _deferred
    import structlog

    _deferred = False
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
