"""Calendar data: the chinesecalendar seed, and YAML/CSV import files with their errors."""

from __future__ import annotations

import textwrap
from datetime import date
from importlib.metadata import version
from pathlib import Path

import pytest

from duban.errors import UsageError
from duban.exports import calendar_files
from duban.exports.calendar_files import (
    CalendarDay,
    CalendarImport,
    read_calendar_file,
    seed_from_chinesecalendar,
)

DATA = Path(__file__).parent / "data"
NOTICE = "国务院办公厅关于2027年部分节假日安排的通知"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def docstring_block(after: str) -> str:
    """The indented example that follows ``after`` in the module docstring."""
    doc = calendar_files.__doc__ or ""
    block = doc.split(after, 1)[1].split("\n\n", 2)[1]
    return textwrap.dedent(block)


class TestSeed:
    def test_covers_2004_to_2026(self) -> None:
        """The seed covers every year chinesecalendar 1.11 knows, with its version as source."""
        seed = seed_from_chinesecalendar()
        assert seed.years == tuple(range(2004, 2027))
        assert seed.source == f"chinesecalendar {version('chinesecalendar')}"

    def test_days_have_kinds_and_chinese_names(self) -> None:
        """Holidays and make-up days carry the holiday's Chinese name."""
        by_day = {d.day: d for d in seed_from_chinesecalendar().days}
        source = seed_from_chinesecalendar().source
        assert by_day[date(2026, 10, 1)] == CalendarDay(
            date(2026, 10, 1), "holiday", "国庆节", source
        )
        assert by_day[date(2026, 2, 14)] == CalendarDay(
            date(2026, 2, 14), "workday", "春节", source
        )
        assert by_day[date(2015, 9, 3)].name.startswith("中国人民抗日战争")

    def test_days_are_sorted_and_unique(self) -> None:
        """Days come in date order, each once."""
        days = [d.day for d in seed_from_chinesecalendar().days]
        assert days == sorted(set(days))


class TestReadYaml:
    def test_reads_the_example_file(self) -> None:
        """Single days and ranges expand to days with names, source and year."""
        result = read_calendar_file(DATA / "calendar-2027.yaml")
        assert result.years == (2027,)
        assert result.source == NOTICE
        assert [(d.day, d.kind, d.name) for d in result.days] == [
            (date(2027, 1, 1), "holiday", "元旦"),
            *((date(2027, 2, day), "holiday", "春节") for day in range(6, 14)),
            (date(2027, 2, 14), "workday", "春节调休"),
        ]
        assert {d.source for d in result.days} == {NOTICE}

    def test_module_docstring_example_is_valid(self, tmp_path: Path) -> None:
        """The YAML example in the docs (copied to the README) reads as documented."""
        path = write(tmp_path, "doc.yml", docstring_block("one year per file::"))
        assert read_calendar_file(path) == read_calendar_file(DATA / "calendar-2027.yaml")

    def test_quoted_dates_and_missing_lists(self, tmp_path: Path) -> None:
        """Quoted dates are fine, a name may be left out, workdays may be omitted."""
        path = write(
            tmp_path,
            "c.yaml",
            """
            year: 2027
            source: 本市通知
            holidays:
              - date: "2027-03-08"
            """,
        )
        assert read_calendar_file(path) == CalendarImport(
            (2027,), "本市通知", (CalendarDay(date(2027, 3, 8), "holiday", "", "本市通知"),)
        )


class TestReadCsv:
    def test_reads_bom_crlf_chinese_kinds_and_years(self) -> None:
        """A BOM, CRLF, blank lines and 休/班 are accepted; years come from the dates."""
        result = read_calendar_file(DATA / "calendar-overrides.csv")
        assert result.years == (2026, 2027)
        assert result.source == "市政府办公厅通知; 国务院办公厅通知"
        assert [(d.day, d.kind, d.name, d.source) for d in result.days] == [
            (date(2026, 12, 31), "holiday", "市级补休", "市政府办公厅通知"),
            (date(2027, 1, 1), "holiday", "元旦", "国务院办公厅通知"),
            (date(2027, 2, 14), "workday", "春节调休", "国务院办公厅通知"),
            (date(2027, 2, 20), "workday", "", "国务院办公厅通知"),
        ]

    def test_module_docstring_example_is_valid(self, tmp_path: Path) -> None:
        """The CSV example in the docs reads as documented."""
        path = write(tmp_path, "doc.csv", docstring_block("one day per row::"))
        result = read_calendar_file(path)
        assert result.years == (2027,)
        assert [d.kind for d in result.days] == ["holiday", "workday"]


YAML_HEAD = "year: 2027\nsource: 国务院办公厅通知\n"


