"""Audit exports: CSV, JSONL and XLSX, streamed to a temporary file, then renamed.

Events are read from the database in batches and written one at a time (no list of all
rows), so memory stays flat whatever the size. A reader never sees a half-written export
and a failed export leaves nothing behind: the file and its manifest are written under
temporary names in the target folder and renamed at the end.

- JSONL keeps every hashed field exactly (``at`` in the chain's UTC form), so an export
  re-verifies offline (`duban.manifest.verify_export`).
- CSV is UTF-8 with a BOM so Excel shows the Chinese text; instants in the office's zone.
- XLSX (openpyxl write-only mode) has Chinese headers, a frozen header row, column widths
  fitted to the header and the first rows, and instants as real Excel dates (local time).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, func, select

from duban.engine.audit import format_instant
from duban.errors import NotFoundError, UsageError
from duban.manifest import Manifest, dumps, manifest_path, sha256_file
from duban.reports.period import Period
from duban.reports.source import unit_known
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, WORKFLOW_VERSIONS

FORMATS = ("csv", "jsonl", "xlsx")
COLUMNS = [
    ("seq", "序号"), ("case_id", "案件编号"), ("at", "时间"), ("actor", "操作人"), ("role", "角色"),
    ("action", "动作"), ("trigger", "操作"), ("from_state", "原状态"), ("to_state", "新状态"),
    ("note", "说明"), ("data", "数据"), ("prev_hash", "前一哈希"), ("hash", "哈希"),
]
SEQ, AT, DATA, PREV_HASH, HASH = 0, 2, 10, 11, 12  # positions in an exported row
Row = Sequence[Any]  # one event: its values in COLUMNS order
PROGRESS_STEP = 1000  # rows between progress updates
WIDTH_SAMPLE = 1000  # rows an XLSX's column widths are fitted to (they precede the rows in the file)
BATCH = 5000


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

    def statement(self) -> Select[Any]:
        """The events' `COLUMNS`, in sequence order."""
        stmt = select(*(AUDIT.c[k] for k, _ in COLUMNS)).order_by(AUDIT.c.seq)
        if self.case_id is not None:
            stmt = stmt.where(AUDIT.c.case_id == self.case_id)
        if self.unit is not None:
            stmt = stmt.where(AUDIT.c.case_id.in_(select(CASE_UNITS.c.case_id).where(CASE_UNITS.c.unit == self.unit)))
        if self.workflow is not None:
            stmt = stmt.where(AUDIT.c.case_id.in_(select(CASES.c.id).where(CASES.c.workflow == self.workflow)))
        if self.period.start is not None:
            stmt = stmt.where(AUDIT.c.at >= self.period.start)
        if self.period.end is not None:
            stmt = stmt.where(AUDIT.c.at < self.period.end)
        return stmt

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
    return int(conn.execute(select(func.count()).select_from(f.statement().order_by(None).subquery())).scalar_one())


def stream_events(conn: Connection, f: AuditFilter) -> Iterator[Row]:
    """The filtered events in sequence order as tuples in `COLUMNS` order, fetched in batches
    (a server-side cursor on PostgreSQL)."""
    yield from conn.execution_options(stream_results=True, yield_per=BATCH).execute(f.statement())


def chain_head(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)).first()
    return {"seq": row.seq, "hash": row.hash} if row else None


# -- writing files atomically ----------------------------------------------------------
def check_output(path: str | Path, option: str = "--out") -> Path:
    """The target of an export or report; UsageError (exit 2) if its folder cannot take it."""
    target = Path(path)
    folder = target.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: folder {folder} is not writable")
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    return target


@contextmanager
def atomic_files(*targets: Path) -> Iterator[list[Path]]:
    """Temporary files beside each target, renamed over them when the block succeeds and
    removed when it fails, so no target is ever left half-written."""
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for target in targets:
            tmp = target.resolve().with_name(f".{target.name}.{secrets.token_hex(6)}.part")
            # created like any new file (mode 0666 less the umask), unlike mkstemp's 0600:
            # a reviewer sharing the folder must be able to read the export
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            temps.append(tmp)
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
            done.append(target)
    except BaseException:
        for p in temps:
            p.unlink(missing_ok=True)
        for p in done:  # the first target renamed, a later one failed: take it back
            p.unlink(missing_ok=True)
        raise


