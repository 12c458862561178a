"""The unit directory and the names in it (SPEC §16): `unit add / list / rename`, units a case
names must be in it, names NFKC-normalised and trimmed with look-alikes refused, and every
directory change an audit event of the operator."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, text

from tests.conftest import Duban, Run, row_counts

NOW = "2026-03-02T09:00"


def refused(duban: Duban, *args: str, code: int, says: tuple[str, ...] = (), actor: str | None = None) -> Run:
    """A command that must fail: its exit code, its message, and not one row changed."""
    before = row_counts(duban.db_url)
    run = duban(*args, now=NOW, actor=actor)
    assert run.code == code, f"exit {run.code}, stderr: {run.stderr}"
    for fragment in says:
        assert fragment in run.stderr, f"{fragment!r} not in {run.stderr!r}"
    assert row_counts(duban.db_url) == before
    return run


def units(duban: Duban) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in duban.ok("unit", "list", "--json").json}


def directory_events(duban: Duban) -> list[dict[str, Any]]:
    """The audit chain's events with no case: the directory's."""
    from duban.storage.audit_log import iterate
    from duban.storage.database import Database

    db = Database(duban.db_url)
    try:
        with db.read() as conn:
            return [e for e in iterate(conn) if e["case_id"] is None]
    finally:
        db.dispose()


def open_supervision(duban: Duban, *units_args: str) -> Run:
    return duban("case", "open", "supervision", "--title", "台帐", *units_args, "--due", "15wd", "--json",
                 now=NOW, actor="wang")


class TestUnitCommands:
    def test_add_and_list(self, duban: Duban) -> None:
        """`unit add` puts a unit in the directory; `unit list` shows it beside the users' units."""
        duban.ok("unit", "add", "区教育局", now=NOW)
        listed = units(duban)
        assert set(listed) == {"区发改局", "区财政局", "区市场监管局", "区教育局"}
        assert (listed["区教育局"]["users"], listed["区教育局"]["cases"], listed["区教育局"]["former_names"]) == (0, 0, [])
        assert listed["区发改局"]["users"] == 1
        table = duban.ok("unit", "list").stdout
        assert "区教育局" in table and "曾用名" in table

    def test_directory_changes_are_audit_events_of_the_operator(self, duban: Duban) -> None:
        """`unit add` and `user add` are events of the chain with no case, saying how they came and who ran them."""
        duban.ok("unit", "add", "区教育局", now=NOW)
        duban.ok("user", "add", "jyj", "--role", "unit", "--unit", "区卫健委", now=NOW)
        events = directory_events(duban)
        assert [(e["action"], e["data"].get("unit")) for e in events[-3:]] == [
            ("unit_added", "区教育局"), ("unit_added", "区卫健委"), ("user_added", "区卫健委")]
        assert {(e["actor"], e["role"], e["data"]["via"], e["data"]["os_user"]) for e in events} == {
            ("operator", "operator", "cli", getpass.getuser())}
        assert duban.ok("audit", "verify", "--json").json["ok"] is True

    def test_user_add_adds_a_new_unit(self, duban: Duban) -> None:
        """`user add --unit` with a unit the directory lacks adds it, and says so."""
        run = duban.ok("user", "add", "jyj", "--role", "unit", "--unit", "区教育局", now=NOW)
        assert "区教育局" in run.stdout and "单位名录" in run.stdout
        assert units(duban)["区教育局"]["users"] == 1
        again = duban.ok("user", "add", "jyj2", "--role", "unit", "--unit", "区教育局", "--json", now=NOW).json
        assert again["unit_added"] is False and units(duban)["区教育局"]["users"] == 2

    def test_the_unit_of_a_user_is_found_by_its_canonical_name(self, duban: Duban) -> None:
        """A unit typed with a stray (ideographic) space is the unit already there, not a new one."""
        shown = duban.ok("user", "add", "fgj2", "--role", "unit", "--unit", "　区发改局 ", "--json", now=NOW).json
        assert (shown["unit"], shown["unit_added"]) == ("区发改局", False)
        assert units(duban)["区发改局"]["users"] == 2


