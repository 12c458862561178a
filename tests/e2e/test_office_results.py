"""What an office reads must be right (SPEC §16, issue 11): grades and the bottom three, every
deadline counting in `report units`, `report bulletin` and `report accountability`, the
deadline shown (`due_at`), `was_overdue` (曾超期), overtaken rungs, lead-unit triggers and the
reason an accountability decision needs — each played end to end through the CLI on a
pinned clock."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.conftest import Duban, row_counts

MORE_UNITS = {"jyj": "区教育局", "jtj": "区交通运输局", "wjw": "区卫健委"}


def add_units(duban: Duban, *users: str) -> None:
    for user in users:
        duban.ok("user", "add", user, "--role", "unit", "--unit", MORE_UNITS[user])


def open_case(duban: Duban, workflow: str, unit: str, *args: str, now: str, title: str = "督办事项") -> int:
    run = duban.ok("case", "open", workflow, "--title", title, "--unit", unit, *args, "--json", now=now, actor="wang")
    return int(run.json["id"])


def fire(duban: Duban, case_id: int, trigger: str, *args: str, now: str, actor: str) -> dict[str, Any]:
    return dict(duban.ok("case", "fire", str(case_id), trigger, *args, "--json", now=now, actor=actor).json)


def units(duban: Duban, *args: str, now: str) -> dict[str, dict[str, Any]]:
    rows = duban.ok("report", "units", "--json", *args, now=now).json["units"]
    return {r["unit"]: r for r in rows}


def bulletin(duban: Duban, *args: str, now: str) -> dict[str, Any]:
    return dict(duban.ok("report", "bulletin", "--json", *args, now=now).json)


def deadline(case: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in case["deadlines"] if d["name"] == name)


def on_time(duban: Duban, unit_user: str, unit: str, now: str = "2026-03-02T09:00") -> int:
    """A supervision case signed, reported and verified in time."""
    case_id = open_case(duban, "supervision", unit, "--due", "2026-03-13", now=now)
    fire(duban, case_id, "accept", now="2026-03-02T10:00", actor=unit_user)
    fire(duban, case_id, "report", now="2026-03-10T10:00", actor=unit_user)
    fire(duban, case_id, "verify", now="2026-03-10T11:00", actor="wang")
    return case_id


def rework_missed(duban: Duban) -> int:
    """A complaint replied in time, found unsatisfactory (重办), whose 5 wd rework deadline
    (2026-11-10) passes: yellow, red (expire → overdue) and 督办通知 by 11-16."""
    case_id = open_case(duban, "complaint", "区发改局", now="2026-11-02T09:00", title="噪音扰民")
    fire(duban, case_id, "dispatch", now="2026-11-02T10:00", actor="wang")
    fire(duban, case_id, "accept", now="2026-11-02T11:00", actor="fgj")
    fire(duban, case_id, "reply", now="2026-11-03T10:00", actor="fgj")
    fire(duban, case_id, "revisit", "--set", "satisfied=no", now="2026-11-03T15:00", actor="wang")
    for at in ("2026-11-10T09:00", "2026-11-11T09:00", "2026-11-16T09:00"):
        duban.ok("tick", now=at)
    return case_id


def press_conference_missed(duban: Duban) -> int:
    """A major opinion case published in time (5 h) whose 24 h press conference is held a day
    late, after its red card and 督办通知; then the office closes it."""
    case_id = open_case(duban, "opinion", "区发改局", now="2026-11-21T08:00", title="网传某路段塌陷")
    fire(duban, case_id, "publish", now="2026-11-21T10:00", actor="fgj")
    for at in ("2026-11-22T07:30", "2026-11-22T09:00", "2026-11-23T09:00"):
        duban.ok("tick", now=at)
    fire(duban, case_id, "hold_press_conference", now="2026-11-23T10:00", actor="fgj")
    fire(duban, case_id, "close", now="2026-11-23T11:00", actor="wang")
    return case_id


class TestBottomThree:
    def test_two_units_at_100_percent_are_never_flagged(self, duban: Duban) -> None:
        """Four units, two on time (优秀): only the other two are 末位; the table flags two rows."""
        add_units(duban, "jyj")
        on_time(duban, "fgj", "区发改局")
        on_time(duban, "czj", "区财政局")
        for unit in ("区市场监管局", "区教育局"):
            open_case(duban, "supervision", unit, "--due", "2026-03-13", now="2026-03-02T09:00")
        rows = units(duban, now="2026-03-20T09:00")
        assert {u: r["grade"] for u, r in rows.items()} == {
            "区发改局": "优秀", "区财政局": "优秀", "区市场监管局": "不合格", "区教育局": "不合格"}
        assert {u for u, r in rows.items() if r["bottom_three"]} == {"区市场监管局", "区教育局"}
        table = duban.ok("report", "units", now="2026-03-20T09:00").stdout
        assert table.count("取消评优资格") == 2
        flagged_lines = [line for line in table.splitlines() if "取消评优资格" in line]
        assert not any("优秀" in line for line in flagged_lines)

    def test_ties_at_the_cut_are_broken_then_the_rest_all_flagged(self, duban: Duban) -> None:
        """Five units at 0 % on time: more open overdue cases rank lower, then more escalations;
        区市场监管局 and 区教育局 stay tied at the cut and are both flagged; 区发改局, late but
        with nothing still open, is not."""
        add_units(duban, "jyj", "jtj", "wjw")
        late = open_case(duban, "supervision", "区发改局", "--due", "2026-03-06", now="2026-03-02T09:00")
        fire(duban, late, "accept", now="2026-03-02T10:00", actor="fgj")
        open_case(duban, "supervision", "区卫健委", "--due", "2026-03-06", now="2026-03-02T09:00")  # reaches 督办
        for unit in ("区市场监管局", "区教育局", "区交通运输局", "区交通运输局"):
            open_case(duban, "supervision", unit, "--due", "2026-03-13", now="2026-03-02T09:00")
        duban.ok("tick", now="2026-03-05T09:00")
        duban.ok("tick", now="2026-03-09T09:00")
        fire(duban, late, "report", now="2026-03-09T10:00", actor="fgj")
        fire(duban, late, "verify", now="2026-03-09T11:00", actor="wang")
        for at in ("2026-03-12T09:00", "2026-03-16T09:00"):
            duban.ok("tick", now=at)
        rows = units(duban, now="2026-03-16T12:00")
        assert all(r["on_time_rate"] == 0.0 for r in rows.values())
        ranks = {u: r["rank"] for u, r in rows.items()}
        assert ranks == {"区发改局": 1, "区市场监管局": 2, "区教育局": 2, "区卫健委": 4, "区交通运输局": 5}
        assert {u for u, r in rows.items() if r["bottom_three"]} == {"区市场监管局", "区教育局", "区卫健委",
                                                                     "区交通运输局"}


class TestEveryDeadlineCounts:
    def test_missed_press_conference_is_late_not_excellent(self, duban: Duban) -> None:
        """Published on time but the press conference came after its red card and 督办通知: 逾期办结,
        graded 不合格, listed under 红牌超期 in its week, and in the 问责专报 with who missed it."""
        case_id = press_conference_missed(duban)
        row = units(duban, "--since", "2026-11-01", "--until", "2026-11-30", now="2026-12-01T09:00")["区发改局"]
        assert (row["closed_on_time"], row["closed_late"], row["grade"]) == (0, 1, "不合格")
        assert row["closed"] == 1
        week = bulletin(duban, "--period", "week", "--date", "2026-11-22", now="2026-12-01T09:00")
        assert [r["case_id"] for r in week["red"]] == [case_id]
        assert "新闻发布会时限" in week["red"][0]["detail"]
        assert [(r["case_id"], r["detail"]) for r in
                bulletin(duban, "--period", "month", "--date", "2026-11-01", now="2026-12-01T09:00")["closed"]] == [
            (case_id, "逾期办结")]
        [brief] = duban.ok("report", "accountability", "--json", now="2026-12-01T09:00").json["cases"]
        missed = {d["name"]: d for d in brief["deadlines"] if d["missed"]}
        assert set(missed) == {"press_conference"}
        assert (missed["press_conference"]["late_by"], missed["press_conference"]["responsible"]) == (
            "1天2小时", "区发改局")

    def test_missed_rework_is_overdue_and_in_the_weeks_red_cards(self, duban: Duban) -> None:
        """The reply deadline was met, the 重办 deadline was not and reached 督办通知: 超期未办结 1,
        on-time rate 0 %, and the week's 通报 lists the case under 红牌超期 naming 重办时限."""
        case_id = rework_missed(duban)
        row = units(duban, now="2026-11-16T10:00")["区发改局"]
        assert (row["open_overdue"], row["on_time_rate"]) == (1, 0.0)
        assert row["escalations"] == {"1": 1, "2": 1, "3": 1, "4": 0}
        week = bulletin(duban, "--period", "week", "--date", "2026-11-16", now="2026-11-16T10:00")
        assert [(r["case_id"], r["unit"]) for r in week["red"]] == [(case_id, "区发改局")]
        assert "重办时限" in week["red"][0]["detail"]
        assert week["red"][0]["due_at"] == "2026-11-10T23:59:59+08:00"
        table = duban.ok("report", "bulletin", "--period", "week", "--date", "2026-11-16", now="2026-11-16T10:00").stdout
        red = table.split("【红牌超期】", 1)[1].split("【", 1)[0]
        assert "噪音扰民" in red
        [brief] = duban.ok("report", "accountability", "--case", str(case_id), "--json", now="2026-11-16T10:00").json["cases"]
        assert [d["name"] for d in brief["deadlines"] if d["missed"]] == ["rehandle"]

    def test_signed_late_but_reported_in_time_is_closed_late(self, duban: Duban) -> None:
        """The sign-for deadline counts too: signed two days late, reported in time → 逾期办结."""
        case_id = open_case(duban, "supervision", "区财政局", "--due", "2026-03-13", now="2026-03-02T09:00")
        fire(duban, case_id, "accept", now="2026-03-05T09:00", actor="czj")
        fire(duban, case_id, "report", now="2026-03-11T09:00", actor="czj")
        fire(duban, case_id, "verify", now="2026-03-11T10:00", actor="wang")
        row = units(duban, now="2026-03-31T09:00")["区财政局"]
        assert (row["closed_on_time"], row["closed_late"], row["sign_for_rate"]) == (0, 1, 0.0)

    def test_the_offices_own_deadline_is_not_held_against_the_unit(self, duban: Duban) -> None:
        """A complaint the office dispatched late (派单 2 h) but the unit handled in time is on time for
        the unit; the 问责专报 names 督查室 as the one who missed the dispatch deadline."""
        case_id = open_case(duban, "complaint", "区发改局", now="2026-11-02T09:00")
        fire(duban, case_id, "dispatch", now="2026-11-02T14:00", actor="wang")
        fire(duban, case_id, "accept", now="2026-11-02T15:00", actor="fgj")
        fire(duban, case_id, "reply", now="2026-11-03T10:00", actor="fgj")
        fire(duban, case_id, "revisit", "--set", "satisfied=yes", now="2026-11-03T15:00", actor="wang")
        row = units(duban, now="2026-11-30T09:00")["区发改局"]
        assert (row["closed_on_time"], row["closed_late"]) == (1, 0)
        [brief] = duban.ok("report", "accountability", "--case", str(case_id), "--json", now="2026-11-30T09:00").json["cases"]
        assert [(d["name"], d["responsible"]) for d in brief["deadlines"] if d["missed"]] == [("dispatch", "督查室")]


