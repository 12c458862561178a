"""`duban report units|bulletin|accountability` (SPEC §10) on cases played through the CLI
with a pinned clock: the figures per unit, grades and the bottom three (seed 004), the
通报 of a week, month and quarter, the 问责专报 of a case, every report in every format,
and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.errors import DefinitionError
from duban.reports.grading import DEFAULT_BANDS, grade, parse_bands, rank
from tests.conftest import Duban

TZ = ZoneInfo("Asia/Shanghai")
UNITS = {"fgj": "区发改局", "czj": "区财政局", "scj": "区市场监管局", "jyj": "区教育局", "jtj": "区交通运输局",
         "wjw": "区卫健委"}


def add_units(duban: Duban, *users: str) -> None:
    for user in users:
        duban.ok("user", "add", user, "--role", "unit", "--unit", UNITS[user])


def open_case(duban: Duban, unit: str, due: str, *, now: str = "2026-03-02T09:00", title: str = "督办事项",
              workflow: str = "supervision") -> int:
    run = duban.ok("case", "open", workflow, "--title", title, "--unit", unit, "--due", due, "--json", now=now, actor="wang")
    return int(run.json["id"])


def fire(duban: Duban, case_id: int, trigger: str, now: str, actor: str, *extra: str) -> None:
    duban.ok("case", "fire", str(case_id), trigger, *extra, now=now, actor=actor)


def done(duban: Duban, case_id: int, user: str, *, accept: str, report: str, verify: str) -> None:
    """The unit signs for and reports; the office verifies."""
    fire(duban, case_id, "accept", accept, user)
    fire(duban, case_id, "report", report, user)
    fire(duban, case_id, "verify", verify, "wang")


def units_json(duban: Duban, *args: str, now: str, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    rows = duban.ok("report", "units", "--json", *args, now=now, env=env).json["units"]
    return {r["unit"]: r for r in rows}


# -- units ---------------------------------------------------------------------------------
def built(factory: pytest.TempPathFactory, build: Callable[[Duban], Any]) -> Path:
    """A database initialised like the `duban` fixture's, with a scenario played, built once."""
    folder = factory.mktemp(build.__name__)
    d = Duban(f"sqlite:///{folder / 'duban.db'}")
    d.ok("init")
    for name, role in (("wang", "office"), ("li", "leader"), ("zhao", "inspector")):
        d.ok("user", "add", name, "--role", role)
    add_units(d, "fgj", "czj", "scj")
    build(d)
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Duban:
    """A test's own copy of a scenario database."""
    for f in folder.glob("duban.db*"):
        shutil.copy(f, tmp_path / f.name)
    return Duban(f"sqlite:///{tmp_path / 'duban.db'}")


@pytest.fixture(scope="module")
def season_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(tmp_path_factory, play_season)


@pytest.fixture
def season(season_db: Path, tmp_path: Path) -> Duban:
    return copy_of(season_db, tmp_path)


def play_season(duban: Duban) -> None:
    """March 2026 for three units (due dates Friday 2026-03-13 unless said):

    区发改局: one case on time, one reported three days late → on-time 50 %, both signed in time.
    区财政局: one case reported in time but signed for two days late → closed late (every deadline
    counts, SPEC §16), sign-for 0 %.
    区市场监管局: never signs, overdue, held accountable (通报批评) → 不合格 whatever its rate.
    """
    a = open_case(duban, "区发改局", "2026-03-13")
    b = open_case(duban, "区发改局", "2026-03-13")
    c = open_case(duban, "区财政局", "2026-03-13")
    d = open_case(duban, "区市场监管局", "2026-03-13")
    done(duban, a, "fgj", accept="2026-03-02T10:00", report="2026-03-12T10:00", verify="2026-03-12T15:00")
    fire(duban, b, "accept", "2026-03-02T11:00", "fgj")
    fire(duban, c, "accept", "2026-03-05T09:00", "czj")
    fire(duban, c, "report", "2026-03-11T09:00", "czj")
    fire(duban, c, "verify", "2026-03-11T10:00", "wang")
    duban.ok("tick", now="2026-03-16T09:00")  # yellow, red cards for b and d
    fire(duban, b, "report", "2026-03-16T10:00", "fgj")
    fire(duban, b, "verify", "2026-03-16T11:00", "wang")
    fire(duban, d, "hold_accountable", "2026-03-20T09:00", "li", "--set", "measure=通报批评", "--note", "长期未签收")


