"""People read Chinese; scripts read identifiers (SPEC §16).

Every line a person reads — the demo, `tick`, `case fire`, `case show`, `case history`,
`notice list`, `user list`, `scheduler status` — shows labels and local times written
`2026-11-30 23:59`; `--json` keeps the identifiers and ISO instants. The walk over every
shipped workflow looks for any of the workflow's trigger or state identifiers (whole words)
in what a person reads.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from duban.cli import cli
from duban.engine.operations import LABELS as SHARED_LABELS
from duban.workflows import Catalog
from tests.conftest import Duban

README = Path(__file__).resolve().parents[2] / "README.md"
ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
ACTORS = {"office": "wang", "unit": "fgj", "leader": "li"}
ROLE_WORDS = re.compile(r"\b(?:office|unit|leader|inspector|system)\b")


def identifiers(*workflows: str) -> re.Pattern[str]:
    """Whole-word matches of the workflows' trigger and state identifiers (and the shared operations')."""
    names: set[str] = set(SHARED_LABELS)
    for name in workflows:
        spec = Catalog().latest(name).spec
        names |= set(spec.states) | {t.trigger for t in spec.transitions}
    return re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")


def read_by_a_person(text: str) -> str:
    """The text less the commands it suggests typing (`duban audit verify`, `--now 2018-01-31T10:00`: what
    a person types, not what they read)."""
    return re.sub(r"duban(?: [\x21-\x7e]+)+", "", text)


def bare_identifiers(pattern: re.Pattern[str], text: str) -> list[str]:
    return sorted({m.group(0) for m in pattern.finditer(read_by_a_person(text))})


def open_case(duban: Duban, workflow: str, now: str) -> dict[str, Any]:
    spec = Catalog().latest(workflow).spec
    due = ["--due", "2026-04-30"] if any(d.rule == "from_case" for d in spec.deadlines.values()) else []
    return dict(duban.ok("case", "open", workflow, "--title", f"{spec.label}样例", "--unit", "区发改局", *due, "--json",
                         now=now, actor="wang").json)


def step(duban: Duban, case_id: int, now: str) -> str | None:
    """Fire the first allowed trigger a person may fire that succeeds (never 问责 or 挂起: the
    walk should keep the case moving); the trigger fired, or None."""
    case = duban.ok("case", "show", str(case_id), "--json").json
    for allowed in case["allowed_triggers"]:
        if allowed["trigger"] in ("hold_accountable", "suspend", "request_extension"):
            continue
        for role in allowed["roles"]:
            actor = ACTORS.get(role)
            if actor is None:
                continue
            for extra in ([], ["--set", "satisfied=no"], ["--set", "unit=区发改局"]):
                run = duban("case", "fire", str(case_id), allowed["trigger"], "--note", "已办理", *extra, now=now, actor=actor)
                if run.code == 0:
                    return str(allowed["trigger"])
    return None


@pytest.fixture
def walked(duban: Duban) -> dict[str, Any]:
    """A case of every shipped workflow, moved by people and by the clock: what each read command printed."""
    printed: dict[str, Any] = {"ticks": [], "fired": [], "cases": {}}
    days = ["2026-03-02", "2026-03-03", "2026-03-04"]
    for workflow in Catalog().names():
        case = open_case(duban, workflow, f"{days[0]}T09:00")
        printed["cases"][workflow] = case["id"]
        for day in days:
            step(duban, case["id"], f"{day}T10:00")
    for when in ("2026-03-20T09:00", "2026-05-20T09:00", "2026-08-20T09:00"):
        printed["ticks"].append(duban.ok("tick", now=when).stdout)
        for case_id in printed["cases"].values():
            fired = step(duban, case_id, when.replace("09:00", "10:00"))
            if fired:
                printed["fired"].append(fired)
    for workflow, case_id in printed["cases"].items():
        printed[workflow] = {cmd: duban.ok("case", cmd, str(case_id)).stdout for cmd in ("history", "show")}
    printed["notices"] = duban.ok("notice", "list").stdout
    printed["list"] = duban.ok("case", "list").stdout
    return printed


class TestEveryWorkflowInChinese:
    def test_history_and_show_hold_no_bare_identifier(self, walked: dict[str, Any]) -> None:
        """`case history` and `case show` of a case of each workflow name no trigger or state by its identifier."""
        for workflow in Catalog().names():
            pattern = identifiers(workflow)
            for command, text in walked[workflow].items():
                assert len(text.splitlines()) > 3, (workflow, command)
                assert bare_identifiers(pattern, text) == [], (workflow, command, text)
                assert not ROLE_WORDS.search(text), (workflow, command)
                assert not ISO_INSTANT.search(text), (workflow, command)

    def test_the_walk_moved_every_case(self, walked: dict[str, Any]) -> None:
        """The walk is real: the clock escalated cases, people fired triggers, history shows both in Chinese."""
        everything = "".join(walked["ticks"])
        histories = "".join(walked[w]["history"] for w in Catalog().names())
        assert "升级督办" in histories and "签收" in walked["supervision"]["history"]
        assert "预警级别" in everything and "已超期" in everything
        assert walked["fired"]

    def test_tick_notice_and_case_list_in_chinese(self, walked: dict[str, Any]) -> None:
        """`tick` lines, `notice list` and `case list` read in Chinese (no `case 1 expire → overdue`, no `level 2`)."""
        pattern = identifiers(*Catalog().names())
        for text in [*walked["ticks"], walked["notices"], walked["list"]]:
            assert bare_identifiers(pattern, text) == [], text
            assert not re.search(r"\b(?:case|level)\b", text), text
            assert not ROLE_WORDS.search(text), text
            assert not ISO_INSTANT.search(text), text
        assert "督查室" in walked["notices"]  # a 督办通知 to the office, named as people name it

    def test_json_keeps_the_identifiers(self, duban: Duban, walked: dict[str, Any]) -> None:
        """`case history --json` has both: the identifiers scripts read and the labels beside them."""
        events = duban.ok("case", "history", str(walked["cases"]["supervision"]), "--json").json
        opened = events[0]
        assert (opened["action"], opened["role"], opened["to_state"]) == ("open", "office", "assigned")
        assert (opened["action_label"], opened["role_label"], opened["to_state_label"]) == ("交办", "督查室", "已交办")
        assert ISO_INSTANT.match(opened["at"]) and opened["at"].endswith("+08:00")
        accepted = next(e for e in events if e["trigger"] == "accept")
        assert accepted["trigger_label"] == "签收"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What `duban demo` printed, run once."""
    folder = tmp_path_factory.mktemp("demo")
    env = {"DUBAN_DB": None, "DUBAN_NOW": None, "DUBAN_ACTOR": None, "DUBAN_TZ": None}
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{folder / 'duban.db'}", "demo"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