class TestUnknownUnits:
    def test_a_typo_on_case_open_is_not_found(self, duban: Duban) -> None:
        """`case open --unit 区发该局` (a typo) exits 3 naming the closest unit; no case, no orphan unit."""
        refused(duban, "case", "open", "supervision", "--title", "台帐", "--unit", "区发该局", "--due", "15wd",
                code=3, says=("区发该局", "区发改局", "unit add"), actor="wang")
        assert "区发该局" not in units(duban)

    def test_an_unknown_co_unit(self, duban: Duban) -> None:
        refused(duban, "case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--co-unit", "区财正局",
                "--due", "15wd", code=3, says=("--co-unit", "区财政局"), actor="wang")

    def test_a_dispatch_to_an_unknown_unit(self, duban: Duban) -> None:
        """`dispatch --set unit=` must name a unit of the directory too."""
        case_id = str(duban.ok("case", "open", "complaint", "--title", "噪音", "--unit", "区发改局", "--json",
                               now=NOW, actor="wang").json["id"])
        refused(duban, "case", "fire", case_id, "dispatch", "--set", "unit=区市场监督局", code=3,
                says=("区市场监管局",), actor="wang")
        moved = duban.ok("case", "fire", case_id, "dispatch", "--set", "unit= 区市场监管局", "--json", now=NOW,
                         actor="wang").json
        assert moved["lead_unit"] == "区市场监管局"

    def test_units_typed_with_stray_spaces_are_the_directorys(self, duban: Duban) -> None:
        """Full-width forms and spaces around a unit name it all the same: the case holds the directory's name."""
        shown = open_supervision(duban, "--unit", " 区发改局", "--co-unit", "区财政局　").json
        assert (shown["lead_unit"], shown["co_units"]) == ("区发改局", ["区财政局"])