class TestUnitsReport:
    def test_figures_per_lead_unit(self, season: Duban) -> None:
        """Counts and rates as the office reads them for March."""
        rows = units_json(season, "--since", "2026-03-01", "--until", "2026-03-31", now="2026-04-01T09:00")
        fgj, czj, scj = rows["区发改局"], rows["区财政局"], rows["区市场监管局"]
        assert (fgj["cases"], fgj["closed_on_time"], fgj["closed_late"], fgj["open_overdue"]) == (2, 1, 1, 0)
        assert (fgj["on_time_rate"], fgj["sign_for_rate"], fgj["grade"]) == (50.0, 100.0, "不合格")
        assert fgj["escalations"] == {"1": 1, "2": 1, "3": 0, "4": 0}
        assert (czj["closed"], czj["closed_on_time"], czj["closed_late"]) == (1, 0, 1)
        assert (czj["on_time_rate"], czj["sign_for_rate"], czj["grade"]) == (0.0, 0.0, "不合格")
        assert (scj["closed_late"], scj["measures"], scj["grade"], scj["graded_by"]) == (1, ["通报批评"], "不合格", "violation")
        assert fgj["satisfaction"] is None  # no revisits: '-' in the table

    def test_period_before_the_due_dates_counts_only_the_missed_sign_for(self, season: Duban) -> None:
        """In the first week only sign-for days fell due: 区市场监管局, which never signed, is overdue
        at its end; 区财政局 signed late but by then had signed; nothing closed late."""
        rows = units_json(season, "--since", "2026-03-02", "--until", "2026-03-08", now="2026-04-01T09:00")
        assert {u: r["open_overdue"] for u, r in rows.items()} == {"区发改局": 0, "区财政局": 0, "区市场监管局": 1}
        assert all(r["closed_late"] == 0 for r in rows.values())
        assert rows["区发改局"]["on_time_rate"] is None and rows["区发改局"]["grade"] is None
        assert rows["区财政局"]["sign_for_rate"] == 0.0  # its sign-for day passed on 03-03

    def test_table_shows_dashes_and_percentages(self, season: Duban) -> None:
        """The table a person reads: percentages, '-' where there is no figure, the grade."""
        out = season.ok("report", "units", now="2026-04-01T09:00").stdout
        assert "按时办结率" in out and "回访满意率" in out
        line = next(ln for ln in out.splitlines() if "区发改局" in ln)
        assert "50.00%" in line and "不合格" in line and " - " in line

    def test_satisfaction_grades_when_present(self, duban: Duban) -> None:
        """Revisit verdicts (回访) give the satisfaction rate, and the grade follows it."""
        for verdict in ("yes", "yes", "no"):
            case_id = int(duban.ok("case", "open", "complaint", "--title", "窗口服务投诉", "--unit", "区发改局", "--json",
                                   now="2026-03-02T09:00", actor="wang").json["id"])
            fire(duban, case_id, "dispatch", "2026-03-02T09:30", "wang")
            fire(duban, case_id, "accept", "2026-03-02T10:00", "fgj")
            fire(duban, case_id, "reply", "2026-03-03T10:00", "fgj")
            fire(duban, case_id, "revisit", "2026-03-04T10:00", "wang", "--set", f"satisfied={verdict}")
            if verdict == "no":  # 重办 once, still unsatisfied: closed, counted unsatisfied
                fire(duban, case_id, "reply", "2026-03-05T10:00", "fgj")
                fire(duban, case_id, "revisit", "2026-03-06T10:00", "wang", "--set", "satisfied=no")
        row = units_json(duban, now="2026-03-31T09:00")["区发改局"]
        assert (row["satisfaction"], row["on_time_rate"]) == (66.67, 100.0)
        assert (row["grade"], row["graded_by"]) == ("不合格", "satisfaction")


