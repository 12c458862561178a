"""SPEC §16 through `duban`: bad input is bounded, reads change nothing, files the office
opens are safe, calendar imports are whole, the SQLite scheduler lock. Each refusal is
checked for its exit code, its message, and not one row changed in any table."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from duban.cli import cli
from tests.conftest import Duban, Run, row_counts

DATA = Path(__file__).parent.parent / "unit" / "data"
NOW = "2026-03-02T09:00"
OPEN = ("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局")


def refused(duban: Duban, *args: str, code: int, says: tuple[str, ...] = (), now: str | None = NOW,
            actor: str | None = None, env: dict[str, str] | None = None) -> Run:
    """A command that must fail: its exit code, its message, no traceback, not one row changed."""
    before = row_counts(duban.db_url)
    run = duban(*args, now=now, actor=actor, env=env)
    assert run.code == code, f"exit {run.code}, stderr: {run.stderr}"
    for fragment in says:
        assert fragment in run.stderr, f"{fragment!r} not in {run.stderr!r}"
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert row_counts(duban.db_url) == before
    return run


def bare(db: str, *args: str, env: dict[str, str] | None = None) -> Run:
    result = CliRunner().invoke(cli, ["--db", db, *args], env={"DUBAN_NOW": NOW, "DUBAN_ACTOR": "", **(env or {})},
                                catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


# -- YAML files ------------------------------------------------------------------------
def alias_bomb() -> str:
    """Nine levels of nine aliases: 342 bytes that expand to 9⁹ (387 million) strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BAD_YAML: dict[str, tuple[bytes, str]] = {
    "bomb": (alias_bomb().encode(), "values once its aliases are expanded"),
    "aliases": (("a: &a 1\nb: [" + ",".join(["*a"] * 101) + "]\n").encode(), "more than 100 aliases"),
    "deep": (b"name: x\nstates: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested deeper than 50"),
    "block_deep": ("".join("  " * i + "- \n" for i in range(200)).encode(), "nested deeper than 50"),
    "self": (b"a: &a [1, *a]\n", "refers to the value it is part of"),
    "gbk": ("name: 督办\nlabel: 督办事项\n".encode("gbk"), "not UTF-8"),
    "large": (b"# " + b"x" * (1024 * 1024) + b"\n", "larger than"),
}