class TestYamlErrors:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("year: 2027\nholidays: [\n", "line 3, column 1: not valid YAML: expected the node"),
            ("year: 2027\n  source: x\n", "line 2, column 9: not valid YAML: mapping values"),
            ("- 2027-01-01\n", "must be a mapping with keys year, source, holidays, workdays"),
            ("", "must be a mapping"),
            (YAML_HEAD + "holiday: []\n", "unknown key(s) holiday; allowed: year, source"),
            ("year: 2027\nholidays: [{date: 2027-01-01}]\n", "'source' is missing"),
            ("year: 2027\nsource: ' '\nholidays: [{date: 2027-01-01}]\n", "'source' is missing"),
            ("source: x\nholidays: [{date: 2027-01-01}]\n", "'year' is missing"),
            ("year: '2027'\nsource: x\nholidays: [{date: 2027-01-01}]\n", "not a year number"),
            (YAML_HEAD + "holidays: {date: 2027-01-01}\n", "'holidays' must be a list"),
            (YAML_HEAD + "holidays: [2027-01-01]\n", "holidays[0]: expected {date: YYYY-MM-DD"),
            (
                YAML_HEAD + "holidays:\n  - {day: 2027-01-01}\n",
                "holidays[0], line 4: unknown key(s) day; allowed: date, from, to, name",
            ),
            (
                YAML_HEAD + "holidays:\n  - {date: 2027-02-30}\n",
                "holidays[0], line 4: 'date' '2027-02-30' is not a date; write YYYY-MM-DD",
            ),
            (YAML_HEAD + "holidays: [{date: 2027-1-1}]\n", "'2027-1-1' is not a date"),
            (
                YAML_HEAD + "holidays: [{date: 2026-12-31}]\n",
                "'date' 2026-12-31 is outside the declared year 2027",
            ),
            (
                YAML_HEAD + "holidays: [{from: 2027-02-13, to: 2027-02-06}]\n",
                "'from' 2027-02-13 is after 'to' 2027-02-06",
            ),
            (YAML_HEAD + "holidays: [{from: 2027-02-13}]\n", "give either 'date' or both"),
            (
                YAML_HEAD + "holidays: [{date: 2027-02-13, from: 2027-02-13, to: 2027-02-14}]\n",
                "give either 'date' or both",
            ),
            (YAML_HEAD + "holidays: [{date: 2027-01-01, name: 0}]\n", "'name' must be text"),
            (YAML_HEAD + "holidays: 0\n", "'holidays' must be a list"),
            (
                YAML_HEAD
                + "holidays:\n  - {from: 2027-02-06, to: 2027-02-13}\n"
                + "workdays:\n  - {date: 2027-02-13}\n",
                (
                    "workdays[0], line 6: 2027-02-13 is listed both as holiday "
                    "(holidays[0], line 4) and as workday"
                ),
            ),
            (
                YAML_HEAD + "holidays: [{date: 2027-01-01}, {date: 2027-01-01}]\n",
                "2027-01-01 is already listed as holiday",
            ),
            (YAML_HEAD + "holidays: []\n", "lists no holidays or workdays"),
        ],
    )
    def test_bad_yaml_is_refused_with_file_entry_and_reason(
        self, tmp_path: Path, text: str, expected: str
    ) -> None:
        """Each problem raises UsageError naming the file, the entry and what is allowed."""
        path = tmp_path / "calendar-2027.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(UsageError) as caught:
            read_calendar_file(path)
        assert str(caught.value).startswith(f"{path}: ")
        assert expected in str(caught.value)


CSV_HEAD = "date,kind,name,source\n"


class TestCsvErrors:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", "line 1: the header must be date,kind,name,source, not an empty file"),
            ("day,kind,name,source\n", "the header must be date,kind,name,source, not day,"),
            (CSV_HEAD, "lists no days"),
            (CSV_HEAD + "2027-01-01,holiday,元旦\n", "line 2: expected 4 columns"),
            (CSV_HEAD + "2027/01/01,holiday,元旦,x\n", "line 2: date '2027/01/01' is not a date"),
            (CSV_HEAD + "2027-02-30,holiday,,x\n", "line 2: date '2027-02-30' is not a date"),
            (
                CSV_HEAD + "2027-01-01,off,元旦,x\n",
                "line 2: unknown kind 'off'; allowed: holiday (休), workday (班)",
            ),
            (CSV_HEAD + "2027-01-01,holiday,元旦,\n", "line 2: 'source' is empty"),
            (
                CSV_HEAD + "2027-01-01,holiday,元旦,x\n2027-01-01,班,,x\n",
                "line 3: 2027-01-01 is listed both as holiday (line 2) and as workday",
            ),
        ],
    )
    def test_bad_csv_is_refused_with_file_line_and_reason(
        self, tmp_path: Path, text: str, expected: str
    ) -> None:
        """Each problem raises UsageError naming the file, the line and what is allowed."""
        path = tmp_path / "days.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(UsageError) as caught:
            read_calendar_file(path)
        assert str(caught.value).startswith(f"{path}: ")
        assert expected in str(caught.value)


class TestFileErrors:
    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist is named in the error."""
        with pytest.raises(UsageError, match=r"nope\.yaml: no such calendar file"):
            read_calendar_file(tmp_path / "nope.yaml")

    def test_unknown_extension(self, tmp_path: Path) -> None:
        """Only .yaml, .yml and .csv are read."""
        with pytest.raises(UsageError, match=r"allowed: \.yaml, \.yml, \.csv"):
            read_calendar_file(write(tmp_path, "days.txt", "2027-01-01"))

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A file in another encoding (GBK from a spreadsheet) is refused, not misread."""
        path = tmp_path / "days.csv"
        path.write_bytes((CSV_HEAD + "2027-01-01,休,元旦,国务院\n").encode("gbk"))
        with pytest.raises(UsageError, match="not UTF-8"):
            read_calendar_file(path)

    def test_directory(self, tmp_path: Path) -> None:
        """A directory named like a calendar file is refused with a reason."""
        (tmp_path / "dir.yaml").mkdir()
        with pytest.raises(UsageError, match=r"dir\.yaml: cannot be read"):
            read_calendar_file(tmp_path / "dir.yaml")
