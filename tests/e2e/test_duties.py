"""Milestones (时间节点) and recurring progress reports on supervision items."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Duban, row_counts


def open_item(duban: Duban, *extra: str) -> dict[str, Any]:
    case = duban.ok("case", "open", "supervision", "--title", "重点项目", "--unit", "区发改局", "--due", "2026-09-30",
                    *extra, "--json", now="2026-03-02T09:00", actor="wang").json
    duban.ok("case", "fire", str(case["id"]), "accept", now="2026-03-02T10:00", actor="fgj")
    return case


def deadline(duban: Duban, case_id: int, name: str) -> dict[str, Any]:
    shown = duban.ok("case", "show", str(case_id), "--json").json
    return next(d for d in shown["deadlines"] if d["name"] == name)


class TestMilestones:
    def test_each_milestone_has_its_own_deadline_yellow_and_red(self, duban: Duban) -> None:
        """A missed milestone gets its own yellow and red card while the item's due date is still ahead."""
        case = open_item(duban, "--milestone", "2026-04-30=完成方案编制", "--milestone", "2026-06-30=项目开工")
        labels = {d["name"]: d["label"] for d in duban.ok("case", "show", str(case["id"]), "--json").json["deadlines"]}
        assert labels["milestone_1"] == "时间节点：完成方案编制"
        lines = duban.ok("tick", "--json", now="2026-05-01T09:00").json["lines"]
        assert any("完成方案编制 节点预警" in line for line in lines)
        assert any("完成方案编制 节点超期" in line for line in lines)
        shown = duban.ok("case", "show", str(case["id"]), "--json").json
        assert (shown["state"], shown["overdue"], shown["escalation_level"]) == ("in_progress", True, 2)
        assert deadline(duban, case["id"], "milestone_2")["missed"] is False

    def test_completing_a_milestone_on_time_stops_its_timers(self, duban: Duban) -> None:
        """complete_milestone --set milestone=1 before its date: no card for it, the other still runs."""
        case = open_item(duban, "--milestone", "2026-04-30=完成方案编制", "--milestone", "2026-06-30=项目开工")
        duban.ok("case", "fire", str(case["id"]), "complete_milestone", "--set", "milestone=1",
                 now="2026-04-20T09:00", actor="fgj")
        assert duban.ok("tick", "--json", now="2026-05-06T09:00").json["lines"] == []
        assert deadline(duban, case["id"], "milestone_1")["status"] == "done"
        assert deadline(duban, case["id"], "milestone_2")["status"] == "running"

    def test_completing_an_unknown_milestone_is_refused(self, duban: Duban) -> None:
        """--set milestone=3 on a case with two milestones: exit 4 naming the open ones, nothing written."""
        case = open_item(duban, "--milestone", "2026-04-30=完成方案编制", "--milestone", "2026-06-30=项目开工")
        before = row_counts(duban.db_url)
        run = duban("case", "fire", str(case["id"]), "complete_milestone", "--set", "milestone=3",
                    now="2026-04-20T09:00", actor="fgj")
        assert run.code == 4
        assert "open: 1, 2" in run.stderr
        assert row_counts(duban.db_url) == before


class TestProgressReports:
    def test_monthly_report_missing_warns_and_the_next_period_begins(self, duban: Duban) -> None:
        """monthly:5 — April's report arrives, May's does not: one 进度缺报 for May, then June is due."""
        case = open_item(duban, "--report", "monthly:5")
        assert deadline(duban, case["id"], "progress")["due_at"] == "2026-04-05T23:59:59+08:00"
        duban.ok("case", "fire", str(case["id"]), "report_progress", now="2026-04-01T10:00", actor="fgj")
        april = duban.ok("tick", "--json", now="2026-04-06T09:00").json["lines"]
        assert any("已按期报送" in line for line in april)
        assert not any("缺报" in line for line in april)
        may = duban.ok("tick", "--json", now="2026-05-06T09:00").json["lines"]
        # May's 报送提醒 (2 wd before the 5th) came due in the same catch-up: overtaken, not sent
        assert sum("进度缺报" in line and "取代" not in line for line in may) == 1
        assert sum("报送提醒（已被进度缺报取代，不发通知）" in line for line in may) == 1
        progress = deadline(duban, case["id"], "progress")
        assert progress["due_at"] == "2026-06-05T23:59:59+08:00"
        assert progress["missed"] is False
        notices = duban.ok("notice", "list", "--case", str(case["id"]), "--json").json
        # a missing report is its own kind of notice (催报通知), not a yellow-card 预警提醒
        missing = [n for n in notices if n["kind"] == "催报通知"]
        assert {n["recipient"] for n in missing} == {"区发改局", "office"}
        assert not any(n["kind"] == "预警提醒" for n in notices)
        assert all(n["title"].count("（") == 1 for n in missing)  # no brackets inside the brackets

    def test_biweekly_reports_every_fourteen_days(self, duban: Duban) -> None:
        """每两周信息报送: the first report is due 14 days after acceptance, then every 14 days."""
        case = open_item(duban, "--report", "biweekly")
        assert deadline(duban, case["id"], "progress")["due_at"] == "2026-03-16T23:59:59+08:00"
        duban.ok("tick", now="2026-03-17T09:00")
        assert deadline(duban, case["id"], "progress")["due_at"] == "2026-03-30T23:59:59+08:00"

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--report", "weekly", "allowed: monthly:5"),
            ("--report", "monthly:32", "allowed: monthly:5"),
            ("--milestone", "完成方案", "use DATE=TITLE"),
            ("--milestone", "2026-02-01=已过去", "already past"),
            ("--milestone", "5wd=相对日期", "use DATE=TITLE"),
        ],
    )
    def test_bad_duties_are_usage_errors_and_change_nothing(self, duban: Duban, option: str, value: str, message: str) -> None:
        """A malformed schedule or milestone: exit 2 naming what is allowed, no case written."""
        before = row_counts(duban.db_url)
        run = duban("case", "open", "supervision", "--title", "t", "--unit", "区发改局", "--due", "2026-09-30",
                    option, value, now="2026-03-02T09:00", actor="wang")
        assert run.code == 2
        assert message in run.stderr
        assert row_counts(duban.db_url) == before