@pytest.fixture(params=sorted(BAD_YAML))
def bad_yaml(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    content, says = BAD_YAML[request.param]
    path = tmp_path / f"{request.param}.yaml"
    path.write_bytes(content)
    return path, says


class TestYamlIsBounded:
    def test_validate_refuses_fast(self, duban: Duban, bad_yaml: tuple[Path, str]) -> None:
        """`workflow validate` of a bomb, deep nesting, a non-UTF-8 or oversized file: exit 2 naming
        the file, in well under the 120 s a bomb took (bounded here at 5 s for a loaded machine)."""
        path, says = bad_yaml
        started = time.perf_counter()
        run = refused(duban, "workflow", "validate", str(path), code=2, says=(path.name, says))
        assert time.perf_counter() - started < 5
        assert len(run.stderr) < 600  # no expanded value in the message

    def test_calendar_import_refuses(self, duban: Duban, bad_yaml: tuple[Path, str]) -> None:
        path, says = bad_yaml
        refused(duban, "calendar", "import", str(path), code=2, says=(path.name, says))

    def test_a_bad_settings_file_is_refused_by_commands_that_use_it(self, duban: Duban, bad_yaml: tuple[Path, str]) -> None:
        """The settings file changes every workflow's limits: a bad one refuses `case open` (exit 2), naming it."""
        path, _says = bad_yaml
        refused(duban, *OPEN, "--due", "5wd", actor="wang", code=2, says=(path.name,),
                env={"DUBAN_SETTINGS": str(path)})

    def test_one_bad_office_workflow_file_is_skipped(self, duban: Duban, tmp_path: Path) -> None:
        """A bomb in the office's workflows folder: `case open` still works (with a warning naming
        the file), fast; `workflow list` shows the shipped workflows."""
        folder = tmp_path / "office"
        folder.mkdir()
        (folder / "bomb.yaml").write_text(alias_bomb(), encoding="utf-8")
        env = {"DUBAN_WORKFLOWS": str(folder)}
        started = time.perf_counter()
        run = duban(*OPEN, "--due", "5wd", "--json", now=NOW, actor="wang", env=env)
        assert time.perf_counter() - started < 5
        assert run.code == 0, run.stderr
        assert run.json["workflow"] == "supervision"
        assert "bomb.yaml" in run.stderr and "file_skipped" in run.stderr
        listed = duban("workflow", "list", "--json", env=env)
        assert listed.code == 0 and "supervision" in {w["name"] for w in listed.json}

    def test_a_huge_bad_value_is_quoted_short(self, duban: Duban, tmp_path: Path) -> None:
        """A definition error quotes at most 200 characters of the bad value."""
        path = tmp_path / "long.yaml"
        path.write_text(f"name: x\nversion: {'9' * 50_000}x\n", encoding="utf-8")
        run = refused(duban, "workflow", "validate", str(path), code=4, says=("long.yaml", "version"))
        assert len(run.stderr) < 600


# -- --out -----------------------------------------------------------------------------
def special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        path = tmp_path / "out.csv"
        os.mkfifo(path)
    elif kind == "symlink":
        (tmp_path / "real.csv").write_text("keep", encoding="utf-8")
        path = tmp_path / "out.csv"
        path.symlink_to(tmp_path / "real.csv")
    else:
        path = Path("/dev/null")
    return path


def kind_of(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


class TestOutIsSafe:
    @pytest.mark.parametrize("kind", ["fifo", "symlink", "device"])
    @pytest.mark.parametrize("command", [("audit", "export", "--format", "csv"), ("report", "units", "--format", "csv")])
    def test_not_a_regular_file_is_refused(self, duban: Duban, tmp_path: Path, kind: str, command: tuple[str, ...]) -> None:
        """A FIFO, a symlink or a device as --out: exit 2, and it is still what it was."""
        path = special(kind, tmp_path)
        was = kind_of(path)
        refused(duban, *command, "--out", str(path), code=2, says=("--out", "not a regular file"))
        assert kind_of(path) == was
        if kind == "symlink":
            assert (tmp_path / "real.csv").read_text(encoding="utf-8") == "keep"

    def test_full_disk_during_a_report(self, duban: Duban, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """ENOSPC half-way through writing a report: exit 1 saying the disk is full, nothing left behind."""
        real = Path.write_text

        def full(self: Path, data: str, *args: Any, **kw: Any) -> int:
            real(self, data[:5], *args, **kw)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Path, "write_text", full)
        folder = tmp_path / "reports"
        folder.mkdir()
        refused(duban, "report", "units", "--format", "csv", "--out", str(folder / "units.csv"), code=1,
                says=("disk is full", "units.csv"))
        assert list(folder.iterdir()) == []

    def test_a_regular_file_is_replaced(self, duban: Duban, tmp_path: Path) -> None:
        path = tmp_path / "audit.csv"
        path.write_text("old", encoding="utf-8")
        duban.ok("audit", "export", "--format", "csv", "--out", str(path))
        assert path.read_text(encoding="utf-8-sig").startswith("序号")


# -- calendar imports --------------------------------------------------------------------
def open_case(duban: Duban, due: str, now: str = "2026-12-28T09:00") -> dict[str, Any]:
    return duban.ok(*OPEN, "--due", due, "--json", now=now, actor="wang").json


def actions(duban: Duban, case_id: int, action: str) -> list[dict[str, Any]]:
    return [e for e in duban.ok("case", "history", str(case_id), "--json").json if e["action"] == action]


class TestCalendarImportsAreWhole:
    def test_a_failure_part_way_changes_nothing(self, duban: Duban, monkeypatch: pytest.MonkeyPatch) -> None:
        """The second case's recompute overflows: exit 1, the first case keeps its deadline and
        2027 is still unknown (before, its rows and the first recompute were committed)."""
        from duban.engine.service import Engine

        first, second = open_case(duban, "5wd"), open_case(duban, "6wd")
        real, calls = Engine.recompute, []

        def overflowing(self: Engine, *args: Any, **kw: Any) -> Any:
            calls.append(1)
            if len(calls) == 2:
                raise OverflowError("date value out of range")
            return real(self, *args, **kw)

        monkeypatch.setattr(Engine, "recompute", overflowing)
        before = row_counts(duban.db_url)
        refused(duban, "calendar", "import", str(DATA / "calendar-2027.yaml"), code=1,
                says=(f"case {second['id']}", "nothing was imported"), now="2026-12-29T09:00")
        assert row_counts(duban.db_url) == before
        assert duban.ok("calendar", "show", "2027", "--json").json["known"] is False
        assert duban.ok("case", "show", str(first["id"]), "--json").json["due_at"] == first["due_at"]
        assert actions(duban, first["id"], "recompute") == []

    def test_a_recompute_that_moves_nothing_writes_nothing(self, duban: Duban) -> None:
        """A deadline in 2028 stays approximate after 2027 is imported; importing 2027 again moves
        nothing, and writes no event."""
        case = open_case(duban, "300wd")
        assert case["approximate"] is True and case["due_at"].startswith("2028")
        duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), now="2026-12-29T09:00")
        moved = duban.ok("case", "show", str(case["id"]), "--json").json
        assert moved["due_at"] != case["due_at"] and moved["approximate"] is True
        assert len(actions(duban, case["id"], "recompute")) == 1
        before = row_counts(duban.db_url)
        again = duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), "--json", now="2026-12-30T09:00")
        assert again.json["recomputed_cases"] == []
        assert row_counts(duban.db_url) == before
        assert len(actions(duban, case["id"], "recompute")) == 1

    def test_a_csv_of_single_days_leaves_the_year_approximate(self, duban: Duban, tmp_path: Path) -> None:
        """One 2030 day in a CSV is a local override: 2030 stays unknown, and a deadline in it stays approximate."""
        case = open_case(duban, "2030-06-28", now=NOW)
        assert case["approximate"] is False  # an absolute day is never rolled
        wd = open_case(duban, "1000wd", now=NOW)
        assert wd["due_at"].startswith("2030") and wd["approximate"] is True
        path = tmp_path / "local.csv"
        path.write_text("date,kind,name,source\n2030-01-02,holiday,地方补休,市政府通知\n", encoding="utf-8")
        run = duban.ok("calendar", "import", str(path), "--json")
        assert run.json["official"] is False and run.json["official_years"] == []
        assert "local overrides" in duban.ok("calendar", "import", str(path)).stdout
        assert duban.ok("calendar", "show", "2030", "--json").json["known"] is False
        assert duban.ok("case", "show", str(wd["id"]), "--json").json["approximate"] is True

    def test_a_yaml_year_is_official(self, duban: Duban) -> None:
        run = duban.ok("calendar", "import", str(DATA / "calendar-2027.yaml"), "--json")
        assert run.json["official_years"] == [2027]
        assert duban.ok("calendar", "show", "2027", "--json").json["known"] is True