class TestRename:
    @pytest.fixture
    def renamed(self, duban: Duban) -> dict[str, Any]:
        """A case of 区发改局 (co-unit 区财政局) signed and noticed, then 区发改局 renamed 区发展改革委."""
        case_id = open_supervision(duban, "--unit", "区发改局", "--co-unit", "区财政局").json["id"]
        duban.ok("case", "fire", str(case_id), "accept", now=NOW, actor="fgj")
        duban.ok("tick", now="2026-03-24T09:00")  # the yellow and red cards: notices to 区发改局
        result = duban.ok("unit", "rename", "区发改局", "区发展改革委", "--json", now="2026-03-25T09:00").json
        return {"case_id": case_id, **result}

    def test_cases_users_and_notices_show_the_new_name(self, duban: Duban, renamed: dict[str, Any]) -> None:
        case_id = renamed["case_id"]
        assert (renamed["old"], renamed["new"], renamed["cases"]) == ("区发改局", "区发展改革委", [case_id])
        shown = duban.ok("case", "show", str(case_id), "--json").json
        assert (shown["lead_unit"], shown["co_units"]) == ("区发展改革委", ["区财政局"])
        assert [c["id"] for c in duban.ok("case", "list", "--unit", "区发展改革委", "--json").json] == [case_id]
        assert {u["name"]: u["unit"] for u in duban.ok("user", "list", "--json").json}["fgj"] == "区发展改革委"
        notices = duban.ok("notice", "list", "--unit", "区发展改革委", "--json").json
        assert notices and all(n["recipient"] == "区发展改革委" for n in notices)
        listed = units(duban)
        assert "区发改局" not in listed and listed["区发展改革委"]["former_names"] == ["区发改局"]
        assert (listed["区发展改革委"]["users"], listed["区发展改革委"]["cases"]) == (1, 1)

    def test_the_audit_log_keeps_the_old_name_and_says_what_changed(self, duban: Duban,
                                                                    renamed: dict[str, Any]) -> None:
        """Events before the rename keep 区发改局; the rename is an event of the directory and of the case."""
        history = duban.ok("case", "history", str(renamed["case_id"]), "--json").json
        assert history[0]["data"]["lead_unit"] == "区发改局"
        assert (history[-1]["action"], history[-1]["data"]["old"], history[-1]["data"]["new"]) == (
            "unit_renamed", "区发改局", "区发展改革委")
        last = directory_events(duban)[-1]
        assert (last["action"], last["data"]["old"], last["data"]["new"], last["data"]["cases"]) == (
            "unit_renamed", "区发改局", "区发展改革委", [renamed["case_id"]])
        assert duban.ok("audit", "verify", "--json").json["ok"] is True

    def test_replaying_the_case_gives_what_storage_holds(self, duban: Duban, renamed: dict[str, Any]) -> None:
        """The case's history, replayed, gives the renamed case: no change the audit log does not state."""
        from zoneinfo import ZoneInfo

        from duban.clock import ManualClock
        from duban.service.app import App
        from duban.storage.database import Database

        tz = ZoneInfo("Asia/Shanghai")
        app = App(Database(duban.db_url), ManualClock(datetime(2026, 3, 25, 9, tzinfo=tz)), tz)
        try:
            assert app.replay(renamed["case_id"]) == []
        finally:
            app.db.dispose()

    def test_the_units_user_acts_on_as_before(self, duban: Duban, renamed: dict[str, Any]) -> None:
        duban.ok("case", "fire", str(renamed["case_id"]), "report", now="2026-03-25T10:00", actor="fgj")

    def test_the_old_name_is_no_longer_a_unit(self, duban: Duban, renamed: dict[str, Any]) -> None:
        """Naming the unit by its former name says what it is called now; the name is not free for another unit."""
        refused(duban, "case", "list", "--unit", "区发改局", code=3, says=("区发展改革委",))
        refused(duban, "case", "open", "supervision", "--title", "t", "--unit", "区发改局", "--due", "5wd", code=3,
                says=("已更名", "区发展改革委"), actor="wang")
        refused(duban, "unit", "add", "区发改局", code=4, says=("曾用名", "区发展改革委"))

    def test_renaming_back_to_the_former_name(self, duban: Duban, renamed: dict[str, Any]) -> None:
        duban.ok("unit", "rename", "区发展改革委", "区发改局", now="2026-03-26T09:00")
        listed = units(duban)
        assert listed["区发改局"]["former_names"] == ["区发展改革委"]
        assert duban.ok("case", "show", str(renamed["case_id"]), "--json").json["lead_unit"] == "区发改局"

    @pytest.mark.parametrize(("old", "new", "code", "says"), [
        ("区不存在局", "区新局", 3, "区不存在局"),
        ("区发该局", "区新局", 3, "区发改局"),
        ("区发改局", "区财政局", 4, "已在名录中"),
        ("区发改局", "区财政局 ", 2, "无法区分"),
        ("区发改局", "ｓｙｓｔｅｍ", 2, "system"),
        ("区发改局", " ", 2, "不能为空"),
        ("区发改局", "区发改局", 2, "相同"),
    ])
    def test_refused_renames_change_nothing(self, duban: Duban, old: str, new: str, code: int, says: str) -> None:
        refused(duban, "unit", "rename", old, new, code=code, says=(says,))


