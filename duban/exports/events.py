"""Audit exports: which events (`AuditFilter`), read in batches and written to a temporary
file, then renamed, with the manifest beside it.

Events are read from the database in batches straight from the driver's cursor
(`duban.storage.audit_reader`) and written a batch at a time (no list of all rows), so
memory stays flat whatever the size; the formats (CSV, JSONL, XLSX) are the writers of
`duban.exports.writers`. A reader never sees a half-written export and a failed export
leaves nothing behind: the file and its manifest are written under temporary names in the
target folder and renamed at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Dialect

from duban.engine.audit import EventBatch, paused_gc
from duban.errors import NotFoundError, UsageError
from duban.exports.labels import ExportLabels
from duban.exports.manifest import Manifest, dumps, manifest_path, sha256_file
from duban.exports.safe_files import (
    atomic_files as atomic_files,  # re-exported: reports and proofs import them from here
)
from duban.exports.safe_files import check_output as check_output
from duban.exports.writers import WRITERS
from duban.reports.period import Period
from duban.storage.audit_reader import BATCH, AuditEvents, batch_from_rows
from duban.storage.report_reads import unit_known
from duban.storage.sql import bind, run
from duban.storage.tables import AUDIT, CASES, WORKFLOW_VERSIONS

FORMATS = ("csv", "jsonl", "xlsx")
Row = Sequence[Any]  # one event as read: its values in `duban.storage.audit_reader.COLUMNS` order


# -- what to export ------------------------------------------------------------------
@dataclass(frozen=True)
class AuditFilter:
    """Which events an export holds: a case, a unit's cases, a workflow's cases, a period."""

    case_id: int | None = None
    unit: str | None = None
    workflow: str | None = None
    period: Period = field(default_factory=Period)

    @property
    def whole_chain(self) -> bool:
        """No filter at all: the export is the chain from its first event."""
        return all(v is None for v in (self.case_id, self.unit, self.workflow, self.period.start, self.period.end))

    def to_json(self, tz: tzinfo) -> dict[str, Any]:
        span = self.period.to_json(tz)
        return {"case_id": self.case_id, "unit": self.unit, "workflow": self.workflow,
                "since": span["start"], "until": span["end"]}

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        """The filter as SQL over ``audit_events`` (``?`` placeholders) and its values, instants
        bound as the ``at`` column binds them."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.case_id is not None:
            clauses.append("case_id = ?")
            params.append(self.case_id)
        if self.unit is not None:
            clauses.append("case_id IN (SELECT case_id FROM case_units WHERE unit = ?)")
            params.append(self.unit)
        if self.workflow is not None:
            clauses.append("case_id IN (SELECT id FROM cases WHERE workflow = ?)")
            params.append(self.workflow)
        for op, instant in ((">=", self.period.start), ("<", self.period.end)):
            if instant is not None:
                clauses.append(f"at {op} ?")
                params.extend(bind(dialect, AUDIT, ["at"], [instant]))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def check(self, conn: Connection) -> None:
        """NotFoundError (exit 3) for a case, unit or workflow the database does not know."""
        if self.case_id is not None and conn.execute(select(CASES.c.id).where(CASES.c.id == self.case_id)).first() is None:
            raise NotFoundError(f"--case {self.case_id}: no such case")
        if self.unit is not None and not unit_known(conn, self.unit):
            raise NotFoundError(f"--unit {self.unit}: no case or user has this unit")
        if self.workflow is not None:
            known = conn.execute(select(WORKFLOW_VERSIONS.c.name).where(WORKFLOW_VERSIONS.c.name == self.workflow).limit(1)).first()
            if known is None:
                raise NotFoundError(f"--workflow {self.workflow}: no case uses this workflow")


def count_events(conn: Connection, f: AuditFilter) -> int:
    """How many events an export will hold (for the progress bar)."""
    where, params = f.where(conn.dialect)
    cursor = run(conn, f"SELECT count(*) FROM audit_events{where}", params)
    try:
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


def stream_events(conn: Connection, f: AuditFilter) -> AuditEvents:
    """The filtered events in sequence order, read in batches straight from the driver's cursor
    (a server-side cursor on PostgreSQL); `export_events` writes them a batch at a time."""
    where, params = f.where(conn.dialect)
    return AuditEvents(conn, where, params)


def chain_head(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)).first()
    return {"seq": row.seq, "hash": row.hash} if row else None


