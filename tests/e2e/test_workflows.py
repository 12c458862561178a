"""The four workflows beyond supervision, and the shared operations, played on a manual clock."""

from __future__ import annotations

from typing import Any

from tests.conftest import Duban, row_counts


def deadline(case: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in case["deadlines"] if d["name"] == name)


def open_case(duban: Duban, *args: str, now: str) -> dict[str, Any]:
    return duban.ok("case", "open", *args, "--json", now=now, actor="wang").json


def fire(duban: Duban, case_id: int, trigger: str, *args: str, now: str, actor: str) -> dict[str, Any]:
    return duban.ok("case", "fire", str(case_id), trigger, *args, "--json", now=now, actor=actor).json


class TestComplaint:
    def test_dispatched_friday_afternoon_before_national_day_counts_working_days(self, duban: Duban) -> None:
        """Reply within 5 wd of a Friday 2026-09-25 dispatch skips the Oct 1–7 holiday and counts Sat Oct 10."""
        c = open_case(duban, "complaint", "--title", "噪音扰民", "--unit", "区发改局", now="2026-09-25T14:00")
        assert deadline(c, "dispatch")["due_at"] == "2026-09-25T16:00:00+08:00"
        c = fire(duban, c["id"], "dispatch", now="2026-09-25T15:30", actor="wang")
        # Sep 28, 29, 30, Oct 8, 9 are working days 1–5.
        assert deadline(c, "reply")["due_at"] == "2026-10-09T23:59:59+08:00"
        assert deadline(c, "sign_for")["due_at"] == "2026-09-28T23:59:59+08:00"

    def test_urgent_complaint_has_24_hours(self, duban: Duban) -> None:
        """--set urgent=true at opening turns the reply limit into 24 clock hours from dispatch."""
        c = open_case(duban, "complaint", "--title", "停水", "--unit", "区发改局", "--set", "urgent=true", now="2026-11-20T10:00")
        c = fire(duban, c["id"], "dispatch", now="2026-11-20T11:00", actor="wang")
        assert deadline(c, "reply")["due_at"] == "2026-11-21T11:00:00+08:00"

    def test_return_and_redispatch_moves_the_case_and_keeps_the_reply_clock(self, duban: Duban) -> None:
        """A 退单 sends the order back; 改派 makes the new unit lead; the reply date does not restart."""
        c = open_case(duban, "complaint", "--title", "占道经营", "--unit", "区发改局", now="2026-11-16T09:00")
        c = fire(duban, c["id"], "dispatch", now="2026-11-16T10:00", actor="wang")
        first_due = deadline(c, "reply")["due_at"]
        refused = duban("case", "fire", str(c["id"]), "return", now="2026-11-16T11:00", actor="fgj")
        assert refused.code == 4 and "note" in refused.stderr
        c = fire(duban, c["id"], "return", "--note", "不属本单位职责", now="2026-11-16T11:00", actor="fgj")
        assert c["state"] == "received"
        c = fire(duban, c["id"], "dispatch", "--set", "unit=区市场监管局", now="2026-11-17T09:00", actor="wang")
        assert c["lead_unit"] == "区市场监管局"
        assert deadline(c, "reply")["due_at"] == first_due
        assert duban("case", "fire", str(c["id"]), "accept", now="2026-11-17T10:00", actor="fgj").code == 4
        assert fire(duban, c["id"], "accept", now="2026-11-17T10:00", actor="scj")["state"] == "in_progress"
        listed = duban.ok("case", "list", "--unit", "区市场监管局", "--json").json
        assert [x["id"] for x in listed] == [c["id"]]

    def test_unsatisfied_twice_reopens_once_then_closes_unsatisfied(self, duban: Duban) -> None:
        """The first 'no' reopens with a new 5 wd deadline; the second closes the case counted unsatisfied."""
        c = open_case(duban, "complaint", "--title", "路灯不亮", "--unit", "区发改局", now="2026-11-16T09:00")
        fire(duban, c["id"], "dispatch", now="2026-11-16T10:00", actor="wang")
        fire(duban, c["id"], "accept", now="2026-11-16T11:00", actor="fgj")
        fire(duban, c["id"], "reply", now="2026-11-17T11:00", actor="fgj")
        missing = duban("case", "fire", str(c["id"]), "revisit", now="2026-11-17T15:00", actor="wang")
        assert missing.code == 4 and "satisfied=yes|no" in missing.stderr
        c = fire(duban, c["id"], "revisit", "--set", "satisfied=no", now="2026-11-17T15:00", actor="wang")
        assert c["state"] == "in_progress"
        assert deadline(c, "rehandle")["due_at"] == "2026-11-24T23:59:59+08:00"
        assert deadline(c, "reply")["status"] == "ended"
        fire(duban, c["id"], "reply", now="2026-11-18T11:00", actor="fgj")
        c = fire(duban, c["id"], "revisit", "--set", "satisfied=no", now="2026-11-18T15:00", actor="wang")
        assert c["state"] == "closed"
        assert c["data"]["outcome"] == "unsatisfied"