class TestDeadlineShown:
    def test_after_an_unsatisfied_revisit_the_rework_deadline_is_shown(self, duban: Duban) -> None:
        """`case show` and `case list` show the running 重办 deadline as 办结时限, not the met reply one."""
        case_id = open_case(duban, "complaint", "区发改局", now="2026-11-02T09:00")
        fire(duban, case_id, "dispatch", now="2026-11-02T10:00", actor="wang")
        fire(duban, case_id, "accept", now="2026-11-02T11:00", actor="fgj")
        replied = fire(duban, case_id, "reply", now="2026-11-03T10:00", actor="fgj")
        assert replied["due_at"] == deadline(replied, "reply")["due_at"] == "2026-11-09T23:59:59+08:00"
        case = fire(duban, case_id, "revisit", "--set", "satisfied=no", now="2026-11-03T15:00", actor="wang")
        assert deadline(case, "rehandle")["status"] == "running"
        assert case["due_at"] == deadline(case, "rehandle")["due_at"] == "2026-11-10T23:59:59+08:00"
        assert duban.ok("case", "show", str(case_id), "--json").json["due_at"] == "2026-11-10T23:59:59+08:00"
        [listed] = duban.ok("case", "list", "--json").json
        assert listed["due_at"] == "2026-11-10T23:59:59+08:00"
        shown = duban.ok("case", "show", str(case_id)).stdout
        line = next(ln for ln in shown.splitlines() if ln.startswith("办结时限"))
        assert "2026-11-10" in line and "2026-11-09" not in line

    def test_an_extension_during_rework_moves_the_rework_deadline(self, duban: Duban) -> None:
        """延期 applies to the deadline shown: in 重办 that is the rework deadline, not the met reply one."""
        case_id = open_case(duban, "complaint", "区发改局", now="2026-11-02T09:00")
        fire(duban, case_id, "dispatch", now="2026-11-02T10:00", actor="wang")
        fire(duban, case_id, "accept", now="2026-11-02T11:00", actor="fgj")
        fire(duban, case_id, "reply", now="2026-11-03T10:00", actor="fgj")
        fire(duban, case_id, "revisit", "--set", "satisfied=no", now="2026-11-03T15:00", actor="wang")
        fire(duban, case_id, "request_extension", "--set", "until=2026-11-20", "--note", "需现场复测",
             now="2026-11-05T09:00", actor="fgj")
        case = fire(duban, case_id, "approve_extension", now="2026-11-05T10:00", actor="wang")
        assert case["due_at"] == deadline(case, "rehandle")["due_at"] == "2026-11-20T23:59:59+08:00"
        assert deadline(case, "reply")["due_at"] == "2026-11-09T23:59:59+08:00"

    def test_opinion_shows_the_press_conference_once_published(self, duban: Duban) -> None:
        """Once published, the running deadline is the press conference's (24 h), not the met 5 h one."""
        case_id = open_case(duban, "opinion", "区发改局", now="2026-11-21T08:00")
        assert duban.ok("case", "show", str(case_id), "--json").json["due_at"] == "2026-11-21T13:00:00+08:00"
        case = fire(duban, case_id, "publish", now="2026-11-21T10:00", actor="fgj")
        assert case["due_at"] == "2026-11-22T08:00:00+08:00"


