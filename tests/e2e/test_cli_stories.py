"""The supervision stories of the issue, played through `duban` on a manual clock (--now):
users, opening, the main path, time passing (yellow card, overdue, escalation ladder),
accountability, reading, the audit chain and the working-day calendar."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from duban.engine.audit import verify_chain
from duban.service.directory import os_user
from tests.conftest import Duban, row_counts

DATA = Path(__file__).parent.parent / "unit" / "data"
OPENED = "2026-03-02T09:00"  # Monday; --due 15wd → Mon 2026-03-23 (SPEC §5.3 calendar, Qingming Apr 4-6)
DUE = "2026-03-23T23:59:59+08:00"


def open_case(duban: Duban, *extra: str, due: str = "15wd", now: str = OPENED) -> dict[str, Any]:
    return duban.ok("case", "open", "supervision", "--title", "建立未落实政策问题台帐", "--unit", "区发改局",
                    "--co-unit", "区财政局", "--due", due, *extra, "--json", now=now, actor="wang").json


def fire(duban: Duban, case_id: int, trigger: str, *extra: str, now: str, actor: str) -> dict[str, Any]:
    return duban.ok("case", "fire", str(case_id), trigger, *extra, "--json", now=now, actor=actor).json


def show(duban: Duban, case_id: int, now: str | None = None) -> dict[str, Any]:
    return duban.ok("case", "show", str(case_id), "--json", now=now).json


def tick(duban: Duban, now: str) -> list[str]:
    return list(duban.ok("tick", "--json", now=now).json["lines"])


def history(duban: Duban, case_id: int) -> list[dict[str, Any]]:
    return list(duban.ok("case", "history", str(case_id), "--json").json)


def system_events(duban: Duban, case_id: int) -> list[dict[str, Any]]:
    return [e for e in history(duban, case_id) if e["actor"] == "system"]


def timer(case: dict[str, Any], kind: str) -> dict[str, Any]:
    [found] = [t for t in case["timers"] if t["kind"] == kind and t["status"] == "pending"]
    return found


def accepted(duban: Duban) -> int:
    case_id = int(open_case(duban)["id"])
    fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")
    return case_id


class TestUsers:
    def test_user_add_and_list(self, duban: Duban) -> None:
        """The directory holds each user's role and, for units, the unit they act for."""
        users = {u["name"]: u for u in duban.ok("user", "list", "--json").json}
        assert (users["fgj"]["role"], users["fgj"]["unit"]) == ("unit", "区发改局")
        assert (users["wang"]["role"], users["wang"]["unit"]) == ("office", None)
        assert {u["role"] for u in users.values()} == {"office", "leader", "inspector", "unit"}


