"""Bad input through `duban`: each gets a clear message on stderr, the SPEC §8 exit code
(2 usage, 3 not found, 4 refused, 5 conflict, 1 other) and changes nothing in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from duban.cli import cli
from tests.conftest import Duban, Run, row_counts

DATA = Path(__file__).parent.parent / "unit" / "data"
NOW = "2026-03-02T09:00"


def refused(duban: Duban, *args: str, code: int, says: tuple[str, ...] = (), now: str | None = NOW,
            actor: str | None = None) -> Run:
    """Run a command that must fail: the exit code, the message, and not one row changed."""
    before = row_counts(duban.db_url)
    run = duban(*args, now=now, actor=actor)
    assert run.code == code, f"exit {run.code}, stderr: {run.stderr}"
    for fragment in says:
        assert fragment in run.stderr, f"{fragment!r} not in {run.stderr!r}"
    assert run.stdout == ""
    assert row_counts(duban.db_url) == before
    return run


@pytest.fixture
def case_id(duban: Duban) -> str:
    """A supervision case of 区发改局 with co-unit 区财政局, due in 15 working days."""
    run = duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--co-unit", "区财政局",
                   "--due", "15wd", "--json", now=NOW, actor="wang")
    return str(run.json["id"])


@pytest.fixture
def reported(duban: Duban, case_id: str) -> str:
    duban.ok("case", "fire", case_id, "accept", now=NOW, actor="fgj")
    duban.ok("case", "fire", case_id, "report", now=NOW, actor="fgj")
    return case_id


def open_args(*extra: str, due: str = "15wd") -> tuple[str, ...]:
    return ("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", due, *extra)


class TestNotFound:
    def test_unknown_case_id_on_show(self, duban: Duban, case_id: str) -> None:
        """`case show 999` exits 3 saying there is no such case."""
        refused(duban, "case", "show", "999", code=3, says=("no case 999",))

    def test_unknown_case_id_on_fire(self, duban: Duban, case_id: str) -> None:
        """Firing on case 999 exits 3 and writes nothing."""
        refused(duban, "case", "fire", "999", "accept", code=3, says=("999",), actor="fgj")

    def test_actor_not_in_the_directory(self, duban: Duban, case_id: str) -> None:
        """An --actor nobody added exits 3 and says how to add one."""
        refused(duban, "case", "fire", case_id, "accept", code=3, says=("'nobody'", "user add"), actor="nobody")

    def test_unknown_workflow(self, duban: Duban) -> None:
        """Opening a workflow that does not exist exits 3 listing the available ones."""
        refused(duban, "case", "open", "nosuch", "--title", "t", "--unit", "区发改局", "--due", "5wd", code=3,
                says=("unknown workflow 'nosuch'", "supervision"), actor="wang")


class TestRefused:
    def test_trigger_not_allowed_in_the_state(self, duban: Duban, case_id: str) -> None:
        """Verifying an unsigned case exits 4, naming the state and the triggers allowed now."""
        refused(duban, "case", "fire", case_id, "verify", code=4, says=("'verify'", "assigned", "accept"),
                actor="wang")

    def test_unknown_trigger(self, duban: Duban, case_id: str) -> None:
        """A trigger the workflow does not have exits 4 and lists what is allowed."""
        refused(duban, "case", "fire", case_id, "approve", code=4, says=("'approve'", "accept"), actor="fgj")

    def test_role_not_allowed(self, duban: Duban, case_id: str) -> None:
        """The office cannot sign for a unit: exit 4 naming the allowed role."""
        refused(duban, "case", "fire", case_id, "accept", code=4, says=("allowed roles: unit",), actor="wang")

    def test_inspector_reads_but_does_not_act(self, duban: Duban, reported: str) -> None:
        """纪检监察 may read everything but may not verify a report."""
        refused(duban, "case", "fire", reported, "verify", code=4, says=("inspector",), actor="zhao")
        assert duban.ok("case", "show", reported, "--json", actor="zhao").json["state"] == "reported"

    def test_unit_acting_on_another_units_case(self, duban: Duban, case_id: str) -> None:
        """区市场监管局 is neither lead nor co-unit, so its user is refused (exit 4)."""
        refused(duban, "case", "fire", case_id, "accept", code=4, says=("区市场监管局",), actor="scj")

    def test_unit_may_not_open_cases(self, duban: Duban) -> None:
        """Only the office or a leader opens cases (交办)."""
        refused(duban, *open_args(), code=4, says=("may not open",), actor="fgj")

    def test_reject_without_a_note(self, duban: Duban, reported: str) -> None:
        """退回重办 needs a note: exit 4 telling to give --note."""
        refused(duban, "case", "fire", reported, "reject", code=4, says=("--note",), actor="wang")

    @pytest.mark.parametrize(("sets", "says"), [((), "measure"), (("--set", "measure=罚款"), "罚款")])
    def test_accountability_without_a_listed_measure(self, duban: Duban, reported: str, sets: tuple[str, ...],
                                                      says: str) -> None:
        """问责 needs one of the listed measures; the message lists them."""
        refused(duban, "case", "fire", reported, "hold_accountable", *sets, code=4, says=(says, "诫勉谈话"),
                actor="li")

    def test_acting_as_system(self, duban: Duban, case_id: str) -> None:
        """No person may act as `system`: exit 4."""
        refused(duban, "case", "fire", case_id, "accept", code=4, says=("system",), actor="system")

    def test_firing_on_a_closed_case(self, duban: Duban, reported: str) -> None:
        """A verified case refuses further triggers (exit 4)."""
        duban.ok("case", "fire", reported, "verify", now=NOW, actor="wang")
        refused(duban, "case", "fire", reported, "report", code=4, says=("not allowed",), actor="fgj")


class TestUsage:
    def test_missing_actor(self, duban: Duban, case_id: str) -> None:
        """A command that changes a case without --actor exits 2 asking for one."""
        refused(duban, "case", "fire", case_id, "accept", code=2, says=("--actor",))

    def test_missing_actor_on_open(self, duban: Duban) -> None:
        """Opening without --actor exits 2 too."""
        refused(duban, *open_args(), code=2, says=("--actor",))

    @pytest.mark.parametrize("due", ["5weeks", "tomorrow", "2027-13-01", "-3wd", "0wd"])
    def test_malformed_due(self, duban: Duban, due: str) -> None:
        """A --due that is none of the rule forms exits 2, quoting it and listing the forms."""
        refused(duban, *open_args(due=due), code=2, says=(due, "5wd"), actor="wang")

    @pytest.mark.parametrize("due", ["2026-02-27", "2026-03-02T08:00"])
    def test_due_in_the_past(self, duban: Duban, due: str) -> None:
        """A due date already past at opening exits 2."""
        refused(duban, *open_args(due=due), code=2, says=("already past",), actor="wang")

    @pytest.mark.parametrize("now", ["yesterday", "2026-13-45", "02/03/2026"])
    def test_malformed_now(self, duban: Duban, case_id: str, now: str) -> None:
        """A --now that is not an ISO instant exits 2 naming --now."""
        refused(duban, "case", "fire", case_id, "accept", code=2, says=("--now", now), now=now, actor="fgj")

    def test_malformed_now_from_the_environment(self, duban: Duban, case_id: str) -> None:
        """DUBAN_NOW is checked the same way."""
        before = row_counts(duban.db_url)
        run = duban("case", "fire", case_id, "accept", actor="fgj", env={"DUBAN_NOW": "next monday"})
        assert run.code == 2 and "next monday" in run.stderr
        assert row_counts(duban.db_url) == before

    @pytest.mark.parametrize("pair", ["measure", "=诫勉谈话"])
    def test_malformed_set(self, duban: Duban, reported: str, pair: str) -> None:
        """A --set that is not KEY=VALUE exits 2 showing the form."""
        refused(duban, "case", "fire", reported, "hold_accountable", "--set", pair, code=2, says=("KEY=VALUE",),
                actor="wang")

    def test_set_key_the_trigger_does_not_take(self, duban: Duban, case_id: str) -> None:
        """--set colour=red on accept exits 2."""
        refused(duban, "case", "fire", case_id, "accept", "--set", "colour=red", code=2, says=("colour",),
                actor="fgj")

    def test_set_unknown_field_at_opening(self, duban: Duban) -> None:
        """A field the workflow does not have exits 2 at opening."""
        refused(duban, *open_args("--set", "colour=red"), code=2, says=("colour",), actor="wang")

    def test_lead_unit_repeated_as_co_unit(self, duban: Duban) -> None:
        """The lead unit cannot also be a co-unit."""
        refused(duban, *open_args("--co-unit", "区发改局"), code=2, says=("co-unit",), actor="wang")

    def test_case_id_not_a_number(self, duban: Duban, case_id: str) -> None:
        """`case fire abc accept` is a usage error (exit 2)."""
        run = duban("case", "fire", "abc", "accept", now=NOW, actor="fgj")
        assert run.code == 2 and "abc" in run.stderr

    def test_empty_title(self, duban: Duban) -> None:
        """A case needs a title."""
        refused(duban, "case", "open", "supervision", "--title", "  ", "--unit", "区发改局", "--due", "5wd", code=2,
                says=("--title",), actor="wang")

    def test_unknown_time_zone(self, duban: Duban, case_id: str) -> None:
        """--tz must be an IANA zone name (exit 2)."""
        refused(duban, "--tz", "Mars/Olympus", "case", "fire", case_id, "accept", code=2, says=("Mars/Olympus",),
                actor="fgj")

    def test_export_into_a_missing_folder(self, duban: Duban, case_id: str, tmp_path: Path) -> None:
        """An audit export whose --out folder does not exist exits 2 and writes no file."""
        target = tmp_path / "missing" / "audit.jsonl"
        refused(duban, "audit", "export", "--format", "jsonl", "--out", str(target), code=2, says=("--out",))
        assert not target.parent.exists()

    def test_bad_role_on_user_add(self, duban: Duban) -> None:
        """`user add --role mayor` exits 2 listing the roles."""
        refused(duban, "user", "add", "zhang", "--role", "mayor", code=2, says=("office", "unit"))

    def test_duplicate_user(self, duban: Duban) -> None:
        """Adding a name already in the directory is refused and the existing user is kept."""
        refused(duban, "user", "add", "wang", "--role", "leader", code=4, says=("'wang' already exists",))
        assert {u["name"]: u["role"] for u in duban.ok("user", "list", "--json").json}["wang"] == "office"

    def test_unit_user_needs_a_unit(self, duban: Duban) -> None:
        """A unit user without --unit exits 2."""
        refused(duban, "user", "add", "zhang", "--role", "unit", code=2, says=("--unit",))

    def test_user_named_system(self, duban: Duban) -> None:
        """Nobody can be added under the scheduler's name."""
        refused(duban, "user", "add", "system", "--role", "office", code=2, says=("system",))

    def test_bad_calendar_file(self, duban: Duban, tmp_path: Path) -> None:
        """A calendar file with a bad date exits 2 naming the file and the entry; no year becomes known."""
        bad = tmp_path / "calendar-2027.yaml"
        bad.write_text("year: 2027\nsource: 通知\nholidays:\n  - {date: 2027-02-30, name: 春节}\n", encoding="utf-8")
        refused(duban, "calendar", "import", str(bad), code=2, says=(str(bad), "2027-02-30"))
        assert duban.ok("calendar", "show", "2027", "--json").json["known"] is False