class TestOpinion:
    def test_registered_saturday_morning_the_five_hours_still_run(self, duban: Duban) -> None:
        """A major case registered Sat 08:00 is due 13:00 that day; the miss escalates without a state change."""
        c = open_case(duban, "opinion", "--title", "网传某路段塌陷", "--unit", "区发改局", now="2026-11-21T08:00")
        assert deadline(c, "publish")["due_at"] == "2026-11-21T13:00:00+08:00"
        assert deadline(c, "press_conference")["due_at"] == "2026-11-22T08:00:00+08:00"
        lines = duban.ok("tick", "--json", now="2026-11-21T13:30").json["lines"]
        assert any("红牌超期" in line for line in lines)
        shown = duban.ok("case", "show", str(c["id"]), "--json").json
        assert shown["state"] == "registered" and shown["overdue"] and shown["escalation_level"] == 2

    def test_press_conference_on_time_does_not_clear_the_missed_publication(self, duban: Duban) -> None:
        """Holding the conference meets its own deadline, but the late publication stays on the record."""
        c = open_case(duban, "opinion", "--title", "舆情", "--unit", "区发改局", now="2026-11-21T08:00")
        duban.ok("tick", now="2026-11-21T14:00")
        fire(duban, c["id"], "hold_press_conference", now="2026-11-21T15:00", actor="fgj")
        c = fire(duban, c["id"], "publish", now="2026-11-21T16:00", actor="fgj")
        assert deadline(c, "publish")["missed"] is True
        assert deadline(c, "press_conference")["status"] == "done"
        assert c["escalation_level"] == 2
        assert duban.ok("tick", "--json", now="2026-11-23T09:00").json["fired_timers"] == 0

    def test_ordinary_level_has_one_48_hour_deadline(self, duban: Duban) -> None:
        """level=ordinary: respond within 48 clock hours, no press-conference deadline."""
        c = open_case(duban, "opinion", "--title", "一般舆情", "--unit", "区发改局", "--set", "level=ordinary", now="2026-11-20T10:00")
        assert [d["name"] for d in c["deadlines"]] == ["publish"]
        assert deadline(c, "publish")["due_at"] == "2026-11-22T10:00:00+08:00"


class TestRectificationAndProposal:
    def test_rectification_plan_deadline_escalates_and_report_verifies(self, duban: Duban) -> None:
        """整改方案 is due 10 wd after issue; missing it escalates; then report and 销号 close the case."""
        c = open_case(duban, "rectification", "--title", "窗口服务不规范", "--unit", "区发改局", "--due", "2026-12-31", now="2026-11-02T09:00")
        assert deadline(c, "plan")["due_at"] == "2026-11-16T23:59:59+08:00"
        duban.ok("tick", now="2026-11-17T09:00")
        assert duban.ok("case", "show", str(c["id"]), "--json").json["escalation_level"] == 2
        fire(duban, c["id"], "submit_plan", now="2026-11-17T10:00", actor="fgj")
        fire(duban, c["id"], "report", now="2026-12-01T10:00", actor="fgj")
        assert fire(duban, c["id"], "verify", now="2026-12-02T10:00", actor="wang")["state"] == "verified"

    def test_proposal_reply_in_three_months_and_one_rehandling(self, duban: Duban) -> None:
        """Reply is due 3 months after assignment; an unsatisfied deputy gets one month more, once."""
        c = open_case(duban, "proposal", "--title", "关于增设公交线路的建议", "--unit", "区发改局", now="2026-03-10T09:00")
        assert deadline(c, "reply")["due_at"] == "2026-06-10T23:59:59+08:00"
        fire(duban, c["id"], "accept", now="2026-03-11T09:00", actor="fgj")
        fire(duban, c["id"], "reply", now="2026-05-11T09:00", actor="fgj")
        c = fire(duban, c["id"], "feedback", "--set", "satisfied=no", now="2026-05-20T09:00", actor="wang")
        assert c["state"] == "handling"
        assert deadline(c, "rehandle")["due_at"] == "2026-06-22T23:59:59+08:00"  # Jun 20 is a Saturday: rolled