class TestMainPath:
    def test_open_prints_the_new_case_id_and_due_date(self, duban: Duban) -> None:
        """`case open` prints the id first, then the state and the due instant in Beijing time."""
        run = duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "15wd",
                       now=OPENED, actor="wang")
        assert run.stdout.split()[0] == "1"
        assert "已交办" in run.stdout and "2026-03-23 23:59" in run.stdout  # as people read instants

    def test_opened_case_json(self, duban: Duban) -> None:
        """The case JSON carries the SPEC §8 fields, Chinese labels and instants with +08:00."""
        case = open_case(duban)
        assert {"id", "workflow", "workflow_version", "state", "state_label", "title", "lead_unit", "co_units",
                "opened_at", "due_at", "closed_at", "escalation_level", "overdue", "suspended", "timers",
                "data"} <= set(case)
        assert (case["workflow"], case["state"], case["state_label"]) == ("supervision", "assigned", "已交办")
        assert (case["lead_unit"], case["co_units"]) == ("区发改局", ["区财政局"])
        assert (case["opened_at"], case["due_at"], case["closed_at"]) == ("2026-03-02T09:00:00+08:00", DUE, None)
        assert (case["escalation_level"], case["overdue"], case["suspended"]) == (0, False, False)
        assert {"kind", "due_at", "status", "approximate"} <= set(case["timers"][0])
        assert all(t["due_at"].endswith("+08:00") for t in case["timers"])
        assert {d["label"] for d in case["deadlines"]} == {"签收时限", "办结时限"}

    @pytest.mark.parametrize(
        ("due", "due_at"),
        [
            ("2027-05-31", "2027-05-31T23:59:59+08:00"),  # 5月底前
            ("15wd", DUE),
            ("3d", "2026-03-05T23:59:59+08:00"),
            ("1mo", "2026-04-02T23:59:59+08:00"),
            ("5h", "2026-03-02T14:00:00+08:00"),
            ("2026-03-31T18:00", "2026-03-31T18:00:00+08:00"),
        ],
    )
    def test_due_rules(self, duban: Duban, due: str, due_at: str) -> None:
        """Each --due form gives its due instant in the office's zone (SPEC §5.2)."""
        assert open_case(duban, due=due)["due_at"] == due_at

    def test_accept_report_reject_report_verify(self, duban: Duban) -> None:
        """The main path by the right users ends verified, with each step in the case history."""
        case_id = int(open_case(duban)["id"])
        assert fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")["state_label"] == "办理中"
        assert fire(duban, case_id, "report", now="2026-03-10T10:00", actor="fgj")["state_label"] == "已报告"
        back = fire(duban, case_id, "reject", "--note", "缺少第三季度数据", now="2026-03-11T10:00", actor="wang")
        assert (back["state"], back["due_at"]) == ("in_progress", DUE)
        refused = duban("case", "fire", str(case_id), "report", now="2026-03-12T10:00", actor="czj")
        assert refused.code == 4 and "区发改局" in refused.stderr  # a co-unit sees the case, the lead reports
        fire(duban, case_id, "report", now="2026-03-12T10:00", actor="fgj")
        done = fire(duban, case_id, "verify", now="2026-03-13T10:00", actor="wang")
        assert (done["state"], done["state_label"]) == ("verified", "已办结")
        assert done["closed_at"] == "2026-03-13T10:00:00+08:00"
        assert not done["overdue"] and done["escalation_level"] == 0
        steps = [(e["action"], e["trigger"], e["actor"], e["to_state"]) for e in history(duban, case_id)]
        assert steps == [
            ("open", None, "wang", "assigned"),
            ("fire", "accept", "fgj", "in_progress"),
            ("fire", "report", "fgj", "reported"),
            ("fire", "reject", "wang", "in_progress"),
            ("fire", "report", "fgj", "reported"),
            ("fire", "verify", "wang", "verified"),
        ]
        assert history(duban, case_id)[3]["note"] == "缺少第三季度数据"
        assert all(t["status"] != "pending" for t in show(duban, case_id)["timers"])

    def test_clock_and_actor_from_the_environment(self, duban: Duban) -> None:
        """DUBAN_NOW and DUBAN_ACTOR work like --now and --actor."""
        run = duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "5wd",
                       "--json", env={"DUBAN_NOW": "2026-03-02T09:00", "DUBAN_ACTOR": "wang"})
        assert run.json["opened_at"] == "2026-03-02T09:00:00+08:00" and run.json["opened_by"] == "wang"