class TestConflict:
    def test_stale_expected_version(self, duban: Duban, case_id: str) -> None:
        """--expect-version 1 after someone moved the case on exits 5."""
        duban.ok("case", "fire", case_id, "accept", now=NOW, actor="fgj")
        refused(duban, "case", "fire", case_id, "report", "--expect-version", "1", code=5, says=("changed",),
                actor="fgj")


class TestWorkflowFiles:
    @pytest.mark.parametrize(
        ("name", "path", "reason"),
        [
            ("bad_yaml_syntax.yaml", "line 8, column 7", "YAML syntax error"),
            ("bad_wrong_type.yaml", "version", "valid integer"),
            ("bad_unreachable_state.yaml", "states.archived", "unreachable"),
        ],
    )
    def test_validate_names_file_path_and_reason(self, duban: Duban, name: str, path: str, reason: str) -> None:
        """`workflow validate` exits 4 with the file, the path inside it and what is wrong."""
        file = str(DATA / name)
        run = refused(duban, "workflow", "validate", file, code=4, says=(file, path, reason))
        assert f"{file}: {path}: " in run.stderr

    def test_validate_a_good_file(self, duban: Duban) -> None:
        """The shipped supervision file validates (exit 0)."""
        from duban.workflows import SHIPPED_DIR

        run = duban.ok("workflow", "validate", str(SHIPPED_DIR / "supervision.yaml"))
        assert "ok" in run.stdout

    def test_missing_workflow_file(self, duban: Duban, tmp_path: Path) -> None:
        """Validating a file that does not exist fails with a message naming it."""
        missing = str(tmp_path / "nope.yaml")
        run = duban("workflow", "validate", missing)
        assert run.code != 0 and "nope.yaml" in run.stderr


