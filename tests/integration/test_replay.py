"""Every case, rebuilt from its audit events under its pinned definition, equals the stored case."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from duban.clock import ManualClock
from duban.commands.demo import run_demo
from duban.service.app import App
from duban.storage.database import Database
from tests.conftest import Duban

TZ = ZoneInfo("Asia/Shanghai")


def all_cases_replay(url: str) -> dict[int, list[str]]:
    app = App(Database(url), ManualClock(datetime.combine(date(2030, 1, 1), time(), TZ)), TZ)
    try:
        return {c["id"]: app.replay(c["id"]) for c in app.list_cases()}
    finally:
        app.db.dispose()


class TestReplay:
    def test_the_demo_year_replays_exactly(self, tmp_path: Path) -> None:
        """All nine demo cases — escalated, rejected, held accountable — replay to their stored state."""
        url = f"sqlite:///{tmp_path / 'demo.db'}"
        run_demo(url, TZ, echo=None)
        result = all_cases_replay(url)
        assert len(result) == 9
        assert result == {key: [] for key in result}

    def test_every_workflow_and_shared_operation_replays(self, duban: Duban) -> None:
        """Complaints with 退单/改派 and revisits, opinions, proposals, suspensions, extensions, milestones and
        report periods replay exactly."""
        def fire(case_id: int, *args: str, now: str, actor: str) -> None:
            duban.ok("case", "fire", str(case_id), *args, now=now, actor=actor)

        def open_(*args: str, now: str) -> int:
            return int(duban.ok("case", "open", *args, "--json", now=now, actor="wang").json["id"])

        c = open_("complaint", "--title", "t", "--unit", "区发改局", now="2026-11-02T09:00")
        fire(c, "dispatch", now="2026-11-02T10:00", actor="wang")
        fire(c, "return", "--note", "非本单位", now="2026-11-02T11:00", actor="fgj")
        fire(c, "dispatch", "--set", "unit=区市场监管局", now="2026-11-03T09:00", actor="wang")
        fire(c, "accept", now="2026-11-03T10:00", actor="scj")
        fire(c, "reply", now="2026-11-04T10:00", actor="scj")
        fire(c, "revisit", "--set", "satisfied=no", now="2026-11-04T15:00", actor="wang")
        o = open_("opinion", "--title", "舆情", "--unit", "区发改局", now="2026-11-21T08:00")
        duban.ok("tick", now="2026-11-21T14:00")
        fire(o, "hold_press_conference", now="2026-11-21T15:00", actor="fgj")
        s = open_("supervision", "--title", "s", "--unit", "区发改局", "--due", "5wd", now="2026-09-30T09:00")
        fire(s, "suspend", "--note", "等待", now="2026-09-30T10:00", actor="wang")
        fire(s, "resume", "--note", "继续", now="2026-10-12T10:00", actor="wang")
        fire(s, "request_extension", "--set", "until=2026-11-30", "--note", "需要", now="2026-10-12T11:00", actor="fgj")
        fire(s, "approve_extension", now="2026-10-12T12:00", actor="wang")
        p = open_("proposal", "--title", "p", "--unit", "区发改局", now="2026-03-10T09:00")
        duban.ok("tick", now="2026-07-30T09:00")  # nobody accepted: red card, expire, 通报
        fire(p, "reply", now="2026-07-31T09:00", actor="fgj")
        fire(p, "feedback", "--set", "satisfied=no", now="2026-08-03T09:00", actor="wang")
        m = open_("supervision", "--title", "m", "--unit", "区发改局", "--due", "2026-09-30", "--milestone",
                  "2026-04-30=方案", "--milestone", "2026-06-30=开工", "--report", "monthly:5", now="2026-03-02T09:00")
        fire(m, "accept", now="2026-03-02T10:00", actor="fgj")
        fire(m, "report_progress", now="2026-04-01T10:00", actor="fgj")
        duban.ok("tick", now="2026-05-06T09:00")
        fire(m, "complete_milestone", "--set", "milestone=1", now="2026-05-06T10:00", actor="fgj")
        duban.ok("tick", now="2026-12-31T09:00")
        fire(s, "hold_accountable", "--set", "measure=通报批评", "--note", "逾期未办", now="2026-12-31T10:00", actor="li")
        result = all_cases_replay(duban.db_url)
        assert sorted(result) == sorted([c, o, s, p, m])
        assert result == {key: [] for key in result}

    def test_a_change_the_audit_log_does_not_explain_is_found(self, duban: Duban) -> None:
        """A case row edited behind the engine's back no longer matches its replay."""
        from sqlalchemy import create_engine, text

        case_id = int(duban.ok("case", "open", "supervision", "--title", "t", "--unit", "区发改局", "--due", "10wd",
                               "--json", now="2026-11-02T09:00", actor="wang").json["id"])
        engine = create_engine(duban.db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE cases SET state='verified', escalation_level=0 WHERE id=:id"), {"id": case_id})
        engine.dispose()
        diffs = all_cases_replay(duban.db_url)[case_id]
        assert any(d.startswith("state: stored 'verified', replayed 'assigned'") for d in diffs)