class TestWasOverdue:
    def test_a_case_closed_in_accountability_twenty_days_late(self, duban: Duban) -> None:
        """Closed, so not overdue; but it was: was_overdue true, 曾超期 是 in the table and the CSV."""
        late = open_case(duban, "supervision", "区发改局", "--due", "2026-03-13", now="2026-03-02T09:00", title="迟办")
        fine = on_time(duban, "czj", "区财政局")
        duban.ok("tick", now="2026-03-16T09:00")
        fire(duban, late, "hold_accountable", "--set", "measure=通报批评", "--note", "超期二十日未办结",
             now="2026-04-02T09:00", actor="li")
        listed = {c["id"]: c for c in duban.ok("case", "list", "--json").json}
        assert (listed[late]["overdue"], listed[late]["was_overdue"]) == (False, True)
        assert (listed[fine]["overdue"], listed[fine]["was_overdue"]) == (False, False)
        rows = list(csv.DictReader(io.StringIO(duban.ok("case", "list", "--format", "csv").stdout.lstrip("\ufeff"))))
        by_title = {r["标题"]: r for r in rows}
        assert (by_title["迟办"]["超期"], by_title["迟办"]["曾超期"]) == ("否", "是")
        assert by_title["督办事项"]["曾超期"] == "否"
        assert "曾超期" in duban.ok("case", "list").stdout


