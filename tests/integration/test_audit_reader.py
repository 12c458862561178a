"""Reading the audit chain a batch at a time (SPEC §7, §11), on SQLite and PostgreSQL.

The reference is what SQLAlchemy Core reads (``select(AUDIT)``, every column's type
processor): the batches must hold the same events, hash to the same bytes, verify with the
same answer and export the same files — for awkward values, for stored forms SQLAlchemy
never writes (other instant texts, JSON with spaces, numbers, a BLOB), and for every
kind of tampering with the stored rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from duban.engine.audit import GENESIS, canonical, canonical_batch, event_hash, format_instant, verify_chain
from duban.exports.events import AuditFilter, export_events, stream_events
from duban.reports.period import Period
from duban.storage import audit_log, audit_reader
from duban.storage.audit_reader import AuditEvents
from duban.storage.database import Database
from duban.storage.tables import AUDIT

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
NOTES = ["", "退回重办", 'say "hi"', "back\\slash", "line\nbreak", "tab\t", "\x1fcontrol", "\u3000全角", "a,b", "😀",
         "=cmd|' /C calc'!A0", "-1+1", "@SUM(A1)", "\tlead"]  # formulas a spreadsheet would run: defused in CSV
DATA: list[Any] = [{}, {"单位": "区发改局", "序号": 1}, {"b": [1, 2.5, None, True], "a": {"z": "引号\"", "y": ""}},
                   [], "text", {"nested": {"deep": [{"x": "\n"}]}}, {"\x00duban:next\x00": 1}]


def awkward_events(n: int = 40) -> list[dict[str, Any]]:
    """A valid chain whose fields take every awkward value in turn (None fields, quotes, line breaks …)."""
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {
            "seq": seq, "case_id": None if seq % 7 == 0 else seq % 3 + 1,
            "at": T0 + timedelta(days=seq * 11, microseconds=seq * 999 if seq % 2 else 0),
            "actor": "王督查" if seq % 5 else 'wang "the" boss', "role": "office", "action": "fire",
            "trigger": None if seq % 4 == 0 else "accept", "from_state": None if seq % 6 == 0 else "assigned",
            "to_state": None if seq % 9 == 0 else "in_progress", "note": NOTES[seq % len(NOTES)],
            "data": DATA[seq % len(DATA)], "prev_hash": prev,
        }
        e["hash"] = prev = event_hash(e)
        out.append(e)
    return out


def store(db: Database, events: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        conn.execute(insert(AUDIT), events)


def reference(conn: Connection) -> list[dict[str, Any]]:
    """The events as Core reads them."""
    return [dict(r._mapping) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq))]


def read_batches(conn: Connection, size: int = 7, **kw: Any) -> list[Any]:
    return list(AuditEvents(conn, size=size).batches(**kw))


class TestSameEvents:
    @pytest.mark.parametrize("size", [1, 7, 5000])
    def test_batches_hold_what_core_reads(self, db: Database, size: int) -> None:
        """Record by record, hashed bytes and instants: the batches are the events as Core reads them."""
        store(db, awkward_events())
        with db.read() as conn:
            ref = reference(conn)
            batches = read_batches(conn, size, instants=True)
            assert [r for b in batches for r in b.records()] == [{**e, "at": format_instant(e["at"])} for e in ref]
            assert [c for b in batches for c in canonical_batch(b)] == [canonical(e) for e in ref]
            assert [t for b in batches for t in b.instants] == [e["at"] for e in ref]
            assert list(AuditEvents(conn, size=size)) == ref

    def test_iterate_still_gives_records(self, db: Database) -> None:
        store(db, awkward_events())
        with db.read() as conn:
            assert list(audit_log.iterate(conn, case_id=2)) == [e for e in reference(conn) if e["case_id"] == 2]

    def test_the_whole_chain_verifies(self, db: Database) -> None:
        events = awkward_events()
        store(db, events)
        with db.read() as conn:
            assert verify_chain(AuditEvents(conn, size=7)) == (len(events), events[-1]["hash"], None)


def rehash_from(conn: Connection, seq: int) -> None:
    """Recompute the stored chain from ``seq`` on, from the values as Core reads them back."""
    prev = None
    for e in reference(conn):
        if e["seq"] < seq:
            prev = e["hash"]
            continue
        e["prev_hash"] = prev or GENESIS
        prev = event_hash(e)
        conn.execute(update(AUDIT).where(AUDIT.c.seq == e["seq"]).values(prev_hash=e["prev_hash"], hash=prev))


# Stored forms SQLAlchemy never writes (SQLite): each is read by the column processors, and the
# chain, re-hashed over what Core reads, verifies the same either way.
ODD_FORMS: dict[str, str] = {
    "instant with T, no fraction": "UPDATE audit_events SET at = '2026-04-02T01:00:00' WHERE seq = 3",
    "instant with an offset": "UPDATE audit_events SET at = '2026-04-02 09:00:00.000000+08:00' WHERE seq = 4",
    "instant without seconds' fraction": "UPDATE audit_events SET at = '2026-04-02 01:00:00' WHERE seq = 5",
    "year before 1000": "UPDATE audit_events SET at = '0999-04-02 01:00:00.000000' WHERE seq = 6",
    "JSON with spaces around": "UPDATE audit_events SET data = '  {\"a\": 1} ' WHERE seq = 8",
    "JSON number (stored as a number)": "UPDATE audit_events SET data = '5' WHERE seq = 9",
    "JSON null": "UPDATE audit_events SET data = 'null' WHERE seq = 10",
    "JSON as a BLOB": "UPDATE audit_events SET data = CAST('{\"b\": 2}' AS BLOB) WHERE seq = 11",
    "non-ASCII JSON text": "UPDATE audit_events SET data = '{\"单位\":\"区财政局\"}' WHERE seq = 12",
    "NULL case": "UPDATE audit_events SET case_id = NULL WHERE seq = 13",
}


@pytest.mark.parametrize("form", list(ODD_FORMS))
def test_stored_forms_core_never_writes_read_the_same(sqlite_url: str, form: str) -> None:
    """Another instant text, JSON with spaces, a number or a BLOB: the batch means what Core reads."""
    db = Database(sqlite_url)
    db.migrate()
    store(db, awkward_events(20))
    with db.write() as conn:
        conn.execute(text(ODD_FORMS[form]))
        rehash_from(conn, 1)
    with db.read() as conn:
        ref = reference(conn)
        assert [c for b in read_batches(conn) for c in canonical_batch(b)] == [canonical(e) for e in ref]
        assert verify_chain(AuditEvents(conn, size=7)) == verify_chain(ref) == (20, ref[-1]["hash"], None)
    db.dispose()


@pytest.mark.parametrize("stored", [
    "CAST('wang' AS BLOB)",  # a BLOB where text belongs: Core reads bytes, which no hash can take
    "'2026-02-30 01:00:00.000000'",  # no such day
])
def test_a_value_core_cannot_hash_fails_as_it_does(sqlite_url: str, stored: str) -> None:
    """Where reading event by event raises, so do the batches; an earlier break is still named first."""
    db = Database(sqlite_url)
    db.migrate()
    store(db, awkward_events(20))
    column = "actor" if "BLOB" in stored else "at"
    with db.write() as conn:
        conn.execute(text(f"UPDATE audit_events SET {column} = {stored} WHERE seq = 12"))
    with db.read() as conn, pytest.raises((TypeError, ValueError)):
        verify_chain(AuditEvents(conn, size=7))
    with db.write() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == 9).values(note="edited"))
    with db.read() as conn:
        assert verify_chain(AuditEvents(conn, size=7))[2] == verify_chain(AuditEvents(conn, size=100))[2]
        broken = verify_chain(AuditEvents(conn, size=7))[2]
        assert broken is not None and broken.seq == 9
    db.dispose()


# -- tampering with the stored rows ------------------------------------------------------
def edit_note(conn: Connection) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 17).values(note="改过的说明"))


def edit_and_rehash(conn: Connection) -> None:
    edit_note(conn)
    e = next(r for r in reference(conn) if r["seq"] == 17)
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 17).values(hash=event_hash(e)))


def drop(conn: Connection) -> None:
    conn.execute(delete(AUDIT).where(AUDIT.c.seq == 17))


def swap(conn: Connection) -> None:
    a, b = (next(r for r in reference(conn) if r["seq"] == s) for s in (17, 18))
    for row, other in ((a, b), (b, a)):
        conn.execute(update(AUDIT).where(AUDIT.c.seq == row["seq"]).values(
            **{k: v for k, v in other.items() if k != "seq"}))


def edit_instant(conn: Connection) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 30).values(at=T0))


def edit_data(conn: Connection) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 1).values(data={"单位": "别的单位", "序号": 1}))


def reorder_data_keys(conn: Connection) -> None:
    """Not tampering: the same data written with its keys in another order verifies (the hash sorts keys)."""
    e = next(r for r in reference(conn) if r["seq"] == 2)
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 2).values(data=dict(reversed(list(e["data"].items())))))


def forge_start(conn: Connection) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 1).values(prev_hash="f" * 64))


def edit_last_hash(conn: Connection) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == 40).values(hash="0" * 64))


TAMPERINGS: list[Callable[[Connection], None]] = [
    edit_note, edit_and_rehash, drop, swap, edit_instant, edit_data, reorder_data_keys, forge_start, edit_last_hash]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_tampering_is_found_as_event_by_event(db: Database, tamper: Callable[[Connection], None]) -> None:
    """Every edit, drop, swap or forgery gives the same count, head and first break as reading event by event."""
    store(db, awkward_events())
    with db.write() as conn:
        tamper(conn)
    with db.read() as conn:
        expected = verify_chain(reference(conn))
        for size in (1, 7, 5000):
            assert verify_chain(AuditEvents(conn, size=size)) == expected
    assert (expected[2] is None) == (tamper is reorder_data_keys)


# -- exports -----------------------------------------------------------------------------
def old_csv(rows: list[dict[str, Any]]) -> str:
    """The CSV as csv.writer writes it row by row (labels looked up one event at a time)."""
    from duban.exports.cells import defused
    from duban.exports.writers import COLUMNS
    from duban.present.labels import ACTION_LABELS, ROLE_LABELS

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([h for _, h in COLUMNS])
    for e in rows:
        shown = {**e, "title": "", "lead_unit": "",  # these events' cases are not in the database
                 "role_label": ROLE_LABELS.get(e["role"], e["role"]), "action_label": ACTION_LABELS.get(e["action"], e["action"]),
                 "trigger_label": e["trigger"], "from_state_label": e["from_state"], "to_state_label": e["to_state"],
                 "at": e["at"].astimezone(TZ).isoformat(), "data": json.dumps(e["data"], ensure_ascii=False, sort_keys=True),
                 "actor": defused(e["actor"]), "note": defused(e["note"])}
        writer.writerow(["" if shown[k] is None else shown[k] for k, _ in COLUMNS])
    return "\ufeff" + out.getvalue()


@pytest.mark.parametrize("filters", [AuditFilter(), AuditFilter(case_id=2),
                                     AuditFilter(period=Period(T0 + timedelta(days=50), T0 + timedelta(days=300)))],
                         ids=["all", "case", "period"])
def test_exports_hold_what_core_reads(db: Database, tmp_path: Path, filters: AuditFilter) -> None:
    """JSONL lines re-hash to the stored hashes; CSV is byte for byte what csv.writer wrote row by row."""
    store(db, awkward_events())
    with db.read() as conn:
        ref = [e for e in reference(conn) if filters.case_id in (None, e["case_id"])
               and (filters.period.start is None or filters.period.start <= e["at"] < filters.period.end)]
        assert ref
        for fmt in ("jsonl", "csv"):
            manifest = export_events(stream_events(conn, filters), fmt, tmp_path / f"a.{fmt}", TZ, created_at=T0)
            assert (manifest.rows, manifest.first_seq, manifest.last_hash) == (len(ref), ref[0]["seq"], ref[-1]["hash"])
        lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
        assert [json.loads(line) for line in lines] == [{**e, "at": format_instant(e["at"])} for e in ref]
        assert (tmp_path / "a.csv").read_bytes() == old_csv(ref).encode()
        rows = [tuple(e[k] for k in audit_reader.COLUMNS) for e in ref]  # rows given directly, not streamed
        export_events(rows, "jsonl", tmp_path / "b.jsonl", TZ, created_at=T0)
        assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


def test_a_streamed_query_comes_a_batch_at_a_time(db: Any) -> None:
    """`storage.sql.streamed` hands over `size` rows at a time on both databases (on
    PostgreSQL from a server-side cursor): never the whole result at once."""
    from datetime import UTC, datetime

    from duban.storage.sql import streamed
    from duban.storage.tables import UNITS

    with db.write() as conn:
        conn.execute(UNITS.insert(), [{"name": f"单位{k}", "created_at": datetime(2027, 3, 1, tzinfo=UTC)}
                                      for k in range(5)])
    with db.read() as conn:
        sizes = [len(rows) for rows in streamed(conn, 'SELECT "name" FROM "units" ORDER BY "name"', (), 2)]
    assert sizes == [2, 2, 1]