# -- the export ------------------------------------------------------------------------
class _Tally:
    """Counts the events passing through and remembers both ends, for the manifest."""

    def __init__(self, progress: Callable[[int], Any] | None) -> None:
        self.rows = 0
        self.first: Row | None = None
        self.last: Row | None = None
        self._progress = progress

    def watch(self, events: Iterable[Row]) -> Iterator[Row]:
        for e in events:
            if self.first is None:
                self.first = e
            self.last = e
            self.rows += 1
            if self._progress is not None and self.rows % PROGRESS_STEP == 0:
                self._progress(PROGRESS_STEP)
            yield e


def export_events(
    events: Iterable[Row], fmt: str, path: str | Path, tz: tzinfo, *, created_at: datetime,
    filters: dict[str, Any] | None = None, whole_chain: bool = False, chain_head: dict[str, Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Manifest:
    """Write events to ``path`` in ``fmt`` and the manifest beside it; returns the manifest.

    Args:
        events: the events in sequence order, values in `COLUMNS` order (each read once, never kept).
        fmt: csv, jsonl or xlsx.
        path: the export file; its folder must exist and be writable.
        tz: the office's zone (CSV and XLSX show local time).
        created_at: the app clock's now, recorded in the manifest.
        filters, whole_chain, chain_head: recorded in the manifest (see `duban.manifest.Manifest`).
        progress: called with the number of rows written since the last call.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: allowed formats: {', '.join(FORMATS)}")
    target = check_output(path)
    tally = _Tally(progress)
    with atomic_files(target, manifest_path(target)) as (tmp, tmp_manifest):
        _WRITERS[fmt](tally.watch(events), tmp, tz)
        first, last = tally.first, tally.last
        manifest = Manifest(
            file=target.name, format=fmt, created_at=created_at.astimezone(tz).isoformat(),
            filters=filters or {}, whole_chain=whole_chain, rows=tally.rows,
            first_seq=first[SEQ] if first else None, last_seq=last[SEQ] if last else None,
            first_prev_hash=first[PREV_HASH] if first else None, last_hash=last[HASH] if last else None,
            chain_head=chain_head, sha256=sha256_file(tmp),
        )
        tmp_manifest.write_text(dumps(manifest), encoding="utf-8")
    if progress is not None and tally.rows % PROGRESS_STEP:
        progress(tally.rows % PROGRESS_STEP)
    return manifest


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def jsonl_line(e: Row, encode: Callable[[Any], str]) -> str:
    """One event as a JSON line: every hashed field and the hash, ``at`` in the chain's form.

    Built field by field (a third faster than encoding a dict); `verify_export` re-hashes it.
    """
    seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev_hash, hash_ = e
    return (
        f'{{"seq":{seq},"case_id":{"null" if case_id is None else int(case_id)},"at":"{format_instant(at)}",'
        f'"actor":{_text(actor)},"role":{_text(role)},"action":{_text(action)},"trigger":{_text(trigger)},'
        f'"from_state":{_text(from_state)},"to_state":{_text(to_state)},"note":{_text(note)},'
        f'"data":{encode(data)},"prev_hash":{_text(prev_hash)},"hash":{_text(hash_)}}}\n'
    )


def _write_jsonl(events: Iterable[Row], path: Path, tz: tzinfo) -> None:
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with open(path, "w", encoding="utf-8", newline="") as fh:
        write = fh.write
        for e in events:
            write(jsonl_line(e, encode))


def _data_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _write_csv(events: Iterable[Row], path: Path, tz: tzinfo) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\ufeff")
        writer = csv.writer(fh)
        writer.writerow([h for _, h in COLUMNS])
        for e in events:
            row = ["" if v is None else v for v in e]
            row[AT], row[DATA] = e[AT].astimezone(tz).isoformat(), _data_text(e[DATA])
            writer.writerow(row)


def _write_xlsx(events: Iterable[Row], path: Path, tz: tzinfo) -> None:
    from duban.reports.render import XlsxBook

    def values(e: Row) -> list[Any]:
        row = list(e)
        row[AT], row[DATA] = e[AT].astimezone(tz).replace(tzinfo=None), _data_text(e[DATA])
        return row

    with XlsxBook.open(path) as book:
        book.sheet("审计日志", COLUMNS, (values(e) for e in events), sample=WIDTH_SAMPLE)


_WRITERS: dict[str, Callable[[Iterable[Row], Path, tzinfo], None]] = {
    "jsonl": _write_jsonl, "csv": _write_csv, "xlsx": _write_xlsx,
}
