"""The audit export's file formats: CSV and JSONL lines a batch at a time, and XLSX rows.

`duban.exports.events` reads the events and drives the export; each writer here writes a
file from the event batches it is given and returns its SHA-256 (`HashedFile`: the hash
taken as the text is written, no second pass over the file), or None when the file must be
read back for it (XLSX: openpyxl writes the file itself).

JSONL and CSV lines are formatted a column at a time (`JsonRows`, `CsvRows`: the very text
json and csv.writer write, with one ``%`` format per row left to do row by row; CSV's local
times a UTC hour at a time, `LocalTimes`).

- JSONL keeps every hashed field exactly (``at`` in the chain's UTC form), so an export
  re-verifies offline (`duban.exports.manifest.verify_export`).
- CSV is UTF-8 with a BOM so Excel shows the Chinese text; instants in the office's zone
  (ISO 8601 to the microsecond: the exact instant of the record). Beside each identifier
  (role, action, trigger, states) a column with its label, and each event's case title and
  lead unit (`duban.exports.labels`); a cell a spreadsheet would run as a formula is written
  with a leading ``'`` (`duban.exports.cells`).
- XLSX (openpyxl write-only mode, `duban.present.render.XlsxBook`) has Chinese headers, a frozen
  header row, column widths fitted to the header and the first rows, and instants as real
  Excel dates (local time).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain, repeat
from operator import contains, itemgetter, methodcaller
from pathlib import Path
from typing import Any, BinaryIO

from duban.engine.audit import EventBatch, JsonRows, json_values
from duban.exports.cells import defused_column
from duban.exports.labels import ExportLabels

# CSV and XLSX: a person reads the labels, a script (or a reviewer checking the chain) the
# identifier beside each; JSONL holds the hashed fields only (`_JSONL`).
COLUMNS = [
    ("seq", "序号"), ("case_id", "案件编号"), ("title", "标题"), ("lead_unit", "牵头单位"), ("at", "时间"),
    ("actor", "操作人"), ("role_label", "角色"), ("role", "角色代码"), ("action_label", "动作"), ("action", "动作代码"),
    ("trigger_label", "操作"), ("trigger", "操作代码"), ("from_state_label", "原状态"), ("from_state", "原状态代码"),
    ("to_state_label", "新状态"), ("to_state", "新状态代码"), ("note", "说明"), ("data", "数据"),
    ("prev_hash", "前一哈希"), ("hash", "哈希"),
]
Row = Sequence[Any]  # one event as read: its values in `duban.storage.audit_reader.COLUMNS` order
WIDTH_SAMPLE = 1000  # rows an XLSX's column widths are fitted to (they precede the rows in the file)


# JSONL: every hashed field and the hash, ``at`` in the chain's form, ``data`` compact in its
# stored key order; `duban.exports.manifest.verify_export` re-hashes each line.
_JSONL = JsonRows([("seq", "int"), ("case_id", "int"), ("at", "text"), ("actor", "text"), ("role", "text"),
                   ("action", "text"), ("trigger", "text"), ("from_state", "text"), ("to_state", "text"),
                   ("note", "text"), ("data", "json"), ("prev_hash", "text"), ("hash", "text")], end="\n")
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DATA_TEXT = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode  # json.dumps(data, ensure_ascii=False, sort_keys=True)


def jsonl_lines(b: EventBatch) -> str:
    """The batch's events as JSON lines, one object per event (see `_JSONL`)."""
    return "".join(_JSONL.rows([b.seq, b.case_id, b.at, b.actor, b.role, b.action, b.trigger, b.from_state,
                                b.to_state, b.note, json_values(b.data, _COMPACT), b.prev_hash, b.hash]))


class HashedFile:
    """Text written to a file as UTF-8 (what ``open(path, "w", encoding="utf-8",
    newline="")`` writes) and hashed on the way, so the manifest's SHA-256 needs no second
    pass over the file."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._digest = hashlib.sha256()

    def write(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        self._digest.update(data)
        self._fh.write(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _write_lines(fmt: str) -> Callable[[Iterable[EventBatch], Path, tzinfo, ExportLabels], str]:
    """The writer of a line format (CSV, JSONL): its header, then each batch's lines."""
    def write(batches: Iterable[EventBatch], path: Path, tz: tzinfo, labels: ExportLabels) -> str:
        lines = batch_lines(fmt, tz, labels)
        with open(path, "wb") as raw:
            fh = HashedFile(raw)
            fh.write(HEADERS[fmt])
            for b in batches:
                fh.write(lines(b))
        return fh.hexdigest()
    return write


