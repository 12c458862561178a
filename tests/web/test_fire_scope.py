"""`POST …/fire` checks visibility inside the step's own transaction (`App.fire(seen=…)`):
another unit's case stays 404 before anything else — before a stale or malformed If-Match
(412 for a case the caller sees), before the trigger's checks — and nothing is written."""

from __future__ import annotations

import pytest

from tests.conftest import row_counts
from tests.web.conftest import Office


@pytest.mark.parametrize("if_match", [None, '"0"', '"abc"', "*"])
def test_another_units_case_is_404_whatever_the_if_match(office: Office, if_match: str | None) -> None:
    before = row_counts(office.url)
    c = office.client()
    headers = {**office.token("scj"), **({"If-Match": if_match} if if_match is not None else {})}
    for trigger in ("accept", "report", "no_such_trigger"):
        r = c.post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": trigger}, headers=headers)
        assert (r.status_code, r.json()["error"]) == (404, "not_found"), r.text
        assert r.json()["message"] == f"no case {office.case_id}"
    assert row_counts(office.url) == before


@pytest.mark.parametrize(("if_match", "status"), [('"0"', 412), ('"abc"', 412)])
def test_a_case_the_caller_sees_gets_412_for_a_bad_if_match(office: Office, if_match: str, status: int) -> None:
    before = row_counts(office.url)
    r = office.client().post(f"/api/v1/cases/{office.case_id}/fire", json={"trigger": "accept"},
                             headers={**office.token("fgj"), "If-Match": if_match})
    assert (r.status_code, r.json()["error"]) == (status, "conflict"), r.text
    assert row_counts(office.url) == before