class TestTheDemo:
    def test_demo_output_holds_no_bare_identifier(self, demo: str) -> None:
        """Every line of the demo — people's steps, the clock's escalations, the result table — in Chinese."""
        assert bare_identifiers(identifiers("supervision"), demo) == []
        assert not re.search(r"\b(?:case|cases|level|notices)\b", read_by_a_person(demo))
        assert not ISO_INSTANT.search(read_by_a_person(demo))
        assert "案件 7 超期 → 已超期" in demo and "结果：" in demo
        assert "2017-06-30 23:59" in demo

    def test_demo_and_readme_suggest_the_same_case(self, demo: str) -> None:
        """The demo's 试试 line and the README's Quick start name the same case to look at."""
        suggested = re.search(r"duban case show (\d+)", demo)
        assert suggested is not None and suggested.group(1) == "7"  # the one never signed for, still open at 通报
        quick_start = README.read_text(encoding="utf-8").split("## A worked example")[0]
        assert f"duban case show {suggested.group(1)}" in quick_start


class TestCommands:
    def test_fire_prints_the_step_in_chinese(self, duban: Duban) -> None:
        """`case fire 1 accept` and `case fire 1 签收` both print 案件 1：签收 → 办理中."""
        open_case(duban, "supervision", "2026-03-02T09:00")
        run = duban.ok("case", "fire", "1", "accept", now="2026-03-02T10:00", actor="fgj")
        assert run.stdout.strip() == "案件 1：签收 → 办理中"
        step_json = duban.ok("case", "fire", "1", "report", "--json", now="2026-03-03T10:00", actor="fgj").json["step"]
        assert (step_json["trigger"], step_json["trigger_label"], step_json["state"]) == ("report", "报告办理情况", "reported")

    def test_an_empty_list_says_so_in_chinese(self, duban: Duban) -> None:
        """`notice list` with nothing sent prints （无）, not an English placeholder."""
        assert duban.ok("notice", "list").stdout.strip() == "（无）"

    def test_user_list_names_roles_in_chinese(self, duban: Duban) -> None:
        """`user list` shows 督查室 / 承办单位 / 分管领导 / 纪检监察; `--json` keeps office, unit …"""
        text = duban.ok("user", "list").stdout
        for label in ("督查室", "承办单位", "分管领导", "纪检监察"):
            assert label in text
        assert not ROLE_WORDS.search(text)
        assert {u["role"] for u in duban.ok("user", "list", "--json").json} == {"office", "unit", "leader", "inspector"}

    def test_case_show_lists_live_timers_unless_all(self, duban: Duban) -> None:
        """Accepting ends the sign-for deadline and cancels its timer: `case show` leaves it out, `--all` lists it."""
        open_case(duban, "supervision", "2026-03-02T09:00")
        duban.ok("case", "fire", "1", "签收", now="2026-03-02T10:00", actor="fgj")
        cancelled = [t for t in duban.ok("case", "show", "1", "--json").json["timers"] if t["status"] == "cancelled"]
        assert cancelled  # the JSON has every timer
        shown = duban.ok("case", "show", "1").stdout
        everything = duban.ok("case", "show", "1", "--all").stdout
        assert "已取消" not in shown and "--all" in shown
        assert everything.count("已取消") == len(cancelled)

    def test_approximate_column_only_when_something_is(self, duban: Duban) -> None:
        """约 appears only for a case with a deadline counted on weekends only (2027, no calendar yet)."""
        open_case(duban, "supervision", "2026-03-02T09:00")
        exact = duban.ok("case", "show", "1").stdout
        assert "约" not in exact and "否  否" not in exact
        duban.ok("case", "open", "supervision", "--title", "跨年", "--unit", "区发改局", "--due", "5wd",
                 now="2026-12-28T09:00", actor="wang")
        assert "约" in duban.ok("case", "show", "2").stdout

    def test_workflow_show_lists_only_fields_a_person_may_set(self, duban: Duban) -> None:
        """`workflow show proposal` lists none of reopened / outcome (transitions record them); complaint lists urgent only."""
        proposal = duban.ok("workflow", "show", "proposal").stdout
        assert "字段 fields" not in proposal
        complaint = duban.ok("workflow", "show", "complaint").stdout.split("字段 fields")[1]
        assert "urgent" in complaint and "reopened" not in complaint and "outcome" not in complaint

    def test_scheduler_status_in_chinese(self, duban: Duban) -> None:
        """`scheduler status` for a person: counts, the next due time and the nodes in Chinese."""
        open_case(duban, "supervision", "2026-03-02T09:00")
        text = duban.ok("scheduler", "status", now="2026-03-10T09:00").stdout
        assert "计时器：" in text and "迟滞" in text and "调度节点" in text
        assert not re.search(r"\b(?:pending|late|timers|nodes|now)\b", text)
        assert "2026-03-10 09:00" in text and not ISO_INSTANT.search(text)
        status = duban.ok("scheduler", "status", "--json", now="2026-03-10T09:00").json
        assert status["now"] == "2026-03-10T09:00:00+08:00"
        assert status["oldest_late"][0]["label"] == "签收时限 · 催签"


