"""A session's idle clock is written at most once a minute (`sessions.TOUCH_STEP`): a page
view within the minute reads the session and writes nothing, and the idle limit counts from
the last recorded request, so a session ends 29 to 30 minutes after its last request —
up to a minute early, never late. The clock is the office's manual one: no test sleeps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from duban.storage.tables import SESSIONS
from tests.web.conftest import START, Office


def _session(office: Office) -> tuple[datetime, str | None]:
    with office.app.db.read() as conn:
        row = conn.execute(select(SESSIONS.c.last_seen_at, SESSIONS.c.end_reason)).one()
    return row.last_seen_at, row.end_reason


def test_a_request_within_the_minute_writes_nothing(office: Office) -> None:
    c = office.signed_in("fgj")
    office.clock.advance(seconds=59)
    assert c.get("/").status_code == 200
    assert _session(office) == (START, None)  # read, not written
    office.clock.advance(seconds=1)
    assert c.get("/").status_code == 200
    assert _session(office)[0] == office.clock.now()  # a minute on: recorded


def test_the_idle_limit_counts_from_the_last_recorded_request(office: Office) -> None:
    c = office.signed_in("fgj")
    office.clock.advance(minutes=1)
    assert c.get("/").status_code == 200  # recorded at START + 1 min
    recorded = office.clock.now()
    office.clock.advance(seconds=50)
    assert c.get("/").status_code == 200  # within the minute: not recorded
    assert _session(office)[0] == recorded
    office.clock.advance(minutes=29, seconds=10)
    assert c.get("/").status_code == 200  # exactly 30 min after the recorded one: still live, and recorded now
    office.clock.advance(minutes=30, seconds=1)
    assert c.get("/").status_code == 303
    assert _session(office)[1] == "idle"


def test_it_ends_at_most_a_minute_early(office: Office) -> None:
    c = office.signed_in("fgj")
    office.clock.advance(seconds=59)
    assert c.get("/").status_code == 200  # the last request, not recorded
    office.clock.advance(minutes=29, seconds=2)  # 29 min 2 s after it, 30 min 1 s after the recorded one
    assert c.get("/").status_code == 303
    assert _session(office)[1] == "idle"


def test_an_api_call_with_the_cookie_follows_the_same_minute(office: Office) -> None:
    c = office.signed_in("wang")
    office.clock.advance(seconds=30)
    assert c.get("/api/v1/me").status_code == 200
    assert _session(office) == (START, None)
    office.clock.advance(minutes=30, seconds=1)
    assert c.get("/api/v1/me").status_code == 401
