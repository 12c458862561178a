"""The header's 通知 count is the signed-in person's unread notices, counted by the database
(`duban.service.receipts.unread_count`): the same number as `GET /api/v1/notices?unread=true`,
per reader, whatever the other people of the unit have read."""

from __future__ import annotations

import re

from duban.access.service import User
from duban.web.inbox import my_notices, unread
from tests.web.conftest import Office, csrf_of


def _header_count(html: str) -> int:
    found = re.search(r'通知 <span class="count">(\d+)</span>', html)
    return int(found.group(1)) if found else 0


def test_the_header_counts_each_readers_unread_notices(office: Office) -> None:
    for _ in range(2):
        assert office.client().post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "urge"},
                                    headers=office.token("wang")).status_code == 200
    office.app.add_user("fgj2", "unit", "区发改局")
    fgj, fgj2 = User("fgj", "unit", "区发改局"), User("fgj2", "unit", "区发改局")
    c = office.signed_in("fgj")
    assert _header_count(c.get("/").text) == 2 == unread(office.app, fgj)
    first = my_notices(office.app, fgj)[0]["id"]
    assert c.post(f"/notices/{first}/read", data={"csrf_token": csrf_of(c, "/notices")}).status_code == 303
    assert _header_count(c.get("/").text) == 1 == len(c.get("/api/v1/notices?unread=true").json())
    assert unread(office.app, fgj2) == 2  # another reader of the same unit: still unread for them
    assert unread(office.app, User("scj", "unit", "区市场监管局")) == 0  # not addressed to that unit
    assert unread(office.app, User("wang", "office", None)) == sum(
        not n["read"] for n in my_notices(office.app, User("wang", "office", None)))