def batch_lines(fmt: str, tz: tzinfo, labels: ExportLabels | None = None) -> Callable[[EventBatch], str]:
    """The function that writes a batch's events as lines of ``fmt`` (csv or jsonl); CSV's
    titles, units and labels from ``labels``."""
    if fmt == "jsonl":
        return jsonl_lines
    times, rows, words = LocalTimes(tz), CsvRows(), labels or ExportLabels()
    # the cells a case or an event's identifiers decide come finished from `words` (RAW_CSV)
    return lambda b: rows.rows([b.seq, b.case_id, words.case_csv(b), times.texts(b), defused_column(b.actor),
                                words.words_csv(b), defused_column(b.note), _data_texts(b), b.prev_hash, b.hash],
                               raw=RAW_CSV)


RAW_CSV = frozenset({2, 5})  # title and unit; each identifier with its label: CSV text already


def people_columns(b: EventBatch, at: Sequence[Any], labels: ExportLabels) -> list[Sequence[Any]]:
    """The batch's columns in `COLUMNS` order, instants given as ``at``: text anyone could
    have typed, and labels, defused (`duban.exports.cells`); identifiers, hashes and the JSON of
    ``data`` (which begins with ``{``) are written as they are."""
    title, unit, role, action, trigger, from_state, to_state = map(defused_column, labels.columns(b))
    return [b.seq, b.case_id, title, unit, at, defused_column(b.actor), role, b.role, action, b.action,
            trigger, b.trigger, from_state, b.from_state, to_state, b.to_state, defused_column(b.note),
            _data_texts(b), b.prev_hash, b.hash]


def _data_texts(b: EventBatch) -> list[str]:
    """``data`` as CSV and XLSX show it: key-sorted JSON, Chinese as is."""
    return json_values(b.data, _DATA_TEXT, ", ")


class CsvRows:
    """CSV lines as `csv.writer` (the excel dialect) writes them, a batch at a time.

    A field is quoted when it holds a comma, a quote or a line break, its quotes doubled;
    None is empty. A column is written as it is when none of its values needs quoting, all
    quoted (one replace over the whole column) when all do, and value by value otherwise;
    then each line is one ``%`` format. A column of other values (floats, booleans …) sends
    the batch to `csv.writer` itself."""

    def __init__(self) -> None:
        self._templates: dict[tuple[bool, ...], str] = {}

    def rows(self, columns: Sequence[Sequence[Any]], raw: frozenset[int] = frozenset()) -> str:
        """The batch's lines; ``columns`` one per field, or for the indexes in ``raw`` one per
        run of fields already written as CSV text (put in the line as they are)."""
        quoted: list[bool] = []
        ready: list[Sequence[Any]] = []
        for i, values in enumerate(columns):
            if i in raw:
                quoted.append(False)
                ready.append(values)
                continue
            kinds = set(map(type, values))
            if not kinds <= {str, int, type(None)} or (str in kinds and int in kinds):
                return self._by_csv_module(columns, raw)
            if type(None) in kinds:
                values = list(map(_EMPTY.get, values, values))
            if str not in kinds:
                quoted.append(False)
                ready.append(values)
                continue
            joined = "".join(values)
            if not _needs_quotes(joined):
                quoted.append(False)
                ready.append(values)
            elif all(map(contains, values, repeat('"'))) and "\x1f" not in joined:  # JSON data, typically
                quoted.append(True)
                ready.append("\x1f".join(values).replace('"', '""').split("\x1f"))
            else:
                quoted.append(False)
                ready.append([f'"{v.replace(chr(34), 2 * chr(34))}"' if _CSV_SPECIAL.search(v) else v for v in values])
        key = tuple(quoted)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = ",".join('"%s"' if q else "%s" for q in key) + "\r\n"
        return "".join(map(template.__mod__, zip(*ready, strict=True)))

    @staticmethod
    def _by_csv_module(columns: Sequence[Sequence[Any]], raw: frozenset[int] = frozenset()) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if not raw:
            writer.writerows(zip(*columns, strict=True))
            return buffer.getvalue()
        lines = []
        for row in zip(*columns, strict=True):
            fields = []
            for i, value in enumerate(row):
                if i in raw:
                    fields.append(value)
                    continue
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([value, None])  # two fields: a lone empty one would be written as ""
                fields.append(buffer.getvalue()[:-3])  # less the "," and the line's end
            lines.append(",".join(fields) + "\r\n")
        return "".join(lines)