# -- reads change nothing; the schema revision -------------------------------------------
class TestReadsChangeNothing:
    @pytest.mark.parametrize("command", [("case", "list"), ("case", "show", "1"), ("notice", "list"),
                                         ("audit", "verify"), ("calendar", "show", "2026")])
    def test_a_read_on_a_missing_database_creates_no_file(self, tmp_path: Path, command: tuple[str, ...]) -> None:
        db = tmp_path / "duban.db"
        run = bare(f"sqlite:///{db}", *command)
        assert run.code == 1 and "run 'duban init'" in run.stderr and "请先运行 duban init" in run.stderr
        assert "Traceback" not in run.stderr
        assert list(tmp_path.iterdir()) == []
        assert bare(f"sqlite:///{db}", "init").code == 0  # and the folder is still free for init

    def test_a_newer_database_is_refused_and_never_written(self, duban: Duban) -> None:
        """A database a newer duban upgraded (an unknown revision): every command exits 1 "upgrade
        duban", writes nothing, and `init` does not crash on it."""
        from sqlalchemy import create_engine, text

        case_id = str(duban.ok(*OPEN, "--due", "5wd", "--json", now=NOW, actor="wang").json["id"])
        engine = create_engine(duban.db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        engine.dispose()
        for args, actor in ((("case", "fire", case_id, "accept"), "fgj"), (("case", "show", case_id), None),
                            (("init",), None), (("tick",), None)):
            refused(duban, *args, actor=actor, code=1, says=("0999", "upgrade duban"))

    def test_the_head_revision_is_alembics(self) -> None:
        """The head read from the migration files' names is the one alembic computes."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from duban.storage import schema
        from duban.storage.database import MIGRATIONS

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(cfg)
        assert schema.head() == script.get_current_head()
        assert set(schema.revisions()) == {r.revision for r in script.walk_revisions()}


# -- tracebacks become exit 2 --------------------------------------------------------------
EXTREME = [
    ((*OPEN, "--due", "9999-12-31"), "wang", "year 9999"),
    ((*OPEN, "--due", "99999999999h"), "wang", "at most"),
    ((*OPEN, "--due", "999999mo"), "wang", "at most"),
    ((*OPEN, "--due", "9" * 5000 + "wd"), "wang", "at most"),
    ((*OPEN, "--due", "5wd", "--milestone", "9999-01-01=完成"), "wang", "year 9999"),
    (("report", "bulletin", "--period", "week", "--date", "9999-12-31"), None, "year 9999"),
    (("report", "units", "--until", "9999-12-31"), None, "year 9999"),
]


def on_postgres(pg_url: str) -> Duban:
    d = Duban(pg_url)
    d.ok("init")
    d.ok("user", "add", "wang", "--role", "office")
    d.ok("user", "add", "fgj", "--role", "unit", "--unit", "区发改局")
    return d


class TestNoTracebacks:
    @pytest.mark.parametrize(("args", "actor", "says"), EXTREME)
    def test_extreme_values(self, duban: Duban, args: tuple[str, ...], actor: str | None, says: str) -> None:
        refused(duban, *args, actor=actor, code=2, says=(says,))

    @pytest.mark.parametrize(("args", "actor", "says"), EXTREME[:2])
    def test_extreme_values_on_postgres(self, pg_url: str, args: tuple[str, ...], actor: str | None, says: str) -> None:
        refused(on_postgres(pg_url), *args, actor=actor, code=2, says=(says,))

    @pytest.mark.parametrize("now", ["9999-12-31T23:59:59", "9999-12-31T23:59:59-05:00", "0001-01-01"])
    def test_extreme_now(self, duban: Duban, now: str) -> None:
        refused(duban, *OPEN, "--due", "5wd", now=now, actor="wang", code=2, says=("--now", "out of range"))
        refused(duban, "tick", now=now, code=2, says=("--now",))

    def test_extreme_now_on_postgres(self, pg_url: str) -> None:
        refused(on_postgres(pg_url), "tick", now="9999-12-31T23:59:59", code=2, says=("--now",))

    @pytest.mark.parametrize("title", ["台\x00帐", "台\udcff帐"])
    def test_nul_and_invalid_utf8_in_a_title(self, duban: Duban, title: str) -> None:
        """NUL (SQLite would store it, PostgreSQL refuses it) and undecodable bytes (lone
        surrogates from os.fsdecode): exit 2 on every database, before anything runs."""
        refused(duban, "case", "open", "supervision", "--title", title, "--unit", "区发改局", "--due", "5wd",
                actor="wang", code=2, says=("the value of --title",))

    @pytest.mark.parametrize("title", ["台\x00帐", "台\udcff帐"])
    def test_nul_and_invalid_utf8_on_postgres(self, pg_url: str, title: str) -> None:
        refused(on_postgres(pg_url), "case", "open", "supervision", "--title", title, "--unit", "区发改局",
                "--due", "5wd", actor="wang", code=2, says=("the value of --title",))

    def test_invalid_utf8_in_an_environment_variable(self, duban: Duban) -> None:
        refused(duban, "case", "list", env={"DUBAN_ACTOR": "wa\udcffng"}, code=2, says=("DUBAN_ACTOR",))

    @pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e300"])
    def test_scheduler_status_interval(self, duban: Duban, value: str) -> None:
        refused(duban, "scheduler", "status", "--interval", value, code=2, says=("--interval",))

    @pytest.mark.parametrize("args", [("case", "show", "99999999999999999999999"),
                                      ("case", "history", "99999999999999999999999"),
                                      ("case", "fire", "3000000000", "accept"),
                                      ("audit", "export", "--format", "csv", "--out", "x.csv", "--case", "99999999999")])
    def test_huge_case_ids(self, duban: Duban, args: tuple[str, ...]) -> None:
        refused(duban, *args, actor="fgj", code=2, says=("range",))

    def test_a_file_that_is_not_sqlite(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.txt"
        path.write_text("not a database\n" * 100, encoding="utf-8")
        for args in (("case", "list"), ("init",)):
            run = bare(str(path), *args)
            assert run.code == 2 and "not a SQLite database" in run.stderr and "Traceback" not in run.stderr
        assert path.read_text(encoding="utf-8") == "not a database\n" * 100

    @pytest.mark.parametrize("url", ["mysql://u@localhost/db", "oracle://x", "http://example.com/db"])
    def test_an_unsupported_database_url(self, url: str) -> None:
        run = bare(url, "case", "list")
        assert run.code == 2 and "sqlite" in run.stderr and "postgresql" in run.stderr
        assert "Traceback" not in run.stderr


# -- the SQLite scheduler lock -------------------------------------------------------------
def test_the_scheduler_lock_follows_symlinks(tmp_path: Path) -> None:
    """A second scheduler on the same database reached through a symlink is refused."""
    from duban.commands.daemon import single_node_lock
    from duban.errors import RefusedError
    from duban.storage.database import Database

    real = tmp_path / "duban.db"
    assert bare(f"sqlite:///{real}", "init").code == 0
    link = tmp_path / "alias.db"
    link.symlink_to(real)
    first = single_node_lock(Database(f"sqlite:///{real}"), "a")
    try:
        with pytest.raises(RefusedError, match="already running"):
            single_node_lock(Database(f"sqlite:///{link}"), "b")
    finally:
        assert first is not None
        first.close()


@pytest.mark.parametrize("due", ["2027-05-31T" + "9" * 100_000, "x" * 100_000, "5wd" * 30_000])
def test_a_huge_rule_is_quoted_short(duban: Duban, due: str) -> None:
    """A 100,000-character --due: exit 2, the message quotes at most 200 characters of it."""
    run = refused(duban, *OPEN, "--due", due, actor="wang", code=2, says=("deadline rule",))
    assert len(run.stderr) < 1000
