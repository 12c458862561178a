"""`duban calendar import`: the calendar rows and every recompute they cause, whole.

SPEC §16 "Calendar imports are whole": the days, the year marked official and each case's
recomputed deadlines commit in one transaction or not at all, so an import that fails on
its fifth case leaves the calendar and the first four cases as they were. A deadline the
new days do not move (same instant, same approximate flag, same timers) writes nothing:
no audit event says "recomputed" about a deadline that stayed put.

Only a YAML file (a whole ``year:`` with its ``source``) makes its year official; a CSV of
single days is a local override (`duban.exports.calendar_files`), so the years it touches
stay approximate unless their schedule was loaded before.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from duban.errors import DubanError
from duban.exports.calendar_files import CalendarImport, read_calendar_file
from duban.storage import calendar_store, listing
from duban.storage import repository as repo
from duban.storage.tables import TIMERS

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from duban.engine.model import Case, Outcome
    from duban.service.app import App


class RecomputeFailed(DubanError):
    """A case's deadline could not be recomputed with the new days (exit 1): nothing imported."""


def import_calendar(app: App, path: str | Path) -> dict[str, Any]:
    imported = read_calendar_file(path)
    now = app.clock.now()
    try:
        with app.db.write() as conn:
            calendar_store.store(conn, imported, now)
            app._engine = None  # built again from this transaction's calendar
            moved = _recompute(app, conn, imported, now)
    finally:
        app._engine = None  # committed or rolled back: the next step reads the calendar again
    return {"years": list(imported.years), "official": imported.official,
            "official_years": list(imported.years) if imported.official else [],
            "source": imported.source, "days": len(imported.days), "recomputed_cases": moved}


def _recompute(app: App, conn: Connection, imported: CalendarImport, now: datetime) -> list[int]:
    kind = "imported" if imported.official else "local overrides imported"
    reason = f"working-day calendar {', '.join(map(str, imported.years))} {kind} ({imported.source})"
    timers = repo.approximate_pending(conn)
    ids = sorted({c.id for c in listing.cases(conn, open_only=True) if c.id is not None
                  and any(d.approximate and d.status != "done" for d in c.deadlines.values())} | set(timers))
    moved = []
    for case_id in ids:
        case = app._case(conn, case_id)
        before = {name: (d.due_at, d.approximate) for name, d in case.deadlines.items()}
        try:
            out = app.engine(conn).recompute(app.workflow_of(conn, case), case, now, reason,
                                             frozenset(timers.get(case_id, ())))
        except (OverflowError, ValueError) as exc:
            raise RecomputeFailed(f"case {case_id}: its deadlines cannot be recomputed with these days ({exc}); "
                                  "nothing was imported") from None
        if out is not None and _drop_unmoved(conn, out, before):
            repo.commit_outcome(conn, out, now)
            moved.append(case_id)
    return moved


def _drop_unmoved(conn: Connection, out: Outcome, before: dict[str, tuple[datetime, bool]]) -> bool:
    """Remove from ``out`` each deadline whose instant, flag and pending timers are unchanged;
    whether anything is left to write."""
    case: Case = out.case
    pending: dict[str, set[tuple[int, datetime, bool]]] = {}
    rows = conn.execute(select(TIMERS.c.deadline, TIMERS.c.rung, TIMERS.c.due_at, TIMERS.c.approximate)
                        .where(TIMERS.c.case_id == case.id, TIMERS.c.status == "pending"))
    for r in rows:
        pending.setdefault(r.deadline, set()).add((r.rung, r.due_at, bool(r.approximate)))
    unmoved = set()
    for name in {str(e.data.get("deadline")) for e in out.events}:
        d = case.deadlines[name]
        armed = {(t.rung, t.due_at, t.approximate) for t in out.arm if t.deadline == name}
        rearmed = name in out.cancel
        if (d.due_at, d.approximate) == before[name] and (not rearmed or armed == pending.get(name, set())):
            unmoved.add(name)
    out.events[:] = [e for e in out.events if e.data.get("deadline") not in unmoved]
    out.cancel[:] = [n for n in out.cancel if n not in unmoved]
    out.arm[:] = [t for t in out.arm if t.deadline not in unmoved]
    return bool(out.events)