class TestSuspension:
    def test_wd_deadline_moves_by_working_days_across_a_holiday(self, duban: Duban) -> None:
        """Suspended Sep 30 → resumed Oct 12 2026: 4 working days passed (Oct 8, 9, 10, 12), so 5wd moves 4 wd."""
        c = open_case(duban, "supervision", "--title", "挂起", "--unit", "区发改局", "--due", "5wd", now="2026-09-30T09:00")
        assert c["due_at"] == "2026-10-13T23:59:59+08:00"
        c = fire(duban, c["id"], "suspend", "--note", "等待鉴定", now="2026-09-30T10:00", actor="wang")
        assert c["suspended"] and all(t["status"] == "cancelled" for t in c["timers"])
        blocked = duban("case", "fire", str(c["id"]), "accept", now="2026-10-09T10:00", actor="fgj")
        assert blocked.code == 4 and "resume" in blocked.stderr
        assert duban.ok("tick", "--json", now="2026-10-11T10:00").json["fired_timers"] == 0
        c = fire(duban, c["id"], "resume", "--note", "鉴定完成", now="2026-10-12T10:00", actor="wang")
        assert not c["suspended"]
        assert c["due_at"] == "2026-10-19T23:59:59+08:00"

    def test_hour_deadline_moves_by_the_exact_suspended_time(self, duban: Duban) -> None:
        """An opinion suspended over a weekend moves its 5 h deadline by exactly the suspended hours."""
        c = open_case(duban, "opinion", "--title", "舆情", "--unit", "区发改局", now="2026-11-20T16:00")
        fire(duban, c["id"], "suspend", "--note", "核实中", now="2026-11-20T17:00", actor="wang")
        c = fire(duban, c["id"], "resume", "--note", "核实完毕", now="2026-11-23T09:00", actor="wang")
        # 64 hours suspended: 21:00 Fri + 64 h = 13:00 Mon
        assert deadline(c, "publish")["due_at"] == "2026-11-23T13:00:00+08:00"

    def test_hour_deadline_suspended_across_national_day_moves_by_the_exact_hours(self, duban: Duban) -> None:
        """Suspended Sep 30 21:00 → resumed Oct 8 09:00: 180 clock hours, holidays included, are added to 5 h."""
        c = open_case(duban, "opinion", "--title", "舆情", "--unit", "区发改局", now="2026-09-30T20:00")
        assert deadline(c, "publish")["due_at"] == "2026-10-01T01:00:00+08:00"
        fire(duban, c["id"], "suspend", "--note", "等待上级口径", now="2026-09-30T21:00", actor="wang")
        assert duban.ok("tick", "--json", now="2026-10-07T09:00").json["fired_timers"] == 0
        c = fire(duban, c["id"], "resume", "--note", "口径已定", now="2026-10-08T09:00", actor="wang")
        assert deadline(c, "publish")["due_at"] == "2026-10-08T13:00:00+08:00"
        assert deadline(c, "press_conference")["due_at"] == "2026-10-09T08:00:00+08:00"  # 10-01 20:00 + 180 h

    def test_bad_suspension_requests_change_nothing(self, duban: Duban) -> None:
        """Resume of a running case and suspend of a closed one are refused with exit 4, nothing written."""
        c = open_case(duban, "supervision", "--title", "x", "--unit", "区发改局", "--due", "10wd", now="2026-11-02T09:00")
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(c["id"]), "resume", "--note", "n", now="2026-11-03T09:00", actor="wang")
        assert run.code == 4 and "not suspended" in run.stderr
        assert row_counts(duban.db_url) == before


    def test_suspending_a_closed_case_is_refused(self, duban: Duban) -> None:
        """A verified case cannot be suspended: exit 4, nothing written."""
        c = open_case(duban, "supervision", "--title", "x", "--unit", "区发改局", "--due", "10wd", now="2026-11-02T09:00")
        fire(duban, c["id"], "accept", now="2026-11-02T10:00", actor="fgj")
        fire(duban, c["id"], "report", now="2026-11-03T10:00", actor="fgj")
        fire(duban, c["id"], "verify", now="2026-11-03T11:00", actor="wang")
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(c["id"]), "suspend", "--note", "n", now="2026-11-04T09:00", actor="wang")
        assert run.code == 4
        assert "closed" in run.stderr
        assert row_counts(duban.db_url) == before