class TestOvertakenRungs:
    def test_catch_up_three_weeks_late_sends_no_yellow_card(self, duban: Duban) -> None:
        """One tick three weeks after the due date: the level reaches 通报 (4); the yellow card, 催办 and
        督办 are recorded as overtaken and send nothing; only the 通报 goes out."""
        case_id = open_case(duban, "supervision", "区发改局", "--due", "2026-03-13", now="2026-03-02T09:00")
        fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")
        before = {n["id"] for n in duban.ok("notice", "list", "--json").json}
        duban.ok("tick", now="2026-04-03T09:00")
        case = duban.ok("case", "show", str(case_id), "--json").json
        assert (case["state"], case["escalation_level"]) == ("overdue", 4)
        sent = [n for n in duban.ok("notice", "list", "--json").json if n["id"] not in before]
        assert {n["kind"] for n in sent} == {"通报"}
        rungs = [e for e in duban.ok("case", "history", str(case_id), "--json").json
                 if e["action"] in ("escalate", "overtaken")]
        assert [(e["action"], e["data"]["rung_label"]) for e in rungs] == [
            ("overtaken", "黄牌预警"), ("overtaken", "红牌超期"), ("overtaken", "督办通知"), ("escalate", "通报")]
        assert all(e["data"]["notice"] is None and e["data"]["overtaken_by_label"] == "通报"
                   for e in rungs if e["action"] == "overtaken")
        assert [e["data"]["level"] for e in rungs] == [1, 2, 3, 4]  # the level still rises, rung by rung
        assert duban.ok("audit", "verify").code == 0

    def test_rungs_fired_in_their_own_time_all_notify(self, duban: Duban) -> None:
        """Ticks as each rung falls due: nothing is overtaken, the yellow card is sent."""
        case_id = open_case(duban, "supervision", "区发改局", "--due", "2026-03-13", now="2026-03-02T09:00")
        fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")
        duban.ok("tick", now="2026-03-13T09:00")
        duban.ok("tick", now="2026-03-14T09:00")
        kinds = [n["kind"] for n in duban.ok("notice", "list", "--case", str(case_id), "--json").json]
        assert kinds == ["预警提醒", "催办通知"]