class TestGrades:
    @pytest.mark.parametrize(("rate", "expected"), [
        (Fraction(6999, 10000), "不合格"), (Fraction(70, 100), "合格"),
        (Fraction(8999, 10000), "合格"), (Fraction(90, 100), "优秀"), (Fraction(1), "优秀"), (Fraction(0), "不合格"),
    ])
    def test_default_bands_at_their_edges(self, rate: Fraction, expected: str) -> None:
        """Seed 004: below 70 % 不合格, 70 % up to below 90 % 合格, 90 % and above 优秀 — exactly at the edges."""
        assert grade(rate, False, DEFAULT_BANDS) == expected

    def test_violation_is_lowest_whatever_the_rate(self) -> None:
        """A unit with an accountability case in the period is 不合格 even at 100 %."""
        assert grade(Fraction(1), True, DEFAULT_BANDS) == "不合格"
        assert grade(None, True, DEFAULT_BANDS) == "不合格"
        assert grade(None, False, DEFAULT_BANDS) is None

    def test_office_bands_from_settings_file(self, season: Duban, tmp_path: Path) -> None:
        """DUBAN_SETTINGS names the office's settings; its bands replace the defaults."""
        settings = tmp_path / "office.yaml"
        settings.write_text("grades:\n  - {min: 40, label: 达标}\n  - {min: 0, label: 未达标}\n", encoding="utf-8")
        rows = units_json(season, now="2026-04-01T09:00", env={"DUBAN_SETTINGS": str(settings)})
        assert rows["区发改局"]["grade"] == "达标"  # 50 %
        assert rows["区市场监管局"]["grade"] == "未达标"  # violation: the lowest band

    def test_bad_settings_file_names_the_place(self, season: Duban, tmp_path: Path) -> None:
        """A malformed band is refused naming the file and the path inside it (exit 4)."""
        settings = tmp_path / "office.yaml"
        settings.write_text("grades:\n  - {min: 90, label: 优秀}\n  - {min: 120, label: 超优}\n", encoding="utf-8")
        run = season("report", "units", now="2026-04-01T09:00", env={"DUBAN_SETTINGS": str(settings)})
        assert run.code == 4
        assert "office.yaml: grades[1].min: must be from 0 to 100" in run.stderr

    def test_bands_need_a_floor(self) -> None:
        with pytest.raises(DefinitionError, match="min: 0"):
            parse_bands([{"min": 90, "label": "优秀"}], "office.yaml")


def graded(rates: dict[str, int], violations: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = []
    for unit, pct in rates.items():
        rate = Fraction(pct, 100)
        rows.append({"unit": unit, "grading_rate": rate, "grade": grade(rate, unit in violations, DEFAULT_BANDS)})
    rank(rows, DEFAULT_BANDS)
    return rows


def flagged(rows: list[dict[str, Any]]) -> set[str]:
    return {r["unit"] for r in rows if r["bottom_three"]}


class TestBottomThree:
    def test_three_lowest_are_flagged(self) -> None:
        rows = graded({"A": 95, "B": 90, "C": 85, "D": 80, "E": 75, "F": 60})
        assert flagged(rows) == {"D", "E", "F"}
        assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5, 6]

    def test_ties_at_the_boundary_are_all_flagged(self) -> None:
        """Two units share third-from-last place: both lose 评优 eligibility, four in all."""
        rows = graded({"A": 95, "B": 90, "C": 75, "D": 75, "E": 72, "F": 60})
        assert flagged(rows) == {"C", "D", "E", "F"}
        assert {r["unit"]: r["rank"] for r in rows} == {"A": 1, "B": 2, "C": 3, "D": 3, "E": 5, "F": 6}

    def test_violation_ranks_below_better_graded_units(self) -> None:
        """A violation puts a unit in the lowest band, ranked there by its rate."""
        rows = graded({"A": 100, "B": 95, "C": 91, "D": 88, "E": 50}, violations=("A",))
        ranks = {r["unit"]: r["rank"] for r in rows}
        assert ranks["A"] == 4 and ranks["E"] == 5
        assert flagged(rows) == {"D", "A", "E"}

    def test_three_or_fewer_units_flags_nobody(self) -> None:
        """With three units or fewer there is no bottom three to single out."""
        assert flagged(graded({"A": 95, "B": 60, "C": 10})) == set()

    def test_on_real_cases_tied_units_share_rank_and_flag(self, duban: Duban) -> None:
        """Six units: two on time, four overdue and tied — the four are all flagged in the table."""
        add_units(duban, "jyj", "jtj", "wjw")
        ids = {u: open_case(duban, UNITS[u], "2026-03-13") for u in UNITS}
        for user in ("fgj", "czj"):
            done(duban, ids[user], user, accept="2026-03-02T10:00", report="2026-03-10T10:00", verify="2026-03-10T11:00")
        rows = units_json(duban, now="2026-03-20T09:00")
        assert {u for u, r in rows.items() if r["bottom_three"]} == {"区市场监管局", "区教育局", "区交通运输局", "区卫健委"}
        assert sorted(r["rank"] for r in rows.values()) == [1, 1, 3, 3, 3, 3]
        table = duban.ok("report", "units", now="2026-03-20T09:00").stdout
        assert table.count("取消评优资格") == 4