_CSV_SPECIAL = re.compile(r'[,"\r\n]')  # what makes the excel dialect quote a field


def _needs_quotes(text: str) -> bool:
    return "," in text or '"' in text or "\n" in text or "\r" in text
_EMPTY = {None: ""}


class LocalTimes:
    """Each event's instant as CSV shows it: ``datetime.isoformat`` in the office's zone.

    Worked out once per hour of UTC rather than once per event, from the chain's text form
    of the instants (``YYYY-MM-DDTHH:MM:SS.ffffffZ``): when the zone's offset is a whole
    number of hours and the same at both ends of that hour (the tz database never changes
    an offset twice within one hour), every instant of the hour is its own minutes, seconds
    and microseconds after the local hour, so its text is the local hour's text, the UTC
    text's ``:MM:SS.ffffff`` (without ``.000000``, as isoformat writes a whole second) and
    the offset. Any other batch — an offset of 5:30, an hour with a change of offset, a
    text in another form — takes each instant through ``astimezone`` and ``isoformat``."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._local = methodcaller("astimezone", tz)

    def texts(self, b: EventBatch) -> list[str]:
        by_hour = self._by_hour(b.at)
        if by_hour is not None:
            return by_hour
        instants = b.instants if b.instants is not None else [_utc_instant(v) for v in b.at]
        return list(map(datetime.isoformat, map(self._local, instants)))

    def _by_hour(self, at: Sequence[Any]) -> list[str] | None:
        if set(map(type, at)) != {str} or _CHAIN_INSTANTS.fullmatch("\n".join(at) + "\n") is None:
            return None
        hours: dict[str, str] = {}
        for key in set(map(_HOUR_OF, at)):
            template = self._hour(key)
            if template is None:
                return None
            hours[key] = template
        texts = "\n".join(map(str.__mod__, map(hours.__getitem__, map(_HOUR_OF, at)), map(_AFTER_HOUR, at)))
        return texts.replace(".000000+", "+").replace(".000000-", "-").split("\n")

    def _hour(self, key: str) -> str | None:
        """``%s`` between the local text of UTC hour ``key`` and the zone's offset then; None
        unless that offset is whole hours and holds for the whole hour."""
        try:
            start = datetime.fromisoformat(key + ":00:00+00:00")
            local = start.astimezone(self.tz)
            offset = local.utcoffset()
            if offset is None or offset % _ONE_HOUR or (start + _ONE_HOUR - _ONE_US).astimezone(self.tz).utcoffset() != offset:
                return None
        except (ValueError, OverflowError):
            return None
        text = local.isoformat()  # YYYY-MM-DDTHH:00:00+HH:MM
        return text[:13] + "%s" + text[19:]


def _utc_instant(text: str) -> datetime:
    """The instant of the chain's text form (`format_instant`; its year may be unpadded)."""
    year, rest = text.removesuffix("Z").split("-", 1)
    return datetime.fromisoformat(f"{int(year):04d}-{rest}").replace(tzinfo=UTC)


_CHAIN_INSTANTS = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\n)*")
_HOUR_OF, _AFTER_HOUR = itemgetter(slice(0, 13)), itemgetter(slice(13, -1))  # YYYY-MM-DDTHH | :MM:SS.ffffff
_ONE_HOUR, _ONE_US = timedelta(hours=1), timedelta(microseconds=1)


def _write_xlsx(batches: Iterable[EventBatch], path: Path, tz: tzinfo,
                labels: ExportLabels) -> None:  # hashed after: openpyxl writes the file
    from duban.present.render import XlsxBook

    def rows(b: EventBatch) -> Iterator[Sequence[Any]]:
        assert b.instants is not None
        at = [v.astimezone(tz).replace(tzinfo=None) for v in b.instants]
        return zip(*people_columns(b, at, labels), strict=True)

    with XlsxBook.open(path) as book:
        book.sheet("审计日志", COLUMNS, chain.from_iterable(map(rows, batches)), sample=WIDTH_SAMPLE)


# each writes the file and returns its SHA-256, or None when it must be read back for that
WRITERS: dict[str, Callable[[Iterable[EventBatch], Path, tzinfo, ExportLabels], str | None]] = {
    "jsonl": _write_lines("jsonl"), "csv": _write_lines("csv"), "xlsx": _write_xlsx,
}
# What a line format's file starts with: CSV a BOM (so Excel reads UTF-8) and the Chinese header.
HEADERS = {"jsonl": "", "csv": "\ufeff" + CsvRows().rows([[h] for _, h in COLUMNS])}
