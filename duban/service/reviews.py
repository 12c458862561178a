"""The accountability-review use cases: audit exports and the three reports.

`Reviews` wraps an `App` (its database, clock, zone and pinned workflows) and only reads:
each use case opens one read transaction, reads the clock once and hands what it read to
a pure builder (`exporting`, `reports.units`, `reports.bulletin`,
`reports.accountability`). The period reports read their period's cases a batch at a time
and the builders fold each batch in, so they cost the period, not the office (issue 16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from duban.errors import NotFoundError, UsageError
from duban.logconfig import get_logger
from duban.reports import Report
from duban.reports.facts import HOLD, RUNG_ACTIONS, CaseView, Events
from duban.reports.period import Period
from duban.storage import report_reads

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from duban.exports.events import AuditFilter
    from duban.exports.manifest import Manifest
    from duban.service.app import App

log = get_logger("duban")


class Reviews:
    """Exports and reports of one office's duban."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _views(self, conn: Connection, *, unit: str | None = None) -> list[CaseView]:
        """Every case (or a unit's), each with its pinned workflow."""
        return [CaseView(c, self.app.workflow_of(conn, c)) for c in report_reads.cases(conn, unit=unit)]

    def _period_batches(self, conn: Connection, period: Period) -> Iterator[tuple[list[CaseView], Events]]:
        """The cases active in the period (a superset the builders narrow), a batch at a time,
        each with its escalations and decisions up to the period's end."""
        for cases in report_reads.period_cases(conn, period.start, period.end):
            views = [CaseView(c, self.app.workflow_of(conn, c)) for c in cases]
            yield views, report_reads.decisions(conn, RUNG_ACTIONS, HOLD, [v.id for v in views], before=period.end)

    def count_audit(self, filters: AuditFilter) -> int:
        """How many events an export with these filters holds (for a progress bar)."""
        from duban.exports.events import count_events

        with self.app.db.read() as conn:
            return count_events(conn, filters)

    def export_audit(self, path: str | Path, fmt: str, filters: AuditFilter, *,
                     progress: Callable[[int], Any] | None = None, jobs: int | None = 1,
                     parallel_from: int | None = None) -> Manifest:
        """Stream the filtered audit events to ``path``, with a manifest beside it (SPEC §7);
        a large CSV or JSONL export over ``jobs`` worker processes (None: one per CPU; see
        `duban.exports.parallel_export`), from ``parallel_from`` events on (default its threshold)."""
        from duban.exports import parallel_export
        from duban.exports.events import chain_head, check_output, export_events, stream_events
        from duban.service.checkpoints import latest_checkpoint
        from duban.storage.checkpoints import record_export

        check_output(path)
        app = self.app
        threshold = {} if parallel_from is None else {"parallel_from": parallel_from, "min_range": 1}
        with app.db.read() as conn:
            filters.check(conn)
            head, created_at = chain_head(conn), app.clock.now()
            signed = latest_checkpoint(conn)  # the manifest carries it (SPEC §15)
            parts = parallel_export.plan(conn, filters, fmt, jobs, **threshold)
            if parts is None:
                manifest = export_events(
                    stream_events(conn, filters), fmt, path, app.tz, filters=filters.to_json(app.tz),
                    whole_chain=filters.whole_chain, chain_head=head, created_at=created_at, progress=progress,
                    checkpoint=signed,
                )
        if parts is not None:
            manifest = parallel_export.export(app.db, parts, filters, fmt, path, app.tz, jobs=jobs,
                                              created_at=created_at, chain_head=head, progress=progress,
                                              checkpoint=signed)
        with app.db.write() as conn:  # `scheduler run --key` signs a checkpoint after each export
            record_export(conn, created_at, fmt, manifest.rows, head["seq"] if head else None)
        log.info("audit.exported", file=str(path), format=fmt, rows=manifest.rows)
        return manifest

    def units(self, period: Period, settings_file: str | None = None) -> Report:
        """Per lead unit: cases, timeliness, escalations, measures, grade and rank (SPEC §10)."""
        from duban.reports import grading, units

        bands = grading.load_bands(settings_file)
        now = self.app.clock.now()
        with self.app.db.read() as conn:
            return units.build_batches(self._period_batches(conn, period), period, now, bands)

    def bulletin(self, kind: str, day: date | None = None) -> Report:
        """The 通报 of the week, month or quarter containing ``day`` (default: today, office zone)."""
        from duban.reports import bulletin
        from duban.reports.period import containing

        now = self.app.clock.now()
        period = containing(kind, day or now.astimezone(self.app.tz).date(), self.app.tz)
        with self.app.db.read() as conn:
            return bulletin.build_batches(self._period_batches(conn, period), period, now)

    def accountability(self, *, case_id: int | None = None, unit: str | None = None) -> Report:
        """The 问责专报 of one case, of a lead unit's cases, or of every case that needs one."""
        from duban.reports import accountability
        from duban.storage import repository as repo

        if case_id is not None and unit is not None:
            raise UsageError("give --case or --unit, not both")
        app, now = self.app, self.app.clock.now()
        with app.db.read() as conn:
            if case_id is not None:
                case = repo.load_case(conn, case_id)
                if case is None:
                    raise NotFoundError(f"--case {case_id}: no such case")
                views = [CaseView(case, app.workflow_of(conn, case))]
            else:
                if unit is not None and not report_reads.unit_known(conn, unit):
                    raise NotFoundError(f"--unit {unit}: no case or user has this unit")
                views = [v for v in self._views(conn, unit=unit)
                         if (unit is None or v.case.lead_unit == unit) and accountability.relevant(v, now)]
            calendar = app.engine(conn).calendar
            briefs = [accountability.case_brief(v, report_reads.timeline(conn, v.id), report_reads.notices(conn, v.id),
                                                now, calendar, app.tz) for v in views]
        covers = (f"案件 {case_id}《{views[0].case.title}》" if case_id is not None
                  else f"{unit}牵头的需问责案件" if unit is not None else "")
        return accountability.build(briefs, now, covers)