# -- the export ------------------------------------------------------------------------
class Tally:
    """Counts the events passing through and remembers both ends, for the manifest."""

    def __init__(self, progress: Callable[[int], Any] | None) -> None:
        self.rows = 0
        self.first: tuple[Any, Any] | None = None  # (seq, prev_hash) of the first event
        self.last: tuple[Any, Any] | None = None  # (seq, hash) of the last
        self._progress = progress

    def watch(self, batches: Iterable[EventBatch]) -> Iterator[EventBatch]:
        for b in batches:
            if not len(b):
                continue
            if self.first is None:
                self.first = (b.seq[0], b.prev_hash[0])
            self.last = (b.seq[-1], b.hash[-1])
            yield b
            self.count(len(b))

    def take(self, rows: int, first: tuple[Any, Any] | None, last: tuple[Any, Any] | None) -> None:
        """A run of events counted elsewhere (a worker's range), the next in order."""
        if rows:
            self.first = self.first or first
            self.last = last
            self.count(rows)

    def count(self, rows: int) -> None:
        self.rows += rows
        if self._progress is not None:
            self._progress(rows)


def _batches(events: Iterable[Row] | AuditEvents, instants: bool) -> Generator[EventBatch]:
    if isinstance(events, AuditEvents):
        yield from events.batches(instants=instants)
        return
    rows = iter(events)
    while chunk := list(islice(rows, BATCH)):
        yield batch_from_rows(chunk, instants)


def export_events(
    events: Iterable[Row] | AuditEvents, fmt: str, path: str | Path, tz: tzinfo, *, created_at: datetime,
    filters: dict[str, Any] | None = None, whole_chain: bool = False, chain_head: dict[str, Any] | None = None,
    progress: Callable[[int], Any] | None = None, labels: ExportLabels | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> Manifest:
    """Write events to ``path`` in ``fmt`` and the manifest beside it; returns the manifest.

    Args:
        events: the events in sequence order: `stream_events` (read a batch at a time), or
            rows of values in `Row` order as Core reads them (each read once, never kept).
        fmt: csv, jsonl or xlsx.
        path: the export file; its folder must exist and be writable.
        tz: the office's zone (CSV and XLSX show local time).
        created_at: the app clock's now, recorded in the manifest.
        filters, whole_chain, chain_head: recorded in the manifest (see `duban.exports.manifest.Manifest`).
        progress: called with the number of rows written since the last call.
        labels: titles, units and labels for CSV and XLSX; default: read from the database
            the events come from (`ExportLabels.load`, for the filter's case or workflow), or
            none for rows given directly.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: allowed formats: {', '.join(FORMATS)}")
    target = check_output(path)
    tally = Tally(progress)
    if labels is None:
        labels = ExportLabels()
        if fmt != "jsonl" and isinstance(events, AuditEvents):
            given = filters or {}
            labels = ExportLabels.load(events.conn, case_id=given.get("case_id"), workflow=given.get("workflow"))
    with atomic_files(target, manifest_path(target)) as (tmp, tmp_manifest):
        batches = _batches(events, instants=fmt == "xlsx")  # CSV works out its local times from the text (`LocalTimes`)
        try:
            # CSV and JSONL make no reference cycles (see `paused_gc`); openpyxl's objects may
            with paused_gc() if fmt != "xlsx" else nullcontext():
                digest = WRITERS[fmt](tally.watch(batches), tmp, tz, labels)
        finally:  # on a failure too: the database cursor closes now, not when collected
            batches.close()
        manifest = build_manifest(target, fmt, tz, created_at, filters, whole_chain, chain_head, tally,
                                  digest if digest is not None else sha256_file(tmp), checkpoint)
        tmp_manifest.write_text(dumps(manifest), encoding="utf-8")
    return manifest


def build_manifest(target: Path, fmt: str, tz: tzinfo, created_at: datetime, filters: dict[str, Any] | None,
                   whole_chain: bool, chain_head: dict[str, Any] | None, tally: Tally, sha256: str,
                   checkpoint: dict[str, Any] | None = None) -> Manifest:
    first, last = tally.first, tally.last
    return Manifest(
        file=target.name, format=fmt, created_at=created_at.astimezone(tz).isoformat(),
        filters=filters or {}, whole_chain=whole_chain, rows=tally.rows,
        first_seq=first[0] if first else None, last_seq=last[0] if last else None,
        first_prev_hash=first[1] if first else None, last_hash=last[1] if last else None,
        chain_head=chain_head, sha256=sha256, checkpoint=checkpoint,
    )
