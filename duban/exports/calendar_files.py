"""Reading working-day calendar data: the ``chinesecalendar`` seed and import files.

The engine's calendar (``duban.engine.calendar``) is plain data; this module is where
that data comes from. ``seed_from_chinesecalendar`` reads the years the installed
``chinesecalendar`` package covers (2004-2026 in 1.11.0). ``read_calendar_file`` reads
a year's official schedule (国务院办公厅 notice) or local overrides that an office
writes itself, in one of two formats.

YAML (``.yaml`` or ``.yml``), one year per file::

    year: 2027
    source: 国务院办公厅关于2027年部分节假日安排的通知  # required: where the dates come from
    holidays:                                        # days off; single days or ranges
      - {date: 2027-01-01, name: 元旦}
      - {from: 2027-02-06, to: 2027-02-13, name: 春节}
    workdays:                                        # 调休 make-up working days
      - {date: 2027-02-14, name: 春节调休}

- ``year`` and ``source`` are required; ``holidays`` and ``workdays`` are lists, and
  together they must name at least one day (an empty year would be counted as
  "known" with weekends only, which is exactly the silent guess SPEC §5.4 forbids).
- Each entry is either ``{date: D}`` or ``{from: D1, to: D2}`` (both ends included),
  with an optional ``name``. Dates are written ``YYYY-MM-DD`` and must lie in ``year``.
  A notice that also sets a day of the neighbouring year (e.g. 12-31 before a 元旦
  break) has that day listed in the neighbouring year's file.
- A day may be listed only once: not twice, and never both as holiday and workday.

CSV (``.csv``, UTF-8, a byte-order mark is allowed), one day per row::

    date,kind,name,source
    2027-01-01,holiday,元旦,国务院办公厅关于2027年部分节假日安排的通知
    2027-02-14,workday,春节调休,国务院办公厅关于2027年部分节假日安排的通知

- The header must be exactly ``date,kind,name,source``.
- ``kind`` is ``holiday`` (or ``休``) or ``workday`` (or ``班``); ``name`` may be
  empty; ``source`` is required on every row.
- The file lists days of the years its dates fall in. A day may be listed only once.
- A CSV is local overrides: it changes the days it lists but does not make their year's
  schedule known (only a YAML file of a whole ``year:`` does), so deadlines in a year
  without an official schedule stay approximate.

Every problem raises ``duban.errors.UsageError`` naming the file, the line or entry,
what is wrong and what is allowed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import yaml

from duban.errors import UsageError
from duban.workflows import bounded_yaml
from duban.workflows.bounded_yaml import clip, clip_text

Kind = Literal["holiday", "workday"]
_KINDS: tuple[Kind, ...] = ("holiday", "workday")

CSV_HEADER = ("date", "kind", "name", "source")
YAML_KEYS = ("year", "source", "holidays", "workdays")
_CSV_KINDS: dict[str, Kind] = {
    "holiday": "holiday",
    "休": "holiday",
    "workday": "workday",
    "班": "workday",
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class CalendarDay:
    """One listed day.

    Attributes:
        day: the date.
        kind: ``holiday`` (a day off) or ``workday`` (a make-up working day).
        name: e.g. 春节, 春节调休; may be empty.
        source: where the date comes from (a notice number, a package version).
    """

    day: date
    kind: Kind
    name: str
    source: str


@dataclass(frozen=True)
class CalendarImport:
    """The content of one seed or file, ready to be stored.

    Attributes:
        years: the years whose days this import lists, ascending.
        source: where the dates come from.
        days: the listed days, in date order.
        official: the whole schedule of ``years`` (a YAML ``year:`` with its ``source``, or
            the seed): those years become known. A CSV is local overrides of single days:
            the years it touches stay approximate unless loaded otherwise (SPEC §16).
    """

    years: tuple[int, ...]
    source: str
    days: tuple[CalendarDay, ...]
    official: bool = True


def seed_from_chinesecalendar() -> CalendarImport:
    """Every year the installed ``chinesecalendar`` package covers.

    Reads the package's data tables (``chinese_calendar.constants``) directly; its
    functions raise for any year it does not cover, so the engine never calls them.
    """
    # Imported here, by name: only seeding needs the package, and the package ships no
    # type information, so its tables are untyped data either way.
    constants = import_module("chinese_calendar.constants")

    source = f"chinesecalendar {version('chinesecalendar')}"
    listed: list[tuple[date, Kind, str]] = [
        (day, "holiday", value) for day, value in constants.holidays.items()
    ]
    listed += [(day, "workday", value) for day, value in constants.workdays.items()]
    days = tuple(
        CalendarDay(day=day, kind=kind, name=_holiday_name(constants.Holiday, value), source=source)
        for day, kind, value in sorted(listed)
    )
    first, last = days[0].day.year, days[-1].day.year
    return CalendarImport(years=tuple(range(first, last + 1)), source=source, days=days)


def read_calendar_file(path: str | Path) -> CalendarImport:
    """Read a YAML or CSV calendar file (formats in the module docstring).

    Raises:
        UsageError: the file is missing, unreadable or wrong; the message names the
            file, the line or entry, the problem and what is allowed.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise UsageError(f"{file}: unknown calendar file type (allowed: .yaml, .yml, .csv)")
    try:
        # YAML within the limits of `duban.workflows.bounded_yaml` (size, aliases, nesting)
        text = bounded_yaml.read_text(file) if suffix != ".csv" else file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{file}: no such calendar file") from None
    except bounded_yaml.YamlLimitError as exc:
        raise UsageError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot be read ({exc.strerror})") from None
    # Messages name the file as the user gave it, e.g. on `duban calendar import FILE`.
    if suffix == ".csv":
        return _read_csv(str(file), text)
    try:
        return _read_yaml(str(file), text)
    except bounded_yaml.YamlLimitError as exc:  # a calendar file's problems are usage errors (exit 2)
        raise UsageError(str(exc)) from None


