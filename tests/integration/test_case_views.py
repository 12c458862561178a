"""Reading cases: `case show` and `case list` read a case's pinned definition without validating
it again and list what may happen next without the engine's service module — what they show
is what the validated definition and the engine decide — and `duban case show` starts without
the libraries it does not need (README "Performance")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.clock import ManualClock
from duban.commands.demo import run_demo
from duban.engine.allowed import human_triggers, may_fire
from duban.engine.model import ENDED, RUNNING, Case, DeadlineState
from duban.engine.operations import REQUEST
from duban.engine.pinned import PinnedWorkflow
from duban.service.app import App
from duban.storage import listing
from duban.storage.database import Database
from duban.workflows import Catalog
from tests.conftest import Duban

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 2, 1, tzinfo=UTC)
# Loaded by a command that reads a case only if something slipped back onto its path.
NOT_ON_THE_READ_PATH = (
    "sqlmodel", "sqlalchemy.orm", "pydantic", "pydantic_core", "transitions", "structlog", "yaml", "alembic",
    "apscheduler", "chinese_calendar", "openpyxl", "duban.engine.definition", "duban.engine.service",
    "duban.workflows", "duban.storage.calendar_store", "duban.commands.daemon", "duban.service.timers",
)
# Loaded by a step on an existing case (`case fire`) only if it slipped back: the case's pinned definition
# was validated when it was pinned, and nothing is logged; no routes configured, so no outbox either.
NOT_ON_THE_FIRE_PATH = (
    "sqlmodel", "sqlalchemy.orm", "pydantic", "pydantic_core", "structlog", "rich", "yaml", "alembic", "apscheduler",
    "chinese_calendar", "openpyxl", "duban.engine.definition", "duban.commands.daemon", "duban.delivery.outbox",
    "duban.delivery.deliverer", "duban.delivery.start",
)
# Loaded by `tick` with nothing due only if it slipped back: no definition to read, no line to log, no delivery.
NOT_ON_AN_IDLE_TICK = (*NOT_ON_THE_FIRE_PATH, "transitions", "duban.delivery")
RUN = """
import json, sys
from duban.cli import main
sys.argv = ["duban", *json.loads(sys.argv[1])]
try:
    main()
