"""A page of 50 cases costs a fixed number of SQL statements, not one (or more) per case:
the board's 督办台账 page and `GET /api/v1/cases` (issue 16: no N+1 queries).

Every statement the driver runs is counted, whichever path sent it: Core statements
(SQLAlchemy's ``before_cursor_execute`` event) and the fixed SQL the storage layer sends
to the DBAPI cursor itself (SQLite's own trace callback on every pooled connection, which
sees both). Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT …) and PRAGMAs are not
counted. The bounds are fixed, and a page of 50 must not cost more than a page of 5 plus a
few: what grows with the page is the N+1 this test is here to catch. (A count cannot see
a statement that reads every case to show 50 — that cost is `bench reads`' to show.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.web.conftest import Office, make_office

# Statements for one page, whatever its size. Measured 2026-12-03 with 60 cases: the ledger page
# 11 (session, user, the page's cases, how many match, their timers, their decisions, the unit
# directory for the filter form, the unread-notice badge), the API page 4, the to-do 5 (the
# pinned versions its states come from, then its cases); the bounds leave room
# for a statement or two more, never for one per case.
LEDGER_BOUND, API_BOUND = 14, 6
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


class Counter:
    def __init__(self) -> None:
        self.driver: list[str] = []
        self.core = 0

    @property
    def statements(self) -> list[str]:
        return [s for s in self.driver if not s.lstrip().upper().startswith(_CONTROL)]


@contextmanager
def counting(o: Office) -> Iterator[Counter]:
    """Count what the office's database runs inside the block."""
    engine = o.app.db.engine
    found = Counter()
    on = [True]

    def trace(sql: str) -> None:
        if on[0]:
            found.driver.append(sql)

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        dbapi_conn.set_trace_callback(trace)

    def core(*_args: Any) -> None:
        if on[0]:
            found.core += 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", core)
    o.app.db.dispose()  # pooled connections are checked out afresh, each with the trace
    try:
        yield found
    finally:
        on[0] = False
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", core)


@pytest.fixture
def office(sqlite_url: str) -> Iterator[Office]:
    o = make_office(sqlite_url)
    for i in range(60):
        o.app.open_case("supervision", title=f"重点工作{i}", lead_unit="区发改局" if i % 2 else "区财政局",
                        co_units=["区市场监管局"] if i % 3 == 0 else [], due="10wd", values={}, actor="wang")
    yield o
    for c in o.clients:
        c.close()
    o.app.db.dispose()


def _page_statements(o: Office, get: Any, limit: int) -> Counter:
    get(limit)  # once untimed: the workflow definitions and the pinned versions are cached after the first read
    with counting(o) as found:
        response = get(limit)
    assert response.status_code == 200, response.text
    return found


class TestPageStatements:
    def test_the_ledger_page_costs_a_fixed_number_of_statements(self, office: Office) -> None:
        """GET /cases (the board's 督办台账, 50 a page) runs at most PAGE_BOUND statements, and no more
        than a page of 5 does plus a few (the page size is not what it costs)."""
        client = office.signed_in("wang")
        fifty = _page_statements(office, lambda n: client.get("/cases"), 50)
        assert len(fifty.statements) <= LEDGER_BOUND, fifty.statements
        assert 0 < fifty.core <= len(fifty.driver)  # the trace sees the Core statements too

    def test_the_api_page_costs_a_fixed_number_of_statements(self, office: Office) -> None:
        """GET /api/v1/cases?limit=50 runs at most PAGE_BOUND statements, about what limit=5 runs."""
        client = office.client()
        headers = office.token("wang")

        def get(n: int) -> Any:
            return client.get(f"/api/v1/cases?limit={n}", headers=headers)

        assert len(get(50).json()["items"]) == 50
        fifty, five = _page_statements(office, get, 50), _page_statements(office, get, 5)
        assert len(fifty.statements) <= API_BOUND, fifty.statements
        assert len(fifty.statements) <= len(five.statements) + 2, (fifty.statements, five.statements)

    def test_a_to_do_page_of_50_costs_a_fixed_number_of_statements(self, office: Office) -> None:
        """GET /api/v1/todo for a unit with 70 cases to sign for (a page of 50 and a next one) runs
        at most API_BOUND statements, and no more than a page of 5 plus a few; the board's
        我的待办 page at most LEDGER_BOUND."""
        for i in range(40):
            office.app.open_case("supervision", title=f"待签收{i}", lead_unit="区发改局", co_units=[], due="10wd",
                                 values={}, actor="wang")
        client = office.client()
        headers = office.token("fgj")

        def get(n: int) -> Any:
            return client.get(f"/api/v1/todo?limit={n}", headers=headers)

        first = get(50)
        assert len(first.json()) == 50 and "X-Next-Cursor" in first.headers
        fifty, five = _page_statements(office, get, 50), _page_statements(office, get, 5)
        assert len(fifty.statements) <= API_BOUND, fifty.statements
        assert len(fifty.statements) <= len(five.statements) + 2, (fifty.statements, five.statements)
        board = office.signed_in("fgj")
        page = _page_statements(office, lambda n: board.get("/"), 50)
        assert len(page.statements) <= LEDGER_BOUND, page.statements

    def test_the_to_do_costs_a_fixed_number_of_statements(self, office: Office) -> None:
        """GET /api/v1/todo for a unit with 30 cases to sign for runs at most API_BOUND statements."""
        client = office.client()
        headers = office.token("fgj")
        assert len(client.get("/api/v1/todo", headers=headers).json()) >= 30
        found = _page_statements(office, lambda n: client.get("/api/v1/todo", headers=headers), 0)
        assert len(found.statements) <= API_BOUND, found.statements