def _holiday_name(holiday_enum: Any, value: str) -> str:
    """The Chinese name of a ``chinese_calendar`` holiday value, else the value itself."""
    try:
        return str(getattr(holiday_enum(value), "chinese", value))
    except ValueError:
        return value


# --- YAML ------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps dates as text and remembers each mapping's line.

    Dates stay text so that a bad one (2027-02-30) is reported by us with its entry,
    not as a bare ValueError from deep inside PyYAML.
    """


class _Entry(dict[Any, Any]):
    """A YAML mapping that knows the line it starts on."""

    line = 0


def _construct_entry(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Entry]:
    entry = _Entry()
    entry.line = node.start_mark.line + 1
    yield entry
    entry.update(loader.construct_mapping(node))


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_entry)
_BoundedLoader = bounded_yaml.bounded(_Loader)


def _read_yaml(name: str, text: str) -> CalendarImport:
    try:
        # _Loader is a SafeLoader: no tags that build arbitrary Python objects.
        document = bounded_yaml.load(text, name, _BoundedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise UsageError(f"{name}: {where}not valid YAML: {clip_text(problem)}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{name}: not valid YAML: {clip_text(str(exc))}") from None
    if not isinstance(document, _Entry):
        raise UsageError(
            f"{name}: the file must be a mapping with keys {', '.join(YAML_KEYS)}, "
            f"not {_kind_of(document)}"
        )
    _check_keys(name, "the top level", document, YAML_KEYS)
    year = document.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        raise UsageError(f"{name}: 'year' is missing or not a year number like 2027")
    source = document.get("source")
    if not isinstance(source, str) or not source.strip():
        raise UsageError(
            f"{name}: 'source' is missing or empty; give where the dates come from, "
            "e.g. source: 国务院办公厅关于2027年部分节假日安排的通知"
        )
    source = source.strip()
    days: dict[date, tuple[CalendarDay, str]] = {}
    for kind in _KINDS:
        key = f"{kind}s"
        entries = document.get(key)
        if entries is None:  # left out, or written `workdays:` with nothing after it
            entries = []
        if not isinstance(entries, list):
            raise UsageError(f"{name}: '{key}' must be a list of entries, not {_kind_of(entries)}")
        for index, entry in enumerate(entries):
            where = f"{key}[{index}]"
            if isinstance(entry, _Entry):
                where += f", line {entry.line}"
            for day, day_name in _expand_entry(name, where, entry, year):
                _add_day(name, where, days, CalendarDay(day, kind, day_name, source))
    if not days:
        raise UsageError(
            f"{name}: lists no holidays or workdays; a year's schedule needs its days "
            "(a year without data is counted with weekends only and marked approximate)"
        )
    return CalendarImport(years=(year,), source=source, days=_in_order(days))


def _expand_entry(name: str, where: str, entry: object, year: int) -> list[tuple[date, str]]:
    """The days of one ``{date: ...}`` or ``{from: ..., to: ...}`` entry."""
    forms = "{date: YYYY-MM-DD, name: ...} or {from: YYYY-MM-DD, to: YYYY-MM-DD, name: ...}"
    if not isinstance(entry, Mapping):
        raise UsageError(f"{name}: {where}: expected {forms}, not {_kind_of(entry)}")
    _check_keys(name, where, entry, ("date", "from", "to", "name"))
    day_name = entry.get("name")
    if day_name is None:  # left out, or written `name:` with nothing after it
        day_name = ""
    if not isinstance(day_name, str):
        raise UsageError(f"{name}: {where}: 'name' must be text, not {_kind_of(day_name)}")
    if "date" in entry and not ("from" in entry or "to" in entry):
        first = last = _yaml_day(name, where, "date", entry["date"], year)
    elif "from" in entry and "to" in entry and "date" not in entry:
        first = _yaml_day(name, where, "from", entry["from"], year)
        last = _yaml_day(name, where, "to", entry["to"], year)
        if first > last:
            raise UsageError(f"{name}: {where}: 'from' {first} is after 'to' {last}")
    else:
        raise UsageError(f"{name}: {where}: give either 'date' or both 'from' and 'to': {forms}")
    count = (last - first).days + 1
    return [(first + timedelta(days=offset), day_name.strip()) for offset in range(count)]


def _yaml_day(name: str, where: str, key: str, value: object, year: int) -> date:
    day = _parse_day(value)
    if day is None:
        raise UsageError(
            f"{name}: {where}: '{key}' {clip(value)} is not a date; write YYYY-MM-DD, e.g. {year}-01-01"
        )
    if day.year != year:
        raise UsageError(
            f"{name}: {where}: '{key}' {day} is outside the declared year {year}; "
            f"list it in the file for {day.year}"
        )
    return day


# --- CSV -------------------------------------------------------------------------


def _read_csv(name: str, text: str) -> CalendarImport:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(cell.strip() for cell in header) != CSV_HEADER:
        found = clip_text(",".join(header)) if header else "an empty file"
        raise UsageError(f"{name}: line 1: the header must be {','.join(CSV_HEADER)}, not {found}")
    days: dict[date, tuple[CalendarDay, str]] = {}
    sources: dict[str, None] = {}  # distinct, in order of first appearance
    for row in reader:
        where = f"line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise UsageError(
                f"{name}: {where}: expected {len(CSV_HEADER)} columns "
                f"({','.join(CSV_HEADER)}), found {len(row)}"
            )
        day_text, kind_text, day_name, source = (cell.strip() for cell in row)
        day = _parse_day(day_text)
        if day is None:
            raise UsageError(f"{name}: {where}: date {clip(day_text)} is not a date; write YYYY-MM-DD")
        kind = _CSV_KINDS.get(kind_text.lower())
        if kind is None:
            raise UsageError(
                f"{name}: {where}: unknown kind {clip(kind_text)}; allowed: holiday (休), workday (班)"
            )
        if not source:
            raise UsageError(f"{name}: {where}: 'source' is empty; give where the date comes from")
        sources[source] = None
        _add_day(name, where, days, CalendarDay(day, kind, day_name, source))
    if not days:
        raise UsageError(f"{name}: lists no days below the header {','.join(CSV_HEADER)}")
    years = tuple(sorted({day.year for day in days}))
    return CalendarImport(years=years, source="; ".join(sources), days=_in_order(days), official=False)


# --- shared ----------------------------------------------------------------------


def _parse_day(value: object) -> date | None:
    """A ``YYYY-MM-DD`` date, or None; stricter than ``date.fromisoformat``."""
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value.strip()):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _add_day(
    name: str, where: str, days: dict[date, tuple[CalendarDay, str]], day: CalendarDay
) -> None:
    """Record ``day``, refusing a day that an earlier line or entry already listed."""
    earlier = days.get(day.day)
    if earlier is not None:
        listed, earlier_where = earlier
        if listed.kind != day.kind:
            problem = f"is listed both as {listed.kind} ({earlier_where}) and as {day.kind}"
        else:
            problem = f"is already listed as {listed.kind} ({earlier_where})"
        raise UsageError(f"{name}: {where}: {day.day} {problem}; list each day once")
    days[day.day] = (day, where)


def _check_keys(
    name: str, where: str, mapping: Mapping[Any, Any], allowed: tuple[str, ...]
) -> None:
    unknown = [str(key) for key in mapping if key not in allowed]
    if unknown:
        raise UsageError(
            f"{name}: {where}: unknown key(s) {clip_text(', '.join(unknown))}; allowed: {', '.join(allowed)}"
        )


def _in_order(days: dict[date, tuple[CalendarDay, str]]) -> tuple[CalendarDay, ...]:
    return tuple(days[day][0] for day in sorted(days))


def _kind_of(value: object) -> str:
    """How a wrongly typed YAML value reads in a message."""
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {clip(value)}"