# -- bulletin --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def march_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(tmp_path_factory, play_march)


@pytest.fixture
def march(march_db: Path, tmp_path: Path) -> Duban:
    return copy_of(march_db, tmp_path)


def play_march(duban: Duban) -> None:
    """区市场监管局 signs for but never reports a case due Fri 2026-03-13; 区发改局 closes one on time;
    in April a new one."""
    open_case(duban, "区市场监管局", "2026-03-13", title="推进六证合一")
    fire(duban, 1, "accept", "2026-03-02T10:00", "scj")
    on_time = open_case(duban, "区发改局", "2026-03-20", title="政策台帐", now="2026-03-09T09:00")
    done(duban, on_time, "fgj", accept="2026-03-09T10:00", report="2026-03-18T10:00", verify="2026-03-18T15:00")
    duban.ok("tick", now="2026-03-13T09:00")  # yellow card (1 wd before)
    duban.ok("tick", now="2026-03-16T09:00")  # red card, expire
    fire(duban, 1, "hold_accountable", "2026-03-27T09:00", "li", "--set", "measure=诫勉谈话", "--note", "超期未办")
    open_case(duban, "区财政局", "2026-04-30", title="四月新任务", now="2026-04-02T09:00")


def bulletin(duban: Duban, *args: str, now: str) -> dict[str, Any]:
    return dict(duban.ok("report", "bulletin", *args, "--json", now=now).json)


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["case_id"] for r in rows]


class TestBulletin:
    def test_week_with_a_yellow_card(self, march: Duban) -> None:
        """The week of 03-09 seen on Friday 03-13: case 1 is at risk (yellow), nothing is red yet."""
        b = bulletin(march, "--period", "week", "--date", "2026-03-13", now="2026-03-13T10:00")
        assert b["period"]["start"] == "2026-03-09T00:00:00+08:00" and b["period"]["end"] == "2026-03-16T00:00:00+08:00"
        assert ids(b["yellow"]) == [1] and b["red"] == []
        assert ids(b["new"]) == [2]
        assert any("黄牌预警" in r["detail"] for r in b["escalations"])

    def test_past_week_shows_cases_as_they_stood_at_its_end(self, march: Duban) -> None:
        """Asked at the end of the month, the same week shows case 1 red: due on the 13th, unmet on the 16th."""
        b = bulletin(march, "--period", "week", "--date", "2026-03-13", now="2026-03-31T10:00")
        assert ids(b["red"]) == [1] and b["yellow"] == []
        assert b["red"][0]["unit"] == "区市场监管局" and b["red"][0]["detail"].startswith("超期")

    def test_month(self, march: Duban) -> None:
        """March: two new, one closed on time, the red card, escalations and the decision."""
        b = bulletin(march, "--period", "month", "--date", "2026-03-05", now="2026-04-05T09:00")
        assert b["period"]["label"] == "2026年3月"
        assert ids(b["new"]) == [2, 1]  # by unit: 区发改局, 区市场监管局
        assert [(r["case_id"], r["detail"]) for r in b["closed"]] == [(2, "按时办结"), (1, "问责")]
        assert ids(b["accountability"]) == [1] and "诫勉谈话" in b["accountability"][0]["detail"]
        # missed on the 13th, then closed by the decision: still a red card of March (SPEC §16)
        assert [(r["case_id"], r["detail"]) for r in b["red"]] == [(1, "超期13天9小时（办结时限），已问责")]
        assert {r["detail"] for r in b["escalations"]} >= {"办结时限：红牌超期（催办通知）"}
        summary = {r["unit"]: r for r in b["summary"]}
        assert (summary["区发改局"]["closed"], summary["区发改局"]["closed_on_time"]) == (1, 1)

    def test_quarter_by_default_date_today(self, march: Duban) -> None:
        """Without --date the period is the one containing today (the app clock, Beijing time)."""
        b = bulletin(march, "--period", "quarter", now="2026-04-05T09:00")
        assert b["period"]["label"] == "2026年第二季度"
        assert ids(b["new"]) == [3]

    def test_table_lists_by_unit(self, march: Duban) -> None:
        out = march.ok("report", "bulletin", "--period", "month", "--date", "2026-03-01", now="2026-04-05T09:00").stdout
        assert "督办通报" in out and "2026年3月" in out
        for title in ("【汇总】", "【新交办】", "【办结】", "【红牌超期】", "【黄牌预警】", "【升级督办】", "【问责决定】"):
            assert title in out

    @pytest.mark.parametrize("period", ["year", "day", ""])
    def test_period_must_be_week_month_or_quarter(self, march: Duban, period: str) -> None:
        run = march("report", "bulletin", "--period", period)
        assert run.code == 2
        assert "'week', 'month', 'quarter'" in run.stderr

    def test_bad_date(self, march: Duban) -> None:
        run = march("report", "bulletin", "--period", "week", "--date", "2026-13-01")
        assert run.code == 2 and "--date 2026-13-01" in run.stderr