class TestNames:
    @pytest.mark.parametrize(("name", "says"), [
        (" system", "system"), ("ｓｙｓｔｅｍ", "system"), ("System", "system"),
        ("fgj ", "fgj"), ("ｆｇｊ", "fgj"), (" ", "不能为空"), ("a\x07b", "控制字符"),
    ])
    def test_look_alike_and_empty_user_names_are_refused(self, duban: Duban, name: str, says: str) -> None:
        refused(duban, "user", "add", name, "--role", "office", code=2, says=(says,))

    @pytest.mark.parametrize(("name", "code", "says"), [
        (" ", 2, "不能为空"), ("ｓｙｓｔｅｍ", 2, "system"), ("区发改局 ", 2, "无法区分"), ("区发改局", 4, "已在名录中"),
    ])
    def test_bad_unit_names_are_refused(self, duban: Duban, name: str, code: int, says: str) -> None:
        refused(duban, "unit", "add", name, code=code, says=(says,))

    def test_a_unit_user_with_a_blank_unit(self, duban: Duban) -> None:
        refused(duban, "user", "add", "kong", "--role", "unit", "--unit", " ", code=2, says=("不能为空",))

    def test_only_unit_users_have_a_unit(self, duban: Duban) -> None:
        refused(duban, "user", "add", "zhang", "--role", "office", "--unit", "区发改局", code=2, says=("--unit",))

    def test_names_are_stored_in_canonical_form(self, duban: Duban) -> None:
        """Full-width letters and surrounding spaces are normalised away before the name is kept."""
        duban.ok("user", "add", "ｚｈａｎｇ　", "--role", "leader", now=NOW)
        duban.ok("unit", "add", "　区教育局 ", now=NOW)
        assert "zhang" in {u["name"] for u in duban.ok("user", "list", "--json").json}
        assert "区教育局" in units(duban)

    def test_an_actor_typed_with_a_stray_space_is_the_user(self, duban: Duban) -> None:
        case_id = str(open_supervision(duban, "--unit", "区发改局").json["id"])
        assert duban.ok("case", "fire", case_id, "accept", "--json", now=NOW, actor="fgj ").json["state"] == "in_progress"

    def test_roles_are_a_choice_explained_in_chinese(self, duban: Duban) -> None:
        """`user add --help` names each role with what it is in the office."""
        shown = duban.ok("user", "add", "--help").stdout
        for word in ("office", "督查室", "unit", "承办单位", "leader", "分管领导", "inspector", "纪检监察"):
            assert word in shown
        refused(duban, "user", "add", "zhang", "--role", "mayor", code=2, says=("mayor", "inspector"))


class TestMigration:
    def test_an_existing_database_gets_the_units_it_already_names(self, any_db_url: str) -> None:
        """Migrating a database of revision 0003 fills the directory from its users' and cases' units,
        each dated from its first use; a blank unit is left out."""
        from alembic import command
        from alembic.config import Config

        from duban.storage.database import MIGRATIONS, Database
        from duban.storage.tables import CASE_UNITS, CASES

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        engine = create_engine(any_db_url)
        t1, t2, t3 = (datetime(2026, 3, d, 1, tzinfo=UTC) for d in (1, 2, 3))
        try:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "0003")
                conn.execute(text("INSERT INTO users (name, role, unit, created_at) VALUES "
                                  "(:n, :r, :u, :t)"), [
                    {"n": "fgj", "r": "unit", "u": "区发改局", "t": t2}, {"n": "kong", "r": "unit", "u": " ", "t": t1},
                    {"n": "wang", "r": "office", "u": None, "t": t1}])
                case_id = conn.execute(insert(CASES).values(
                    workflow="supervision", workflow_version=1, state="assigned", title="t", lead_unit="区发改局",
                    co_units=["区财政局"], opened_at=t1, opened_by="wang", escalation_level=0, overdue=False,
                    suspended=False, deadlines={}, data={}, version=1, updated_at=t3).returning(CASES.c.id)).scalar_one()
                conn.execute(insert(CASE_UNITS), [{"case_id": case_id, "unit": "区发改局", "is_lead": True},
                                                  {"case_id": case_id, "unit": "区财政局", "is_lead": False}])
        finally:
            engine.dispose()
        db = Database(any_db_url)
        try:
            db.migrate()
            with db.read() as conn:
                rows = conn.execute(text("SELECT name, created_at FROM units ORDER BY name")).all()
        finally:
            db.dispose()
        assert [r[0] for r in rows] == sorted(["区发改局", "区财政局"])
        assert all(str(r[1]).startswith("2026-03-01") for r in rows)  # the case (Mar 1) came before fgj (Mar 2)
