"""For each shipped workflow: every deadline's every rung (warning, red card, 督办, 通报) fires exactly once
when the case is left to lapse through each of its states, on a manual clock."""

from __future__ import annotations

from collections import Counter

import pytest

from duban.workflows import Catalog
from tests.conftest import Duban

# (command, args, now): "open" opens the case; "tick" moves the clock; anything else is a trigger.
SCENARIOS: dict[str, list[tuple[str, tuple[str, ...], str, str]]] = {
    "supervision": [
        ("open", ("--due", "2026-11-30"), "2026-11-02T09:00", "wang"),
        ("tick", (), "2026-11-04T09:00", ""),                      # sign-for missed
        ("accept", (), "2026-11-04T10:00", "fgj"),
        ("tick", (), "2026-12-31T09:00", ""),                      # the whole due ladder
    ],
    "complaint": [
        ("open", (), "2026-11-02T09:00", "wang"),
        ("tick", (), "2026-11-02T12:00", ""),                      # not dispatched within 2 h
        ("dispatch", (), "2026-11-02T13:00", "wang"),
        ("tick", (), "2026-11-04T09:00", ""),                      # not signed within 1 wd
        ("accept", (), "2026-11-04T10:00", "fgj"),
        ("tick", (), "2026-12-15T09:00", ""),                      # reply ladder, expire → overdue
        ("reply", (), "2026-12-15T10:00", "fgj"),
        ("tick", (), "2026-12-18T09:00", ""),                      # revisit not made within 1 wd
        ("revisit", ("--set", "satisfied=no"), "2026-12-18T10:00", "wang"),
        ("tick", (), "2027-01-31T09:00", ""),                      # 重办 ladder (+10 wd lands in 2027)
    ],
    "rectification": [
        ("open", ("--due", "2026-12-31"), "2026-11-02T09:00", "wang"),
        ("tick", (), "2026-11-30T09:00", ""),                      # 整改方案 ladder
        ("submit_plan", (), "2026-11-30T10:00", "fgj"),
        ("tick", (), "2027-02-01T09:00", ""),                      # 整改 due ladder
    ],
    "opinion": [
        ("open", (), "2026-11-21T08:00", "wang"),                  # a Saturday: the hours still run
        ("tick", (), "2026-11-23T09:00", ""),
    ],
    "proposal": [
        ("open", (), "2026-03-10T09:00", "wang"),
        ("tick", (), "2026-07-01T09:00", ""),                      # 3-month reply ladder
        ("reply", (), "2026-07-01T10:00", "fgj"),
        ("feedback", ("--set", "satisfied=no"), "2026-07-02T09:00", "wang"),
        ("tick", (), "2026-09-30T09:00", ""),                      # 1-month 再办理 ladder
    ],
}


def test_every_shipped_workflow_has_a_scenario() -> None:
    """Adding a workflow file means adding its lapse scenario here."""
    assert sorted(SCENARIOS) == Catalog().names()


@pytest.mark.parametrize("workflow", sorted(SCENARIOS))
def test_every_rung_of_every_deadline_fires_once(duban: Duban, workflow: str) -> None:
    """Each (deadline, rung) of the definition appears in exactly one escalate event by system."""
    case_id = 0
    for command, args, now, actor in SCENARIOS[workflow]:
        if command == "open":
            run = duban.ok("case", "open", workflow, "--title", "测试", "--unit", "区发改局", *args, "--json",
                           now=now, actor=actor)
            case_id = run.json["id"]
        elif command == "tick":
            duban.ok("tick", now=now)
        else:
            duban.ok("case", "fire", str(case_id), command, *args, now=now, actor=actor)
    history = duban.ok("case", "history", str(case_id), "--json").json
    rungs = [e for e in history if e["action"] in ("escalate", "overtaken")]  # overtaken: fired, sent nothing
    fired = Counter((e["data"]["deadline"], e["data"]["rung"]) for e in rungs)
    assert all(e["actor"] == "system" for e in rungs)
    spec = Catalog().latest(workflow).spec
    expected = {(name, i) for name in spec.deadlines for i in range(len(spec.rungs(name)))}
    assert set(fired) == expected
    assert max(fired.values()) == 1
    # each tick here lets a ladder lapse whole: only a rung no later rung overtook sends its notices
    notices = duban.ok("notice", "list", "--case", str(case_id), "--json").json
    sent = [r for e in rungs if e["action"] == "escalate" for r in e["data"]["recipients"]]
    assert sorted(n["recipient"] for n in notices) == sorted(sent) and sent
    assert all(e["data"]["notice"] is None and e["data"]["recipients"] == [] for e in rungs if e["action"] == "overtaken")