# -- accountability --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def extended_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(tmp_path_factory, play_extended)


@pytest.fixture
def extended(extended_db: Path, tmp_path: Path) -> Duban:
    return copy_of(extended_db, tmp_path)


def play_extended(duban: Duban) -> None:
    """Signed a day late; extended to 03-20, suspended a day; still unmet; held accountable."""
    open_case(duban, "区发改局", "2026-03-13", title="政策台帐")
    fire(duban, 1, "accept", "2026-03-04T09:00", "fgj")
    fire(duban, 1, "request_extension", "2026-03-10T09:00", "fgj", "--set", "until=2026-03-20", "--note", "数据量大")
    fire(duban, 1, "approve_extension", "2026-03-10T10:00", "wang")
    fire(duban, 1, "suspend", "2026-03-11T09:00", "wang", "--note", "等待上级答复")
    fire(duban, 1, "resume", "2026-03-12T09:00", "wang", "--note", "已答复")
    duban.ok("tick", now="2026-03-25T09:00")
    fire(duban, 1, "hold_accountable", "2026-03-26T09:00", "li", "--set", "measure=诫勉谈话", "--note", "延期后仍未办结")
    fire(duban, open_case(duban, "区财政局", "2026-04-30", title="按期推进中"), "accept", "2026-03-02T10:00", "czj")


def brief(duban: Duban, *args: str) -> dict[str, Any]:
    return dict(duban.ok("report", "accountability", *args, "--json", now="2026-03-27T09:00").json)


class TestAccountabilityReport:
    def test_deadlines_missed_by_how_much_and_by_whom(self, extended: Duban) -> None:
        [case] = brief(extended, "--case", "1")["cases"]
        d = {x["name"]: x for x in case["deadlines"]}
        assert (d["sign_for"]["missed"], d["sign_for"]["late_by"], d["sign_for"]["responsible"]) == (True, "9小时", "区发改局")
        assert d["due"]["original_due_at"] == "2026-03-13T23:59:59+08:00"
        assert d["due"]["due_at"] == "2026-03-21T23:59:59+08:00"  # extended to 03-20, one day suspended
        assert (d["due"]["missed"], d["due"]["late_by"], d["due"]["late_working_days"]) == (True, "4天9小时", 4)

    def test_measure_escalations_notices_and_changes(self, extended: Duban) -> None:
        [case] = brief(extended, "--case", "1")["cases"]
        assert (case["measure"], case["decided_by"], case["decision_note"]) == ("诫勉谈话", "li", "延期后仍未办结")
        assert [e["level_label"] for e in case["escalations"]] == ["黄牌预警", "红牌超期"]
        # one tick after the due instant: the yellow card was overtaken, so only the 催办 went out
        assert [e["notice"] for e in case["escalations"]] == [None, "催办通知"]
        assert {n["kind"] for n in case["notices"]} == {"催办通知"}
        assert [c["action_label"] for c in case["changes"]] == ["申请延期", "批准延期", "挂起", "恢复计时"]
        assert case["changes"][0]["note"] == "数据量大"
        seqs = [e["seq"] for e in case["timeline"]]
        assert seqs == list(range(seqs[0], seqs[0] + 10))  # the case's ten events, none left out

    def test_without_case_lists_only_cases_that_need_a_brief(self, extended: Duban) -> None:
        """Case 2 is on track, so the office-wide brief (and 区财政局's) leaves it out."""
        assert [c["case_id"] for c in brief(extended)["cases"]] == [1]
        assert brief(extended, "--unit", "区财政局")["cases"] == []
        assert [c["case_id"] for c in brief(extended, "--unit", "区发改局")["cases"]] == [1]

    def test_table(self, extended: Duban) -> None:
        out = extended.ok("report", "accountability", "--case", "1", now="2026-03-27T09:00").stdout
        for part in ("问责专报", "【时限】", "【升级督办】", "【通知】", "【延期与挂起】", "【时间线】", "诫勉谈话", "4天9小时"):
            assert part in out

    def test_bad_input(self, extended: Duban) -> None:
        assert extended("report", "accountability", "--case", "99").code == 3
        assert extended("report", "accountability", "--unit", "区不存在局").code == 3
        run = extended("report", "accountability", "--case", "1", "--unit", "区发改局")
        assert run.code == 2 and "not both" in run.stderr