class TestDatabasePath:
    def run(self, db: str, *args: str) -> Run:
        result = CliRunner().invoke(cli, ["--db", db, *args], env={"DUBAN_NOW": "", "DUBAN_ACTOR": ""},
                                    catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    @pytest.mark.parametrize("command", [("init",), ("case", "list")])
    def test_missing_folder(self, tmp_path: Path, command: tuple[str, ...]) -> None:
        """A database in a folder that does not exist exits 1 naming the folder, and creates nothing."""
        db = tmp_path / "no" / "such" / "duban.db"
        run = self.run(f"sqlite:///{db}", *command)
        assert run.code == 1
        assert "does not exist" in run.stderr and str(db.parent) in run.stderr
        assert not (tmp_path / "no").exists()

    def test_plain_path_in_a_missing_folder(self, tmp_path: Path) -> None:
        """--db given as a plain path is a SQLite file, checked the same way."""
        run = self.run(str(tmp_path / "missing" / "duban.db"), "init")
        assert run.code == 1 and "does not exist" in run.stderr

    def test_not_writable(self) -> None:
        """A database where nothing can be written (here /proc) exits 1 with a clear message, no traceback."""
        run = self.run("sqlite:////proc/duban-test.db", "init")
        assert run.code == 1
        assert "cannot write database" in run.stderr or "cannot open database" in run.stderr
        assert "Traceback" not in run.stderr

    def test_not_initialised(self, tmp_path: Path) -> None:
        """Using an empty database before `duban init` says to run it (exit 1)."""
        run = self.run(f"sqlite:///{tmp_path / 'fresh.db'}", "case", "list")
        assert run.code == 1 and "duban init" in run.stderr