class TestLeadUnit:
    def test_co_unit_sees_the_case_but_cannot_move_it(self, duban: Duban) -> None:
        """区财政局, a co-unit, may not sign for, report or ask for an extension (exit 4 naming the
        lead unit, nothing written); it may add a progress note, and sees the case in its list."""
        case_id = open_case(duban, "supervision", "区发改局", "--co-unit", "区财政局", "--due", "2026-03-13",
                            now="2026-03-02T09:00")
        before = row_counts(duban.db_url)
        refused = duban("case", "fire", str(case_id), "accept", now="2026-03-02T10:00", actor="czj")
        assert refused.code == 4 and "区发改局" in refused.stderr and "牵头单位" in refused.stderr
        assert row_counts(duban.db_url) == before
        fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")
        before = row_counts(duban.db_url)
        for trigger, extra in (("report", ()), ("request_extension", ("--set", "until=2026-03-31", "--note", "需协调"))):
            run = duban("case", "fire", str(case_id), trigger, *extra, now="2026-03-05T10:00", actor="czj")
            assert run.code == 4 and "区发改局" in run.stderr, (trigger, run.stderr)
        assert row_counts(duban.db_url) == before
        noted = fire(duban, case_id, "report_progress", "--note", "财政资金已拨付", now="2026-03-05T11:00", actor="czj")
        assert noted["state"] == "in_progress"
        assert [c["id"] for c in duban.ok("case", "list", "--unit", "区财政局", "--json").json] == [case_id]
        assert fire(duban, case_id, "report", now="2026-03-06T10:00", actor="fgj")["state"] == "reported"

    def test_co_unit_may_not_reply_to_or_return_a_complaint(self, duban: Duban) -> None:
        """reply and return (退单) are the lead unit's too."""
        case_id = open_case(duban, "complaint", "区发改局", "--co-unit", "区财政局", now="2026-11-02T09:00")
        fire(duban, case_id, "dispatch", now="2026-11-02T10:00", actor="wang")
        fire(duban, case_id, "accept", now="2026-11-02T11:00", actor="fgj")
        before = row_counts(duban.db_url)
        for trigger, extra in (("reply", ()), ("return", ("--note", "不属本单位职责"))):
            run = duban("case", "fire", str(case_id), trigger, *extra, now="2026-11-02T12:00", actor="czj")
            assert run.code == 4 and "区发改局" in run.stderr
        assert row_counts(duban.db_url) == before


