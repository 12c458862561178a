"""`cases.next_due_at` (migration 0011): the nearest running deadline, stored with every case
so 我的待办's order is an index's. It must be what the board shows as nearest — the soonest
`due_at` among the running deadlines of the case as shown, none when closed or none runs —
after every kind of step, on SQLite and PostgreSQL, and migration 0011 fills it for cases
written before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import MIGRATIONS, Database
from duban.storage.tables import CASES

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def app(any_db_url: str) -> Iterator[App]:
    a = App(Database(any_db_url), ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ)), TZ)
    a.init()
    a.add_user("wang", "office", None)
    a.add_user("fgj", "unit", "区发改局")
    yield a
    a.db.dispose()


def stored(app: App, case_id: int) -> datetime | None:
    with app.db.read() as conn:
        value: datetime | None = conn.execute(select(CASES.c.next_due_at).where(CASES.c.id == case_id)).scalar_one()
        return value


def shown_nearest(app: App, case_id: int) -> datetime | None:
    case = app.show(case_id)
    if case["closed_at"] is not None:
        return None
    running = [datetime.fromisoformat(d["due_at"]) for d in case["deadlines"] if d["status"] == "running"]
    return min(running, default=None)


def test_next_due_follows_every_kind_of_step(app: App) -> None:
    clock = app.clock
    assert isinstance(clock, ManualClock)
    case_id = int(app.open_case("supervision", title="建立政策问题台帐", lead_unit="区发改局", co_units=[],
                                due="10wd", values={}, actor="wang")["id"])
    seen = []

    def check() -> None:
        expected = shown_nearest(app, case_id)
        assert stored(app, case_id) == expected
        seen.append(expected)

    check()  # opened: 签收时限 (1 working day) before 办结时限
    app.fire(case_id, "accept", actor="fgj")
    check()  # signed for: the 签收时限 ended, the 办结时限 is the nearest
    app.fire(case_id, "suspend", actor="wang", note="等待上级批复")
    check()  # suspended: the paused deadline's instant, as the board shows it
    clock.advance(days=3)
    app.fire(case_id, "resume", actor="wang", note="已批复")
    check()  # resumed: the deadline moved by the pause
    app.fire(case_id, "request_extension", actor="fgj", note="需协调", values={"until": "2026-05-29"})
    app.fire(case_id, "approve_extension", actor="wang", note="同意")
    check()  # extended
    app.fire(case_id, "report", actor="fgj", note="已办结")
    check()  # reported: the unit's deadlines ended, none runs while the office checks
    app.fire(case_id, "verify", actor="wang", note="核实")
    check()  # closed: none
    assert seen[0] is not None and seen[0] < seen[1]
    assert seen[-1] is None
    assert None not in seen[:5] and seen[3] > seen[2] and seen[4] > seen[3]  # the pause, then the extension moved it


def test_migration_0011_fills_it_for_cases_written_before(app: App) -> None:
    ids = [int(app.open_case("supervision", title=f"事项{i}", lead_unit="区发改局", co_units=[], due="10wd",
                             values={}, actor="wang")["id"]) for i in range(3)]
    app.fire(ids[1], "accept", actor="fgj")
    app.fire(ids[2], "suspend", actor="wang", note="暂停")
    expected = {i: shown_nearest(app, i) for i in ids}
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with app.db.engine.begin() as conn:  # back to before 0011, and up again: its backfill
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
        command.upgrade(cfg, "head")
    assert {i: stored(app, i) for i in ids} == expected
    assert None not in expected.values() and expected[ids[0]] != expected[ids[1]]


def test_the_to_do_page_walks_the_index_on_sqlite(sqlite_url: str) -> None:
    """SQLite, with no statistics, would filter the open cases by another index and sort them
    all; the to-do's first part is told to walk `ix_cases_open_next_due_at` and stop at the page."""

    from duban.access.service import User
    from duban.web import query

    a = App(Database(sqlite_url), ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ)), TZ)
    a.init()
    a.add_user("wang", "office", None)
    a.add_user("fgj", "unit", "区发改局")
    for i in range(3):
        a.open_case("supervision", title=f"事项{i}", lead_unit="区发改局", co_units=[], due="10wd", values={}, actor="wang")
    sent = _statements(a)
    try:
        for user in (User("fgj", "unit", "区发改局"), User("wang", "office", None)):
            sent.clear()
            lines, _ = query.todo_page(a, user)
            if user.role == "unit":
                assert len(lines) == 3  # 签收 on each
            _assert_walks(a, sent, "ix_cases_open_next_due_at")
    finally:
        a.db.dispose()


def _statements(a: App) -> list[tuple[str, object]]:
    """Every statement the driver runs from now on, with its parameters."""
    from sqlalchemy import event

    sent: list[tuple[str, object]] = []
    event.listen(a.db.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, params, context, many: sent.append((statement, params)))
    return sent


def _assert_walks(a: App, sent: list[tuple[str, object]], index: str) -> None:
    """The hinted statement among `sent` reads along `index`, in its order (no sort)."""
    statement, params = next((s, p) for s, p in sent if "INDEXED BY" in s)
    with a.db.engine.connect() as conn:
        plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
    assert f"USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


def test_an_overdue_page_walks_the_overdue_cases_index(sqlite_url: str) -> None:
    """`case list --overdue --unit U --limit N` reads the overdue cases along
    `ix_cases_overdue_id` (only open cases are overdue: the newest), not the unit's cases from
    the oldest; and it lists exactly the overdue ones."""

    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))
    a = App(Database(sqlite_url), clock, TZ)
    a.init()
    a.add_user("wang", "office", None)
    for unit in ("区发改局", "区住建局"):
        a.add_unit(unit)
    late = [a.open_case("supervision", title=f"急件{i}", lead_unit="区发改局", co_units=[], due="2026-03-04",
                        values={}, actor="wang")["id"] for i in range(2)]
    on_time = a.open_case("supervision", title="缓件", lead_unit="区发改局", co_units=[], due="2026-06-30", values={},
                          actor="wang")["id"]
    a.add_user("fgj", "unit", "区发改局")
    a.transition(on_time, "accept", actor="fgj")  # signed for in time, due in June: not overdue
    a.open_case("supervision", title="他局急件", lead_unit="区住建局", co_units=[], due="2026-03-04", values={},
                actor="wang")
    clock.advance(days=5)
    a.tick()
    sent = _statements(a)
    try:
        assert [c["id"] for c in a.list_cases(unit="区发改局", overdue=True, limit=50)] == late
        _assert_walks(a, sent, "ix_cases_overdue_id")
    finally:
        a.db.dispose()