class TestEscalation:
    def test_nothing_fires_before_the_yellow_card(self, duban: Duban) -> None:
        """Ticking before 1 wd ahead of the due date changes nothing."""
        case_id = accepted(duban)
        before = row_counts(duban.db_url)
        assert tick(duban, "2026-03-20T09:00") == []
        assert row_counts(duban.db_url) == before
        assert show(duban, case_id)["escalation_level"] == 0

    def test_ladder_climbs_by_itself_each_rung_once(self, duban: Duban) -> None:
        """Yellow card, red card with expiry to overdue, 督办通知 at +3 wd and 通报 at +10 wd, each on its day."""
        case_id = accepted(duban)
        assert timer(show(duban, case_id), "due:黄牌预警")["due_at"] == "2026-03-20T23:59:59+08:00"

        tick(duban, "2026-03-21T09:00")
        case = show(duban, case_id)
        assert (case["state"], case["escalation_level"], case["escalation_label"]) == ("in_progress", 1, "黄牌预警")
        assert not case["overdue"]

        tick(duban, "2026-03-24T09:00")
        case = show(duban, case_id)
        assert (case["state"], case["state_label"], case["escalation_level"]) == ("overdue", "已超期", 2)
        assert case["overdue"] is True

        tick(duban, "2026-03-27T09:00")
        assert show(duban, case_id)["escalation_level"] == 3
        assert tick(duban, "2026-04-07T09:00") == []  # 通报 falls due at the end of Apr 7 (Apr 4-6 Qingming)
        tick(duban, "2026-04-08T09:00")
        assert show(duban, case_id)["escalation_label"] == "通报"

        levels = [e["data"]["level"] for e in system_events(duban, case_id) if e["action"] == "escalate"]
        assert levels == [1, 2, 3, 4]
        expiries = [e for e in system_events(duban, case_id) if e["trigger"] == "expire"]
        assert [(e["from_state"], e["to_state"]) for e in expiries] == [("in_progress", "overdue")]
        notices = duban.ok("notice", "list", "--json").json
        assert [(n["kind"], n["recipient"]) for n in notices] == [
            ("预警提醒", "区发改局"), ("催办通知", "区发改局"), ("督办通知", "区发改局"), ("督办通知", "office"),
            ("通报", "leader"), ("通报", "office"),
        ]
        assert all(n["case_id"] == case_id for n in notices)

    def test_catch_up_after_thirty_days_of_downtime(self, duban: Duban) -> None:
        """One tick after 30 days fires every rung once, in due order; a second tick fires nothing."""
        case_id = int(open_case(duban)["id"])
        other = int(open_case(duban, due="5wd", now="2026-03-03T09:00")["id"])
        lines = tick(duban, "2026-04-11T09:00")
        assert len([line for line in lines if line.startswith(f"案件 {case_id} ")]) == 6  # 催签 yellow red expire 督办 通报
        assert len(lines) == 12
        everything = [e for e in duban.ok("case", "history", str(case_id), "--json").json
                      + duban.ok("case", "history", str(other), "--json").json if e["action"] == "escalate"]
        by_seq = [e["data"]["timer_due_at"] for e in sorted(everything, key=lambda e: e["seq"])]
        assert by_seq == sorted(by_seq)  # across both cases, oldest due first
        events = system_events(duban, case_id)
        rungs = [e for e in events if e["action"] in ("escalate", "overtaken")]
        due_order = [e["data"]["timer_due_at"] for e in rungs]
        assert due_order == sorted(due_order)
        assert [e["data"]["rung_label"] for e in rungs] == ["催签", "黄牌预警", "红牌超期", "督办通知", "通报"]
        # SPEC §16: the due ladder's rungs overtaken by 通报 only raise the level; 催签 has no later rung
        assert [e["action"] for e in rungs] == ["escalate", "overtaken", "overtaken", "overtaken", "escalate"]
        assert sum(e["trigger"] == "expire" for e in events) == 1
        case = show(duban, case_id)
        assert (case["state"], case["escalation_level"]) == ("overdue", 4)
        before = row_counts(duban.db_url)
        run = duban.ok("tick", now="2026-04-11T09:05")
        assert "没有到期的计时器" in run.stdout
        assert row_counts(duban.db_url) == before

    def test_sign_for_reminder_when_not_signed(self, duban: Duban) -> None:
        """A case not signed within 1 wd gets a 催办通知 to the lead unit and counts as overdue until signed."""
        case_id = int(open_case(duban)["id"])
        tick(duban, "2026-03-04T09:00")
        [notice] = duban.ok("notice", "list", "--unit", "区发改局", "--json").json
        assert notice["kind"] == "催办通知" and "建立未落实政策问题台帐" in notice["title"]
        case = show(duban, case_id)
        assert (case["escalation_level"], case["overdue"]) == (0, True)
        assert fire(duban, case_id, "accept", now="2026-03-04T10:00", actor="fgj")["overdue"] is False

    def test_late_report_can_still_be_verified(self, duban: Duban) -> None:
        """An overdue case may report (SPEC §3) and the office can close it."""
        case_id = accepted(duban)
        tick(duban, "2026-03-24T09:00")
        assert fire(duban, case_id, "report", now="2026-03-24T10:00", actor="fgj")["state"] == "reported"
        assert fire(duban, case_id, "verify", now="2026-03-25T10:00", actor="wang")["state"] == "verified"
        assert tick(duban, "2026-05-01T09:00") == []

    def test_rejected_late_report_goes_back_to_overdue(self, duban: Duban) -> None:
        """退回重办 after the due date: the next tick expires it again, with no second red card."""
        case_id = accepted(duban)
        tick(duban, "2026-03-24T09:00")
        fire(duban, case_id, "report", now="2026-03-24T10:00", actor="fgj")
        fire(duban, case_id, "reject", "--note", "内容不实", now="2026-03-24T11:00", actor="wang")
        tick(duban, "2026-03-24T12:00")
        case = show(duban, case_id)
        assert (case["state"], case["escalation_level"]) == ("overdue", 2)
        assert [n["kind"] for n in duban.ok("notice", "list", "--json").json].count("催办通知") == 1