finally:
    with open({modules!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def fresh_process(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`duban ARGS` in a new interpreter: what it printed, and every module it imported."""
    modules = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    done = subprocess.run([sys.executable, "-c", RUN.format(modules=str(modules)), json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    return done, set(json.loads(modules.read_text(encoding="utf-8")))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


def cases_of(wf_name: str) -> list[Case]:
    """A case of the workflow in every state, plain, suspended, closed, with an extension asked for,
    with its main deadline running or ended."""
    wf = Catalog().latest(wf_name)
    main = wf.spec.main_deadline
    out = []
    for state in wf.spec.states:
        for suspended, closed, request, status in [(False, False, False, RUNNING), (True, False, False, RUNNING),
                                                   (False, True, False, RUNNING), (False, False, True, RUNNING),
                                                   (False, False, False, ENDED)]:
            deadlines = {main: DeadlineState(main, "5wd", NOW, NOW + timedelta(days=7), False, status)} if main else {}
            out.append(Case(workflow=wf.name, workflow_version=wf.version, state=state, title="t", lead_unit="区发改局",
                            co_units=[], opened_at=NOW, opened_by="wang", id=1, suspended=suspended,
                            closed_at=NOW if closed else None, deadlines=deadlines,
                            data={REQUEST: {"until": "2026-12-31"}} if request else {}))
    return out


class TestWhatMayHappenNext:
    @pytest.mark.parametrize("wf_name", Catalog().names())
    def test_the_engines_decision(self, wf_name: str) -> None:
        """For every state, suspended or not, closed or not, with or without a pending extension: the
        triggers listed (with their roles) are the same under the pinned definition read for showing
        as under the validated one the engine fires with."""
        valid = Catalog().latest(wf_name)
        pinned = PinnedWorkflow.read(valid.raw, valid.source)
        for case in cases_of(wf_name):
            expected = human_triggers(valid, case)
            assert expected == [t for t in expected if t[1] != ("system",)]
            assert human_triggers(pinned, case) == expected, (case.state, case.suspended, case.closed_at)

    @pytest.mark.parametrize("wf_name", Catalog().names())
    def test_a_step_is_let_through_exactly_when_it_is_listed(self, wf_name: str) -> None:
        """`may_fire` (what the engine checks before a step) says yes to exactly the workflow's own
        triggers `human_triggers` lists, in every state, suspended or not, closed or not."""
        wf = Catalog().latest(wf_name)
        triggers = {t.trigger for t in wf.spec.transitions}
        for case in cases_of(wf_name):
            listed = {t for t, _ in human_triggers(wf, case)}
            assert {t for t in triggers if may_fire(wf, case, t)} == listed & triggers, (case.state, case.suspended)


class TestCaseViews:
    def test_pinned_and_validated_definitions_show_cases_alike(self, tmp_path: Path) -> None:
        """The demo year plus items with milestones, reports, a suspension and an extension request: a fresh
        App (pinned definitions, read as stored) shows every case exactly as one holding the validated ones."""
        url = f"sqlite:///{tmp_path / 'views.db'}"
        run_demo(url, TZ, echo=None)
        app = App(Database(url), ManualClock(datetime(2026, 11, 2, 9, tzinfo=TZ)), TZ)
        app.add_unit("区财政局")  # not among the demo's units
        for k in range(3):
            case = app.open_case("supervision", title=f"节点 {k}", lead_unit="区发改局", co_units=["区财政局"],
                                 due="2026-12-31", values={}, actor="王督查",
                                 milestones=[("2026-11-30", "完成方案编制")], report="monthly:5" if k else None)
            if k == 1:
                app.fire(case["id"], "suspend", actor="王督查", note="等待")
            if k == 2:
                app.fire(case["id"], "request_extension", actor="发改局联络员", note="需要", values={"until": "2027-01-31"})
        app.db.dispose()

        def shown(preload: bool) -> tuple[list[dict[str, Any]], set[type]]:
            reader = App(Database(url), ManualClock(datetime(2026, 12, 1, 9, tzinfo=TZ)), TZ)
            try:
                if preload:
                    with reader.db.read() as conn:
                        for c in listing.cases(conn):
                            reader.workflow_of(conn, c)
                return reader.list_cases(), {type(w) for w in reader._shown.values()}
            finally:
                reader.db.dispose()

        pinned, pinned_types = shown(preload=False)
        validated, validated_types = shown(preload=True)
        assert (pinned_types, validated_types) == ({PinnedWorkflow}, set())
        assert len(pinned) == 12
        assert pinned == validated


def opened(duban: Duban) -> str:
    case = duban.ok("case", "open", "supervision", "--title", "启动", "--unit", "区发改局", "--due", "2026-12-31",
                    "--milestone", "2026-11-30=完成方案编制", "--json", now="2026-11-02T09:00", actor="wang").json
    duban.ok("case", "fire", str(case["id"]), "accept", now="2026-11-02T10:00", actor="fgj")
    return str(case["id"])


class TestCaseShowStartsLean:
    @pytest.mark.parametrize("args", [[], ["--json"]], ids=["text", "json"])
    def test_case_show_loads_only_what_it_needs(self, duban: Duban, tmp_path: Path, args: list[str]) -> None:
        """In a fresh process, `case show` (with --now, text or --json) prints what the in-process CLI prints and
        imports none of SQLModel, SQLAlchemy's ORM, pydantic, transitions, structlog, YAML, the engine's service."""
        case_id = opened(duban)
        command = ["--db", duban.db_url, "--now", "2026-12-01T10:00+08:00", "case", "show", case_id, *args]
        done, modules = fresh_process(command, tmp_path)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == duban.ok(*command[2:]).stdout
        assert loaded(modules, NOT_ON_THE_READ_PATH) == []
        assert loaded(modules, ("psycopg",)) == []  # a SQLite database

    def test_case_list_loads_only_what_it_needs(self, duban: Duban, tmp_path: Path) -> None:
        """`case list --json` in a fresh process prints what the in-process CLI prints, just as lean."""
        opened(duban)
        done, modules = fresh_process(["--db", duban.db_url, "case", "list", "--json"], tmp_path)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == duban.ok("case", "list", "--json").stdout
        assert loaded(modules, NOT_ON_THE_READ_PATH) == []

    def test_case_show_on_postgresql(self, pg_url: str, tmp_path: Path) -> None:
        """On PostgreSQL too, `case show` in a fresh process prints what the in-process CLI prints."""
        duban = Duban(pg_url)
        duban.ok("init")
        duban.ok("user", "add", "wang", "--role", "office")
        duban.ok("user", "add", "fgj", "--role", "unit", "--unit", "区发改局")
        case_id = opened(duban)
        for args in ([], ["--json"]):
            done, modules = fresh_process(["--db", pg_url, "case", "show", case_id, *args], tmp_path)
            assert (done.returncode, done.stderr) == (0, "")
            assert done.stdout == duban.ok("case", "show", case_id, *args).stdout
            assert loaded(modules, NOT_ON_THE_READ_PATH) == []

    def test_case_fire_loads_only_what_it_needs(self, duban: Duban, tmp_path: Path) -> None:
        """In a fresh process, a step on a case (催办, repeatable) prints what the in-process CLI prints and
        validates no definition through pydantic, logs nothing (no structlog) and reads no YAML."""
        case_id = opened(duban)
        command = ["--db", duban.db_url, "--now", "2026-11-03T10:00+08:00", "--actor", "wang", "case", "fire", case_id,
                   "urge", "--note", "请抓紧"]
        done, modules = fresh_process(command, tmp_path)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout == duban.ok(*command[2:]).stdout
        assert loaded(modules, NOT_ON_THE_FIRE_PATH) == []

    def test_an_idle_tick_loads_only_what_it_needs(self, duban: Duban, tmp_path: Path) -> None:
        """`tick` with nothing due, in a fresh process, says so as the in-process CLI does, without the
        definitions, structlog and rich, YAML or the delivery machinery."""
        opened(duban)
        command = ["--db", duban.db_url, "--now", "2026-11-02T10:30+08:00", "tick"]
        done, modules = fresh_process(command, tmp_path)
        assert (done.returncode, done.stderr, done.stdout) == (0, "", "没有到期的计时器\n")
        assert done.stdout == duban.ok(*command[2:]).stdout
        assert loaded(modules, NOT_ON_AN_IDLE_TICK) == []

    def test_a_missing_case_still_exits_3(self, duban: Duban, tmp_path: Path) -> None:
        """The lean path keeps the error contract: no such case is exit 3 with the message on stderr."""
        done, _ = fresh_process(["--db", duban.db_url, "case", "show", "999"], tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (3, "", "error: no case 999\n")


class TestLogsStillReachStderr:
    def test_a_case_command_logs_json_lines_on_stderr(self, duban: Duban, tmp_path: Path) -> None:
        """structlog loads at the first line a `case` command logs: the approximate-deadline warning of an item
        due in 2027 (no calendar yet) is a JSON line on stderr, and stdout stays one JSON document."""
        done, modules = fresh_process(["--db", duban.db_url, "--now", "2026-12-28T09:00", "--actor", "wang", "case",
                                       "open", "supervision", "--title", "跨年", "--unit", "区发改局", "--due", "5wd",
                                       "--json"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["approximate"] is True
        lines = [json.loads(line) for line in done.stderr.splitlines()]
        assert [(line["event"], line["level"]) for line in lines] == [("deadline.approximate", "warning")] * len(lines)
        assert lines and lines[0]["logger"] == "duban"
        assert "structlog" in modules
