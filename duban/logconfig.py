"""Operational logs with structlog: readable on a terminal, JSON lines otherwise.

Logs go to stderr, never to stdout, so `--json` output stays one clean document. The
audit log is domain data and lives in the database; these logs are for operators.

A person's terminal gets warnings and errors only: a command a person runs (default level
WARNING) never shows lines below WARNING on a terminal, whatever DUBAN_LOG_LEVEL says
(redirect stderr to a file to read them); the operator's long-running processes (`scheduler
run`, default INFO) keep their level. Every line's timestamp is the command's clock
(`use_clock`: `--now` / DUBAN_NOW pins it) in the office's zone, so a rehearsal's log reads
in the rehearsal's time.

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
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

    from duban.clock import Clock

_deferred = False  # configure(defer=True) ran and structlog is not configured yet
_clock: Clock | None = None  # the command's clock (None: the wall clock, through duban.clock)
_zone: tzinfo = UTC
# fields `bound` adds to every line logged inside it (structlog's bound_contextvars, but kept
# here so a sweep that logs nothing never imports structlog)
_bound: ContextVar[dict[str, Any]] = ContextVar("duban_log_bound", default={})  # noqa: B039 (never mutated)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (a line's own fields win)."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def use_clock(clock: Clock, tz: tzinfo) -> None:
    """Stamp every log line from now on with ``clock``'s instant in the office's zone ``tz``."""
    global _clock, _zone
    _clock, _zone = clock, tz


def configure(default_level: str = "WARNING", *, defer: bool = False) -> None:
    """Send logs to stderr at `DUBAN_LOG_LEVEL` (default `default_level`); with `defer`,
    configure structlog only when the first line is logged.

    A command a person runs (``default_level`` WARNING) shows nothing below WARNING on a
    terminal; a process the operator runs (a lower default, e.g. the scheduler's INFO) shows
    its level there too."""
    global _deferred
    level = getattr(logging, os.environ.get("DUBAN_LOG_LEVEL", default_level).upper(), logging.WARNING)
    console = sys.stderr.isatty()
    if console and default_level.upper() == "WARNING":
        level = max(level, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(console=console))
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
        _merge_bound,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _redact,
        _stamp,
    ]


SECRET_FIELDS = frozenset({"password", "secret", "token", "session", "totp_secret", "api_key", "authorization"})


def _merge_bound(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in _bound.get().items():
        event.setdefault(key, value)
    return event


def _redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A field named like a secret never reaches a log line, whatever a caller passed (SPEC §12):
    the value is replaced, so the line still says that the field was there."""
    for key in SECRET_FIELDS.intersection(event):
        event[key] = "[redacted]"
    return event


def _stamp(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog's TimeStamper, but on the command's clock and in the office's zone."""
    if _clock is None:
        from duban.clock import SystemClock

        now: datetime = SystemClock().now()
    else:
        now = _clock.now()
    event["timestamp"] = now.astimezone(_zone).isoformat()
    return event


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