class TestAccountability:
    def test_hold_accountable_closes_the_case(self, duban: Duban) -> None:
        """An overdue case held accountable with 诫勉谈话 is closed in accountability at level 5."""
        case_id = accepted(duban)
        tick(duban, "2026-03-24T09:00")
        case = fire(duban, case_id, "hold_accountable", "--set", "measure=诫勉谈话", "--note", "逾期未报",
                    now="2026-03-25T09:00", actor="li")
        assert (case["state"], case["state_label"]) == ("accountability", "已问责")
        assert (case["escalation_level"], case["escalation_label"]) == (5, "问责")
        assert case["data"]["measure"] == "诫勉谈话"
        assert case["closed_at"] == "2026-03-25T09:00:00+08:00"
        last = history(duban, case_id)[-1]
        assert (last["trigger"], last["actor"], last["role"], last["data"]) == (
            "hold_accountable", "li", "leader", {"measure": "诫勉谈话", "via": "cli", "os_user": os_user()})
        assert tick(duban, "2026-05-01T09:00") == []  # a closed case escalates no further

    def test_office_may_hold_a_falsified_report_accountable(self, duban: Duban) -> None:
        """SPEC §4: from reported (弄虚作假) the office may decide accountability directly."""
        case_id = accepted(duban)
        fire(duban, case_id, "report", now="2026-03-10T10:00", actor="fgj")
        case = fire(duban, case_id, "hold_accountable", "--set", "measure=通报批评", "--note", "报告数据弄虚作假",
                    now="2026-03-11T10:00", actor="wang")
        assert case["state"] == "accountability"


class TestReading:
    def test_case_show_for_a_person(self, duban: Duban) -> None:
        """`case show` prints the Chinese labels, the units, the due instant and the next possible step."""
        case_id = int(open_case(duban)["id"])
        out = duban.ok("case", "show", str(case_id)).stdout
        for expected in ("督办事项", "已交办", "区发改局", "区财政局", "2026-03-23 23:59", "签收时限", "办结时限", "黄牌预警", "签收"):
            assert expected in out

    def test_other_zone_on_request(self, duban: Duban) -> None:
        """Instants are stored once and shown in the zone asked for: --tz UTC shows the same due instant in UTC."""
        case_id = int(open_case(duban, now="2026-03-02T01:00:00+00:00")["id"])
        assert show(duban, case_id)["opened_at"] == "2026-03-02T09:00:00+08:00"
        assert duban.ok("--tz", "UTC", "case", "show", str(case_id), "--json").json["due_at"] == "2026-03-23T15:59:59+00:00"

    def test_case_list_table_json_csv(self, duban: Duban) -> None:
        """The same cases as an aligned table, a JSON array and a CSV Excel opens with Chinese headers."""
        open_case(duban)
        open_case(duban, due="2026-06-30")
        table = duban.ok("case", "list").stdout
        assert table.splitlines()[0].split()[:3] == ["编号", "流程", "状态"]
        assert len(table.splitlines()) == 4
        rows = duban.ok("case", "list", "--json").json
        assert [r["id"] for r in rows] == [1, 2]
        assert duban.ok("case", "list", "--format", "json").json == rows
        raw = duban.ok("case", "list", "--format", "csv").stdout
        assert raw.startswith("\ufeff")
        parsed = list(csv.DictReader(io.StringIO(raw.removeprefix("\ufeff"))))
        assert [r["编号"] for r in parsed] == ["1", "2"]
        assert parsed[1]["办结时限"] == "2026-06-30 23:59"
        assert parsed[0]["状态"] == "已交办"

    def test_case_list_filters(self, duban: Duban) -> None:
        """--state, --unit and --overdue select the matching cases only."""
        late = accepted(duban)
        duban.ok("case", "open", "supervision", "--title", "另一项", "--unit", "区市场监管局", "--due", "2026-06-30",
                 now=OPENED, actor="wang")
        fire(duban, 2, "accept", now="2026-03-02T11:00", actor="scj")
        tick(duban, "2026-03-24T09:00")
        ids = lambda *a: [r["id"] for r in duban.ok("case", "list", *a, "--json").json]  # noqa: E731
        assert ids("--state", "overdue") == [late]
        assert ids("--unit", "区财政局") == [late]  # a co-unit's list includes the case
        assert ids("--unit", "区市场监管局") == [2]
        assert ids("--overdue") == [late]

    def test_notice_list_table(self, duban: Duban) -> None:
        """`notice list` shows kind, recipient and level in Chinese."""
        accepted(duban)
        tick(duban, "2026-03-21T09:00")  # the yellow card, in its own time
        tick(duban, "2026-03-24T09:00")
        out = duban.ok("notice", "list").stdout
        assert "预警提醒" in out and "催办通知" in out and "红牌超期" in out