class TestExtension:
    def test_approved_extension_replaces_the_deadline_and_reschedules(self, duban: Duban) -> None:
        """Approval moves the due date and its ladder; the yellow card now comes 1 wd before the new date."""
        c = open_case(duban, "supervision", "--title", "延期", "--unit", "区发改局", "--due", "2026-11-30", now="2026-11-02T09:00")
        fire(duban, c["id"], "accept", now="2026-11-02T10:00", actor="fgj")
        fire(duban, c["id"], "request_extension", "--set", "until=2026-12-31", "--note", "需协调多部门", now="2026-11-20T09:00", actor="fgj")
        c = fire(duban, c["id"], "approve_extension", now="2026-11-20T10:00", actor="wang")
        assert c["due_at"] == "2026-12-31T23:59:59+08:00"
        pending = [t for t in c["timers"] if t["status"] == "pending" and t["kind"].startswith("due:")]
        assert min(t["due_at"] for t in pending) == "2026-12-30T23:59:59+08:00"
        assert duban.ok("tick", "--json", now="2026-12-15T09:00").json["fired_timers"] == 0

    def test_refused_extension_keeps_lateness_against_the_original_date(self, duban: Duban) -> None:
        """After a refusal the case still expires on its original date."""
        c = open_case(duban, "supervision", "--title", "延期", "--unit", "区发改局", "--due", "2026-11-30", now="2026-11-02T09:00")
        fire(duban, c["id"], "request_extension", "--set", "until=2026-12-31", "--note", "需协调", now="2026-11-20T09:00", actor="fgj")
        c = fire(duban, c["id"], "refuse_extension", "--note", "理由不充分", now="2026-11-20T10:00", actor="wang")
        assert c["due_at"] == "2026-11-30T23:59:59+08:00"
        duban.ok("tick", now="2026-12-01T09:00")
        assert duban.ok("case", "show", str(c["id"]), "--json").json["state"] == "overdue"

    def test_bad_extension_requests_change_nothing(self, duban: Duban) -> None:
        """Too late, an earlier date, or approving what nobody asked: refused, nothing written."""
        c = open_case(duban, "supervision", "--title", "延期", "--unit", "区发改局", "--due", "2026-11-30", now="2026-11-02T09:00")
        before = row_counts(duban.db_url)
        late = duban("case", "fire", str(c["id"]), "request_extension", "--set", "until=2026-12-31", "--note", "n",
                     now="2026-12-01T09:00", actor="fgj")
        assert late.code == 4 and "has passed" in late.stderr
        earlier = duban("case", "fire", str(c["id"]), "request_extension", "--set", "until=2026-11-20", "--note", "n",
                        now="2026-11-10T09:00", actor="fgj")
        assert earlier.code == 2 and "after the current deadline" in earlier.stderr
        nobody = duban("case", "fire", str(c["id"]), "approve_extension", now="2026-11-10T09:00", actor="wang")
        assert nobody.code == 4 and "no extension was requested" in nobody.stderr
        assert row_counts(duban.db_url) == before


class TestAccountabilityRecords:
    def test_case_show_lists_the_measure_who_decided_and_why(self, duban: Duban) -> None:
        """hold_accountable's measure, decider, role, time and reason appear in case show."""
        c = open_case(duban, "supervision", "--title", "问责", "--unit", "区发改局", "--due", "2026-11-30", now="2026-11-02T09:00")
        duban.ok("tick", now="2026-12-20T09:00")
        fire(duban, c["id"], "hold_accountable", "--set", "measure=效能告诫", "--note", "超期且未说明理由",
             now="2026-12-20T10:00", actor="li")
        shown = duban.ok("case", "show", str(c["id"]), "--json").json
        assert shown["accountability"] == [{
            "measure": "效能告诫", "decided_by": "li", "role": "leader", "at": "2026-12-20T10:00:00+08:00",
            "reason": "超期且未说明理由", "audit_seq": shown["accountability"][0]["audit_seq"],
        }]
        assert "效能告诫" in duban.ok("case", "show", str(c["id"])).stdout

    def test_unknown_measure_is_refused(self, duban: Duban) -> None:
        """A measure outside the five allowed ones: exit 4 naming them, nothing written."""
        c = open_case(duban, "supervision", "--title", "问责", "--unit", "区发改局", "--due", "2026-11-30", now="2026-11-02T09:00")
        duban.ok("tick", now="2026-12-20T09:00")
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(c["id"]), "hold_accountable", "--set", "measure=罚款", now="2026-12-20T10:00", actor="li")
        assert run.code == 4
        assert "诫勉谈话" in run.stderr
        assert row_counts(duban.db_url) == before
