"""`audit verify` in worker processes (`duban.exports.parallel_verify`), on SQLite and PostgreSQL:
the same answer as the sequential check — count, last good hash, first break and its
reason — on intact chains and for each kind of tampering, at, before and after the cuts
between ranges; and `duban audit verify --jobs N` end to end.

The chains here are small, so the tests lower ``parallel_from`` and ``min_range`` to make
the ranges a few events long (the real workers still run, one process per job)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, text, update

from duban.engine.audit import GENESIS, event_hash
from duban.exports.parallel_verify import PARALLEL_FROM, ranges, sequential, verify_database
from duban.storage.database import Database
from duban.storage.tables import AUDIT
from tests.conftest import Duban
from tests.integration.test_audit_reader import T0, awkward_events, reference, store

N = 40


def parallel(db: Database, jobs: int) -> Any:
    return verify_database(db, jobs, parallel_from=1, min_range=1)


def restore(db: Database, events: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        conn.execute(delete(AUDIT))
        conn.execute(insert(AUDIT), events)


def row(conn: Connection, seq: int) -> dict[str, Any]:
    return next(r for r in reference(conn) if r["seq"] == seq)


# -- tampering with event ``seq`` ------------------------------------------------------------
def edit_note(conn: Connection, seq: int) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(note="改过的说明"))


def edit_and_rehash(conn: Connection, seq: int) -> None:
    edit_note(conn, seq)
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(hash=event_hash(row(conn, seq))))


def edit_hash(conn: Connection, seq: int) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(hash="0" * 64))


def forge_link(conn: Connection, seq: int) -> None:
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(prev_hash="f" * 64))
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(hash=event_hash(row(conn, seq))))


def drop(conn: Connection, seq: int) -> None:
    conn.execute(delete(AUDIT).where(AUDIT.c.seq == seq))


def swap(conn: Connection, seq: int) -> None:
    """Event seq and the next (the one before, at the end) exchange contents, keeping their numbers."""
    other = seq + 1 if seq < N else seq - 1
    a, b = row(conn, seq), row(conn, other)
    for mine, theirs in ((a, b), (b, a)):
        conn.execute(update(AUDIT).where(AUDIT.c.seq == mine["seq"]).values(
            **{k: v for k, v in theirs.items() if k != "seq"}))


def renumber(conn: Connection, seq: int) -> None:
    """The event moved to number 0 (before the chain) or far beyond its end."""
    conn.execute(update(AUDIT).where(AUDIT.c.seq == seq).values(seq=0 if seq == 1 else seq + 1000))


def truncate(conn: Connection, seq: int) -> None:
    """Every event from seq on deleted: a shorter chain that verifies."""
    conn.execute(delete(AUDIT).where(AUDIT.c.seq >= seq))


def empty_range(conn: Connection, seq: int) -> None:
    """seq and the four events after it deleted: a whole range may hold nothing."""
    conn.execute(delete(AUDIT).where(AUDIT.c.seq >= seq, AUDIT.c.seq < seq + 5))


TAMPERINGS: list[Callable[[Connection, int], None]] = [
    edit_note, edit_and_rehash, edit_hash, forge_link, drop, swap, renumber, truncate, empty_range]


def near_cuts(jobs: int) -> list[int]:
    """Both ends of the chain, and the last and first event of the ranges on both sides of the
    first two cuts and of the last cut, with their neighbours."""
    parts = ranges(N, jobs, 1)
    around = {1, 2, N - 1, N}
    for (_, high), (low, _) in [*pairwise(parts[:3]), (parts[-2], parts[-1])]:
        assert low == high + 1
        around |= {high - 1, high, low, low + 1}
    return sorted(s for s in around if 1 <= s <= N)


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_tampering_is_found_as_sequentially(db: Database, tamper: Callable[[Connection, int], None]) -> None:
    """With 2 and 3 jobs (8 ranges of 5 events, 12 of 3–4), wherever the tampering falls: the sequential answer."""
    events = awkward_events(N)
    for jobs in (2, 3):
        assert len(ranges(N, jobs, 1)) > jobs
        for seq in near_cuts(jobs):
            restore(db, events)
            with db.write() as conn:
                tamper(conn, seq)
            expected = sequential(db)
            assert parallel(db, jobs) == expected, (tamper.__name__, jobs, seq)
            if seq < N - 5:  # (nearer the end, a drop is a shorter chain and a re-hashed last event is not found)
                assert (expected[2] is None) == (tamper is truncate), (tamper.__name__, seq)


def test_an_intact_chain_verifies_in_ranges(db: Database) -> None:
    store(db, awkward_events(N))
    expected = sequential(db)
    assert expected[0] == N and expected[2] is None
    for jobs in (2, 3, 5):
        assert parallel(db, jobs) == expected
    assert verify_database(db, 2) == expected  # below the default threshold: sequential


def test_an_empty_chain(db: Database) -> None:
    assert parallel(db, 2) == sequential(db) == (0, GENESIS, None)


def test_ranges_cover_every_number_once() -> None:
    for last_seq in (2, 7, 40, 41, 100_000, 1_000_003):
        for jobs in (2, 3, 8):
            parts = ranges(last_seq, jobs, 1)
            assert parts[0][0] is None and parts[-1][1] == last_seq
            assert [low for low, _ in parts[1:]] == [high + 1 for _, high in parts[:-1]]
    assert len(ranges(1_000_000, 2)) == 8 and ranges(PARALLEL_FROM, 2)[1][0] == PARALLEL_FROM // 2 + 1


def test_a_value_that_cannot_be_read_fails_as_sequentially(sqlite_url: str) -> None:
    """A worker that raises makes the check run sequentially: the same error; an earlier break still wins."""
    db = Database(sqlite_url)
    db.migrate()
    store(db, awkward_events(N))
    with db.write() as conn:
        conn.execute(text("UPDATE audit_events SET at = '2026-02-30 01:00:00.000000' WHERE seq = 32"))
    with pytest.raises(ValueError, match="day is out of range"):
        sequential(db)
    with pytest.raises(ValueError, match="day is out of range"):
        parallel(db, 2)
    with db.write() as conn:
        edit_note(conn, 9)
    expected = sequential(db)
    assert expected[2] is not None and expected[2].seq == 9
    assert parallel(db, 2) == expected
    db.dispose()


def test_forkserver_workers_give_the_same_answer(sqlite_url: str) -> None:
    """The start method a threaded process gets: no state of this process reaches the workers."""
    db = Database(sqlite_url)
    db.migrate()
    store(db, awkward_events(N))
    with db.write() as conn:
        edit_note(conn, 21)
    expected = sequential(db)
    assert verify_database(db, 2, parallel_from=1, min_range=1, method="forkserver") == expected
    db.dispose()


# -- the command -----------------------------------------------------------------------------
BIG = PARALLEL_FROM + 10_000  # over the default threshold: `--jobs 2` really runs workers


def big_chain(n: int) -> Iterator[list[dict[str, Any]]]:
    prev, rows = GENESIS, []
    for seq in range(1, n + 1):
        e = {"seq": seq, "case_id": None, "at": T0 + timedelta(seconds=seq), "actor": "王督查", "role": "office",
             "action": "fire", "trigger": "accept", "from_state": "assigned", "to_state": "in_progress",
             "note": f"第{seq}号", "data": {"序号": seq}, "prev_hash": prev}
        e["hash"] = prev = event_hash(e)
        rows.append(e)
        if len(rows) == 10_000:
            yield rows
            rows = []
    if rows:
        yield rows


def test_cli_verify_with_jobs(any_db_url: str) -> None:
    """`audit verify --jobs 2 --json` over a chain long enough for workers: the sequential JSON, on success
    and on a break at the first event of a range; a dropped event at a cut is named as sequentially."""
    db = Database(any_db_url)
    db.migrate()
    for rows in big_chain(BIG):
        store(db, rows)
    duban = Duban(any_db_url)
    ok = duban.ok("audit", "verify", "--jobs", "2", "--json").json
    assert ok == duban.ok("audit", "verify", "--jobs", "1", "--json").json == duban.ok("audit", "verify", "--json").json
    assert (ok["ok"], ok["events"], ok["first_bad_seq"]) == (True, BIG, None)
    cut = ranges(BIG, 2)[1][0]
    assert cut is not None
    with db.write() as conn:
        edit_note(conn, cut)
    broken = duban("audit", "verify", "--jobs", "2", "--json")
    assert broken.code == 6
    assert broken.json == duban("audit", "verify", "--jobs", "1", "--json").json
    assert (broken.json["first_bad_seq"], broken.json["events"]) == (cut, cut - 1)
    text_out = duban("audit", "verify", "--jobs", "3")
    assert text_out.code == 6 and f"audit event {cut}: its content does not match its hash" in text_out.stderr
    restore_note = next(e for rows in big_chain(cut) for e in rows if e["seq"] == cut)["note"]
    with db.write() as conn:
        conn.execute(update(AUDIT).where(AUDIT.c.seq == cut).values(note=restore_note))
        drop(conn, cut - 1)
    gap = duban("audit", "verify", "--jobs", "2", "--json")
    assert gap.code == 6 and gap.json == duban("audit", "verify", "--jobs", "1", "--json").json
    assert gap.json["first_bad_seq"] == cut and f"where {cut - 1} was expected" in gap.json["reason"]
    assert duban("audit", "verify", "--jobs", "0").code == 2
    db.dispose()