class TestAuditChain:
    def story(self, duban: Duban) -> int:
        case_id = accepted(duban)
        fire(duban, case_id, "report", now="2026-03-10T10:00", actor="fgj")
        fire(duban, case_id, "reject", "--note", "退回：数据不全", now="2026-03-11T10:00", actor="wang")
        tick(duban, "2026-03-24T09:00")
        return case_id

    def test_verify_ok(self, duban: Duban) -> None:
        """After a story with people and timers, `audit verify` exits 0 and counts every event."""
        self.story(duban)
        run = duban.ok("audit", "verify", "--json")
        assert run.json["ok"] is True and run.json["events"] == row_counts(duban.db_url)["audit_events"]

    def test_export_jsonl_reverifies_offline(self, duban: Duban, tmp_path: Path) -> None:
        """The JSONL export holds every event with its hashes, and re-verifies without the database."""
        self.story(duban)
        out = tmp_path / "audit.jsonl"
        duban.ok("audit", "export", "--format", "jsonl", "--out", str(out))
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert len(records) == row_counts(duban.db_url)["audit_events"]
        count, _, broken = verify_chain(records)
        assert (count, broken) == (len(records), None)
        assert any(r["note"] == "退回：数据不全" for r in records)

    def test_export_csv_opens_in_excel(self, duban: Duban, tmp_path: Path) -> None:
        """The CSV export is UTF-8 with a BOM, Chinese headers, one row per event, instants at +08:00."""
        self.story(duban)
        out = tmp_path / "audit.csv"
        duban.ok("audit", "export", "--format", "csv", "--out", str(out))
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
        assert len(rows) == row_counts(duban.db_url)["audit_events"]
        assert {"序号", "操作人", "动作", "说明", "哈希"} <= set(rows[0])
        assert rows[0]["时间"].endswith("+08:00")

    def test_tampered_row_is_found(self, duban: Duban) -> None:
        """Editing a stored event's note behind duban's back makes `audit verify` exit 6 naming its seq."""
        self.story(duban)
        engine = create_engine(duban.db_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE audit_events SET note = :n WHERE seq = 4"), {"n": "同意办结"})
        finally:
            engine.dispose()
        run = duban("audit", "verify")
        assert run.code == 6
        assert "audit event 4" in run.stderr
        as_json = duban("audit", "verify", "--json")
        assert as_json.code == 6 and as_json.json["first_bad_seq"] == 4 and as_json.json["ok"] is False

    def test_deleted_row_is_found(self, duban: Duban) -> None:
        """Deleting a stored event makes `audit verify` exit 6 at the event after the gap."""
        self.story(duban)
        engine = create_engine(duban.db_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_events WHERE seq = 3"))
        finally:
            engine.dispose()
        run = duban("audit", "verify")
        assert run.code == 6 and "audit event 4" in run.stderr


class TestCalendar:
    def test_show_a_known_year(self, duban: Duban) -> None:
        """2026 lists the National Day holiday and the make-up Saturday Oct 10 (调休上班)."""
        days = {d["date"]: d for d in duban.ok("calendar", "show", "2026", "--json").json["days"]}
        assert days["2026-10-01"]["kind"] == "holiday" and days["2026-10-01"]["kind_label"] == "放假"
        assert days["2026-10-10"]["kind_label"] == "调休上班"
        assert "2026-10-01" in duban.ok("calendar", "show", "2026").stdout

    def test_show_a_year_without_data(self, duban: Duban) -> None:
        """2027 is not published yet: the calendar says deadlines there are weekends-only and approximate."""
        run = duban.ok("calendar", "show", "2027")
        assert "approximate" in run.stdout
        assert duban.ok("calendar", "show", "2027", "--json").json["known"] is False

    def test_case_opened_on_2026_12_28_with_5wd(self, duban: Duban) -> None:
        """5 wd from Mon 2026-12-28 reaches into 2027: counted with weekends only and marked approximate."""
        case = open_case(duban, due="5wd", now="2026-12-28T09:00")
        assert case["due_at"] == "2027-01-04T23:59:59+08:00"
        assert case["approximate"] is True
        assert timer(case, "due:红牌超期")["approximate"] is True
        assert "约" in duban.ok("case", "show", str(case["id"])).stdout

    def test_importing_the_year_recomputes_and_says_why(self, duban: Duban) -> None:
        """Importing 2027 (Jan 1 a holiday) moves the due date to Jan 5, exact, with a 'recompute' audit event."""
        case_id = int(open_case(duban, due="5wd", now="2026-12-28T09:00")["id"])
        run = duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), "--json", now="2026-12-29T09:00")
        assert run.json["recomputed_cases"] == [case_id]
        case = show(duban, case_id)
        assert (case["due_at"], case["approximate"]) == ("2027-01-05T23:59:59+08:00", False)
        assert not any(t["approximate"] for t in case["timers"] if t["status"] == "pending")
        [event] = [e for e in history(duban, case_id) if e["action"] == "recompute"]
        assert event["actor"] == "system"
        assert "2027" in event["note"]
        assert event["data"]["deadline"] == "due"
        assert "2026-12-29" not in case["due_at"]
        assert duban.ok("calendar", "show", "2027", "--json").json["known"] is True

    def test_recomputed_deadline_is_what_fires(self, duban: Duban) -> None:
        """After the import the red card no longer falls on Jan 4: a tick on Jan 5 gives only the yellow card."""
        case_id = int(open_case(duban, due="5wd", now="2026-12-28T09:00")["id"])
        fire(duban, case_id, "accept", now="2026-12-28T10:00", actor="fgj")
        duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), now="2026-12-29T09:00")
        tick(duban, "2027-01-05T09:00")
        case = show(duban, case_id)
        assert (case["state"], case["escalation_level"]) == ("in_progress", 1)

    def test_importing_the_year_also_moves_approximate_ladder_timers(self, duban: Duban) -> None:
        """A 2026 due date whose +10 wd 通报 falls in 2027 is exact, but that timer is approximate; the import fixes it."""
        case = open_case(duban, due="2026-12-24", now="2026-12-01T09:00")
        bulletin = timer(case, "due:通报")
        assert (bulletin["due_at"], bulletin["approximate"]) == ("2027-01-07T23:59:59+08:00", True)
        duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), now="2026-12-02T09:00")
        bulletin = timer(show(duban, case["id"]), "due:通报")
        assert (bulletin["due_at"], bulletin["approximate"]) == ("2027-01-08T23:59:59+08:00", False)

    def test_importing_the_year_also_fixes_a_paused_deadline(self, duban: Duban) -> None:
        """A case waiting in `reported` when 2027 arrives is not left on the weekends-only date once it is rejected."""
        case_id = int(open_case(duban, due="5wd", now="2026-12-28T09:00")["id"])
        fire(duban, case_id, "accept", now="2026-12-28T10:00", actor="fgj")
        fire(duban, case_id, "report", now="2026-12-28T11:00", actor="fgj")
        duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), now="2026-12-29T09:00")
        case = fire(duban, case_id, "reject", "--note", "请补充材料", now="2026-12-29T10:00", actor="wang")
        assert (case["due_at"], case["approximate"]) == ("2027-01-05T23:59:59+08:00", False)
        assert not any(t["approximate"] for t in case["timers"] if t["status"] == "pending")

    def test_import_local_overrides_csv(self, duban: Duban) -> None:
        """A CSV of local overrides imports and shows up in `calendar show`."""
        run = duban.ok("calendar", "import", str(DATA / "calendar-overrides.csv"), "--json")
        assert run.json["days"] > 0
        year = run.json["years"][0]
        assert duban.ok("calendar", "show", str(year), "--json").json["known"] is True
