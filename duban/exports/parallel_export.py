"""CSV and JSONL exports over several processes: the events cut into ranges of sequence
numbers, each range's lines written by a worker process into a part file beside the
export, the parts copied into the export in order and hashed on the way.

The lines are the ones the sequential export writes (`duban.exports.writers.batch_lines`, the same
formatter), so the file and its manifest are byte for byte the sequential ones (tests
compare them). Memory stays flat: a worker writes its range a batch at a time and the
parent copies a part in blocks. The ranges end at the last matching event at the start;
the audit log is append-only, so what the workers read is what one read transaction would
have read, as long as the filter itself cannot change under them — so an export filtered
by unit (a reassignment changes a unit's cases) and XLSX (one openpyxl workbook) stay
sequential. A worker that fails fails the export, and nothing is left behind (`atomic_files`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from duban.engine.audit import paused_gc
from duban.exports.events import AuditFilter, Tally, build_manifest
from duban.exports.labels import ExportLabels
from duban.exports.manifest import Manifest, dumps, manifest_path
from duban.exports.parallel_verify import (
    MIN_RANGE,
    PARALLEL_FROM,
    default_jobs,
    ranges,
    start_method,
    submit_all,
    worker_pool,
)
from duban.exports.safe_files import atomic_files, check_output
from duban.exports.writers import HEADERS, HashedFile, batch_lines
from duban.storage.audit_reader import AuditEvents
from duban.storage.database import Database
from duban.storage.sql import run

Ranges = list[tuple[int | None, int]]
Part = tuple[int, tuple[Any, Any] | None, tuple[Any, Any] | None]  # rows, (first seq, prev_hash), (last seq, hash)
COPY_BLOCK = 1 << 20


def plan(conn: Any, filters: AuditFilter, fmt: str, jobs: int | None, *, parallel_from: int = PARALLEL_FROM,
         min_range: int = MIN_RANGE) -> Ranges | None:
    """The ranges workers would write, or None when this export is written in one process:
    XLSX, a unit filter, one job, or fewer than ``parallel_from`` events."""
    jobs = default_jobs() if jobs is None else jobs
    if fmt not in HEADERS or filters.unit is not None or jobs < 2:
        return None
    where, params = filters.where(conn.dialect)
    cursor = run(conn, f"SELECT count(*), max(seq) FROM audit_events{where}", params)
    try:
        count, last_seq = cursor.fetchone()
    finally:
        cursor.close()
    if not count or count < max(parallel_from, 2):
        return None
    return ranges(int(last_seq), jobs, min_range)


def export(db: Database, parts: Ranges, filters: AuditFilter, fmt: str, path: str | Path, tz: tzinfo, *,
           jobs: int | None, created_at: datetime, chain_head: dict[str, Any] | None,
           progress: Callable[[int], Any] | None = None, method: str | None = None,
           checkpoint: dict[str, Any] | None = None) -> Manifest:
    """Write the export and its manifest from ``parts`` (see `plan`), as `export_events` would."""
    target = check_output(path)
    tally = Tally(progress)
    labels = ExportLabels()
    if fmt == "csv":  # read once here and handed to every worker: each part is labelled alike
        with db.read() as conn:
            labels = ExportLabels.load(conn, case_id=filters.case_id, workflow=filters.workflow)
    with atomic_files(target, manifest_path(target)) as (tmp, tmp_manifest):
        files = [tmp.with_name(f"{tmp.name}.{k}") for k in range(len(parts))]
        try:
            workers = min(default_jobs() if jobs is None else jobs, len(parts))
            with worker_pool(workers, method or start_method(), __name__) as pool, open(tmp, "wb") as raw:
                pending = submit_all(pool, write_part, [(db.url, filters, fmt, tz, low, high, str(file), labels)
                                                        for (low, high), file in zip(parts, files, strict=True)])
                out = HashedFile(raw)
                out.write(HEADERS[fmt])
                for waiting, file in zip(pending, files, strict=True):
                    rows, first, last = waiting.result()  # a worker's error is the export's
                    with open(file, "rb") as part:
                        while block := part.read(COPY_BLOCK):
                            out.write_bytes(block)
                    file.unlink()
                    tally.take(rows, first, last)
        finally:
            for file in files:
                file.unlink(missing_ok=True)
        manifest = build_manifest(target, fmt, tz, created_at, filters.to_json(tz), filters.whole_chain, chain_head,
                                  tally, out.hexdigest(), checkpoint)
        tmp_manifest.write_text(dumps(manifest), encoding="utf-8")
    return manifest


def write_part(url: str, filters: AuditFilter, fmt: str, tz: tzinfo, low: int | None, high: int, file: str,
               labels: ExportLabels | None = None) -> Part:
    """The matching events with sequence numbers from ``low`` (None: any) to ``high``, written
    as lines of ``fmt`` (CSV labelled from ``labels``) into ``file``, on a connection of this
    process's own."""
    db = Database(url)
    rows, first, last = 0, None, None
    try:
        with db.read() as conn:
            where, params = filters.where(conn.dialect)
            where += (" AND " if where else " WHERE ") + ("seq <= ?" if low is None else "seq >= ? AND seq <= ?")
            params += [high] if low is None else [low, high]
            lines = batch_lines(fmt, tz, labels)
            with closing(AuditEvents(conn, where, params)) as events, open(file, "wb") as out, paused_gc():
                for b in events.batches():
                    if not len(b):
                        continue
                    first = first or (b.seq[0], b.prev_hash[0])
                    last = (b.seq[-1], b.hash[-1])
                    rows += len(b)
                    out.write(lines(b).encode("utf-8"))
    finally:
        db.dispose()
    return rows, first, last