class TestAccountabilityReason:
    def test_a_measure_without_a_reason_is_refused(self, duban: Duban) -> None:
        """hold_accountable without --note: exit 4 asking for --note, nothing written; with one, the
        问责 table of `case show` shows the reason."""
        case_id = open_case(duban, "supervision", "区发改局", "--due", "2026-03-13", now="2026-03-02T09:00")
        duban.ok("tick", now="2026-03-16T09:00")
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(case_id), "hold_accountable", "--set", "measure=诫勉谈话",
                    now="2026-03-17T09:00", actor="li")
        assert run.code == 4 and "--note" in run.stderr
        assert row_counts(duban.db_url) == before
        case = fire(duban, case_id, "hold_accountable", "--set", "measure=诫勉谈话", "--note", "逾期未签收未办理",
                    now="2026-03-17T09:00", actor="li")
        assert [a["reason"] for a in case["accountability"]] == ["逾期未签收未办理"]
        assert "逾期未签收未办理" in duban.ok("case", "show", str(case_id)).stdout


class TestSmallerThings:
    def test_report_reminders_are_not_escalations_in_the_bulletin(self, duban: Duban) -> None:
        """A 报送提醒 (a reminder with no level) is not counted or listed as 升级督办."""
        case_id = open_case(duban, "supervision", "区发改局", "--due", "2026-06-30", "--report", "monthly:5",
                            now="2026-03-02T09:00")
        fire(duban, case_id, "accept", now="2026-03-02T10:00", actor="fgj")
        lines = duban.ok("tick", "--json", now="2026-04-03T09:00").json["lines"]  # 2 wd before 04-05
        assert any("报送提醒" in line for line in lines)
        week = bulletin(duban, "--period", "week", "--date", "2026-04-03", now="2026-04-03T10:00")
        assert week["escalations"] == []
        assert all(r["escalations"] == 0 for r in week["summary"])

    def test_accountability_brief_of_one_case_is_headed_with_it(self, duban: Duban) -> None:
        """`report accountability --case 2` names case 2 in its heading, not 全部."""
        open_case(duban, "supervision", "区发改局", "--due", "2026-03-13", now="2026-03-02T09:00")
        second = open_case(duban, "supervision", "区财政局", "--due", "2026-03-13", now="2026-03-02T09:00",
                           title="政策台帐")
        head = duban.ok("report", "accountability", "--case", str(second), now="2026-03-20T09:00").stdout.splitlines()[0]
        assert f"案件 {second}" in head and "政策台帐" in head and "全部" not in head
        doc = duban.ok("report", "accountability", "--case", str(second), "--json", now="2026-03-20T09:00").json
        assert f"案件 {second}" in doc["period"]["label"]