# -- formats ---------------------------------------------------------------------------------
class TestFormats:
    def test_units_csv(self, season: Duban) -> None:
        """One table: plain CSV with a BOM and Chinese headers."""
        out = season.ok("report", "units", "--format", "csv", now="2026-04-01T09:00").stdout
        assert out.startswith("\ufeff")
        rows = list(csv.DictReader(out.lstrip("\ufeff").splitlines()))
        by_unit = {r["牵头单位"]: r for r in rows}
        assert by_unit["区发改局"]["按时办结率"] == "50.00%" and by_unit["区财政局"]["等级"] == "不合格"

    def test_bulletin_csv_has_a_block_per_list(self, march: Duban, tmp_path: Path) -> None:
        path = tmp_path / "bulletin.csv"
        march.ok("report", "bulletin", "--period", "month", "--date", "2026-03-01", "--format", "csv", "--out", str(path),
                 now="2026-04-05T09:00")
        text = path.read_text(encoding="utf-8-sig")
        assert text.index("【汇总】") < text.index("【新交办】") < text.index("【问责决定】")

    def test_xlsx_one_sheet_per_section_with_dates_and_percentages(self, season: Duban, tmp_path: Path) -> None:
        from openpyxl import load_workbook

        path = tmp_path / "units.xlsx"
        run = season.ok("report", "units", "--format", "xlsx", "--out", str(path), "--json", now="2026-04-01T09:00")
        assert run.json["rows"] == {"units": 3}
        ws = load_workbook(path)["各牵头单位"]
        header = [c.value for c in ws[1]]
        assert header[:3] == ["排名", "牵头单位", "案件数"] and ws.freeze_panes == "A2"
        rate_col = header.index("按时办结率") + 1
        fgj_row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 2).value == "区发改局")
        assert ws.cell(fgj_row, rate_col).value == 0.5 and ws.cell(fgj_row, rate_col).number_format == "0.00%"

    def test_accountability_xlsx_dates_are_dates(self, extended: Duban, tmp_path: Path) -> None:
        from openpyxl import load_workbook

        path = tmp_path / "brief.xlsx"
        extended.ok("report", "accountability", "--case", "1", "--format", "xlsx", "--out", str(path), now="2026-03-27T09:00")
        book = load_workbook(path)
        assert book.sheetnames == ["案件", "时限", "升级督办", "通知", "送达", "延期与挂起", "时间线", "审计检查点"]
        decided = book["案件"].cell(2, 11).value  # naive: Excel has no zones, so Beijing time
        assert decided == datetime(2026, 3, 26, 9, 0, tzinfo=TZ).replace(tzinfo=None)

    def test_json_is_one_document(self, season: Duban) -> None:
        out = season.ok("report", "units", "--format", "json", now="2026-04-01T09:00").stdout
        doc = json.loads(out)
        assert doc["report"] == "units" and doc["grades"][0] == {"min": 90.0, "label": "优秀"}

    def test_xlsx_needs_out(self, season: Duban) -> None:
        run = season("report", "units", "--format", "xlsx")
        assert run.code == 2 and "--out" in run.stderr

    def test_out_in_missing_folder_writes_nothing(self, season: Duban, tmp_path: Path) -> None:
        run = season("report", "bulletin", "--period", "week", "--format", "xlsx", "--out", str(tmp_path / "no" / "b.xlsx"))
        assert run.code == 2 and "does not exist" in run.stderr
        assert not (tmp_path / "no").exists()

    def test_unknown_format(self, season: Duban) -> None:
        run = season("report", "units", "--format", "pdf")
        assert run.code == 2 and "'pdf' is not one of" in run.stderr

    def test_since_after_until(self, season: Duban) -> None:
        run = season("report", "units", "--since", "2026-04-01", "--until", "2026-03-01")
        assert run.code == 2 and "is not before --until" in run.stderr