class TestLogs:
    def test_a_pinned_command_logs_in_its_own_time(self, duban: Duban) -> None:
        """The deadline.approximate warning of a case opened with DUBAN_NOW pinned carries that instant, in the office's zone."""
        run = duban.ok("case", "open", "supervision", "--title", "跨年", "--unit", "区发改局", "--due", "5wd",
                       env={"DUBAN_NOW": "2026-12-28T09:00"}, actor="wang")
        line = json.loads(run.stderr.strip().splitlines()[-1])
        assert line["event"] == "deadline.approximate"
        assert line["timestamp"] == "2026-12-28T09:00:00+08:00"
        assert line["due_at"] == "2027-01-04T23:59:59+08:00"

    def test_info_lines_never_reach_a_terminal(self, duban: Duban) -> None:
        """On a terminal, DUBAN_LOG_LEVEL=INFO still shows a person nothing below WARNING; piped, it does."""
        duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "5wd",
                 now="2026-03-02T09:00", actor="wang")
        args = [sys.executable, "-m", "duban.cli", "--db", duban.db_url, "--now", "2026-03-02T10:00", "--actor", "fgj",
                "case", "fire", "1", "签收"]
        env = {**os.environ, "DUBAN_LOG_LEVEL": "INFO"}
        on_terminal = _stderr_on_a_terminal(args, env)
        assert "case.transitioned" not in on_terminal
        again = subprocess.run([sys.executable, "-m", "duban.cli", "--db", duban.db_url, "--now", "2026-03-03T10:00",
                                "--actor", "fgj", "case", "fire", "1", "报告办理情况"],
                               capture_output=True, text=True, env=env, check=True)
        assert "case.transitioned" in again.stderr
        logged = [json.loads(line) for line in again.stderr.splitlines() if "case.transitioned" in line]
        assert logged[0]["timestamp"] == "2026-03-03T10:00:00+08:00"


def _stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """Run ``args`` with stderr on a pseudo-terminal; what it wrote there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=follower, env=env, check=True, timeout=60)
        assert proc.returncode == 0
        os.set_blocking(leader, False)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(leader)
        os.close(follower)
