"""Several schedulers against one PostgreSQL database, killed nodes, racing people (SPEC §6.3, §9).

Every scheduler here is a real `duban scheduler run` process; time is pinned with
`--now`, and waiting for another process uses bounded polling, never a sleep for time
logic. A kill happens *inside* a firing transaction (scheduler_worker.py), which is the
moment a crash can do the most harm.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from duban.storage.database import Database
from tests.conftest import Duban
from tests.integration.scheduler_worker import (
    LATER,
    OPENED,
    RUNG_COUNT,
    assert_fired_exactly_once,
    assert_per_case_due_order,
    audit_verifies,
    collect_garbage,
    fire,
    fired_count,
    query,
    run_duban,
    scheduler_args,
    seed,
    spawn,
    timer_statuses,
    wait_for,
)

LEASE = 60


def pg_waiting_on_locks(url: str) -> int:
    """How many sessions of this test's database wait for a lock (a gate the test holds)."""
    name = url.rsplit("/", 1)[1]
    return int(query(url, "SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND wait_event_type = 'Lock'",
                     d=name)[0][0])


class TestManyNodes:
    def test_three_nodes_fire_10000_timers_exactly_once(self, pg_url: str, tmp_path: Path) -> None:
        """3 scheduler processes, 10,000 timers due at once (2,000 cases × 5 rungs): every timer fires
        exactly once, each case's ladder in due order, and the one audit chain verifies."""
        cases = 2000
        seed(pg_url, cases)
        assert timer_statuses(pg_url) == Counter(pending=cases * RUNG_COUNT)
        started = time.perf_counter()
        nodes = [spawn(scheduler_args(pg_url, LATER, f"node-{i}", "--batch", "200"), tmp_path, f"node-{i}")
                 for i in range(3)]
        codes = [n.wait(timeout=180) for n in nodes]
        wall = time.perf_counter() - started
        assert codes == [0, 0, 0], [n.stderr[-2000:] for n in nodes]
        assert timer_statuses(pg_url) == Counter(fired=cases * RUNG_COUNT)
        events = assert_fired_exactly_once(pg_url, cases * RUNG_COUNT)
        assert_per_case_due_order(events)
        per_node = {n: int(f) for n, f in query(pg_url, "SELECT node, fired_total FROM scheduler_nodes ORDER BY node")}
        assert sum(per_node.values()) == cases * RUNG_COUNT
        directory = query(pg_url, "SELECT count(*) FROM audit_events WHERE case_id IS NULL")[0][0]  # users, units
        assert audit_verifies(pg_url, tmp_path)["events"] == directory + cases + cases * RUNG_COUNT + cases  # open, rungs, expire
        print(f"\n10,000 timers, 3 nodes: {wall:.1f} s wall ({cases * RUNG_COUNT / wall:.0f} timers/s), per node {per_node}")

    def test_a_node_killed_mid_sweep_loses_nothing(self, pg_url: str, tmp_path: Path) -> None:
        """Of 3 nodes one is killed (-9) inside a firing transaction; the others fire everything else
        (and the dead node's claims on cases they reach in due order); what is left stays reserved until
        the lease runs out, then a later sweep fires it. Nothing lost, nothing fired twice."""
        cases = 200
        seed(pg_url, cases)
        victim = spawn(scheduler_args(pg_url, LATER, "victim", "--batch", "100", "--lease", str(LEASE)),
                       tmp_path, "victim", kill_at=30)
        # The others start once the victim holds a batch: started together, they could sweep all
        # before the victim's first claim, and it would never reach its 30th step to be killed there.
        deadline = time.monotonic() + 60
        while not query(pg_url, "SELECT 1 FROM timers WHERE claimed_by = 'victim' LIMIT 1") and victim.popen.poll() is None:
            assert time.monotonic() < deadline, "the victim never claimed a batch"
            time.sleep(0.02)
        others = [spawn(scheduler_args(pg_url, LATER, f"node-{i}", "--batch", "100"), tmp_path, f"node-{i}")
                  for i in range(2)]
        assert victim.wait(timeout=120) == -signal.SIGKILL
        assert [o.wait(timeout=120) for o in others] == [0, 0]
        statuses = timer_statuses(pg_url)
        # Left: the victim's claims on cases where no other node fired a later rung (which would have
        # fired them first, in due order); they wait for the lease.
        held = statuses["claimed"]
        assert statuses["pending"] == 0, statuses
        assert {r[0] for r in query(pg_url, "SELECT DISTINCT claimed_by FROM timers WHERE status = 'claimed'")} <= {"victim"}

        expired = LATER + timedelta(seconds=LEASE + 1)
        taker = run_duban(scheduler_args(pg_url, expired, "taker", "--json"), tmp_path, "taker")
        assert taker.popen.returncode == 0, taker.stderr
        assert json.loads(taker.stdout)["claimed"] == held
        assert timer_statuses(pg_url) == Counter(fired=cases * RUNG_COUNT)
        assert_per_case_due_order(assert_fired_exactly_once(pg_url, cases * RUNG_COUNT))
        audit_verifies(pg_url, tmp_path)


class TestPeopleAndNodes:
    def _reported_case(self, url: str) -> int:
        seed(url, 1)
        fire(url, 1, "accept", "fgj", OPENED + timedelta(hours=1))
        shown = fire(url, 1, "report", "fgj", OPENED + timedelta(hours=2))
        assert (shown["state"], shown["version"]) == ("reported", 3)
        return 3

    def test_two_people_at_the_same_moment_one_wins_the_other_exits_5(self, pg_url: str, tmp_path: Path) -> None:
        """`verify` and `reject` on one case, both read at version 3 before either writes (the test holds
        the case row until both wait on it): one commits, the other exits 5 and writes nothing."""
        version = self._reported_case(pg_url)
        gate = Database(pg_url)
        try:
            with gate.engine.begin() as conn:
                conn.exec_driver_sql("SELECT id FROM cases WHERE id = 1 FOR UPDATE")
                now = (OPENED + timedelta(hours=3)).isoformat()
                common = ["--db", pg_url, "--now", now, "--actor", "wang", "case", "fire", "1"]
                verify = spawn([*common, "verify", "--expect-version", str(version)], tmp_path, "verify")
                reject = spawn([*common, "reject", "--note", "材料不全", "--expect-version", str(version)],
                               tmp_path, "reject")
                wait_for(lambda: pg_waiting_on_locks(pg_url) == 2, what="both people to wait on the case row")
            codes = sorted([verify.wait(60), reject.wait(60)])
        finally:
            gate.dispose()
        assert codes == [0, 5], (verify.stderr[-2000:], reject.stderr[-2000:])
        loser = verify if verify.popen.returncode == 5 else reject
        assert "changed underneath" in loser.stderr
        events = query(pg_url, "SELECT trigger FROM audit_events WHERE case_id = 1 ORDER BY seq")
        assert [e[0] for e in events][-1] in ("verify", "reject")
        assert len(events) == 4  # open, accept, report, the winner
        assert query(pg_url, "SELECT version FROM cases WHERE id = 1")[0][0] == version + 1
        audit_verifies(pg_url, tmp_path)

    def test_a_person_and_a_scheduler_on_one_case(self, pg_url: str, tmp_path: Path) -> None:
        """A unit reports while the scheduler fires the same case's overdue ladder (both held at the case
        row until both wait): whichever goes first, every due timer fires once or is cancelled by the
        report, the person either succeeds or exits 5, and the chain verifies."""
        seed(pg_url, 1, accept_every=1)  # case 1 accepted: in_progress, its four due rungs pending
        gate = Database(pg_url)
        try:
            with gate.engine.begin() as conn:
                conn.exec_driver_sql("SELECT id FROM cases WHERE id = 1 FOR UPDATE")
                person = spawn(["--db", pg_url, "--now", LATER.isoformat(), "--actor", "fgj",
                                "case", "fire", "1", "report"], tmp_path, "person")
                wait_for(lambda: pg_waiting_on_locks(pg_url) == 1, what="the person to wait on the case row")
                node = spawn(scheduler_args(pg_url, LATER, "node"), tmp_path, "node")
                wait_for(lambda: pg_waiting_on_locks(pg_url) == 2, what="the scheduler to wait on the case row")
            person_code, node_code = person.wait(60), node.wait(60)
        finally:
            gate.dispose()
        assert node_code == 0, node.stderr[-3000:]
        assert person_code in (0, 5), person.stderr[-3000:]
        statuses = timer_statuses(pg_url)
        assert statuses["pending"] == statuses["claimed"] == 0
        assert_fired_exactly_once(pg_url, statuses["fired"])
        audit_verifies(pg_url, tmp_path)


class TestPostgresCommands:
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    def test_every_command_works_on_postgres(self, pg_url: str, tmp_path: Path) -> None:
        """init, users, open, fire, show, list, tick, notices, audit verify and export, scheduler status
        and run, all with --db postgresql+psycopg://…"""
        d = Duban(pg_url)
        assert d.ok("init", "--json").json["calendar_seeded"] is True
        assert d.ok("init", "--json").json["calendar_seeded"] is False
        d.ok("user", "add", "wang", "--role", "office")
        d.ok("user", "add", "fgj", "--role", "unit", "--unit", "区发改局")
        now = OPENED.isoformat()
        for title in ("建立政策问题台帐", "清理过期政策"):
            d.ok("case", "open", "supervision", "--title", title, "--unit", "区发改局", "--due", "5wd",
                 actor="wang", now=now)
        d.ok("case", "fire", "1", "accept", actor="fgj", now=now)
        assert d.ok("case", "show", "1", "--json").json["state"] == "in_progress"
        assert len(d.ok("case", "list", "--json").json) == 2
        tick = d.ok("tick", "--json", now=(OPENED + timedelta(days=3)).isoformat()).json
        assert tick["fired_timers"] == 1  # case 2's sign-for reminder
        status = d.ok("scheduler", "status", "--json", now=LATER.isoformat()).json
        assert status["due"] == 8 and status["late"] == 8 and status["nodes"] == []
        run = run_duban(scheduler_args(pg_url, LATER, "pg", "--json"), tmp_path, "run")
        assert run.popen.returncode == 0, run.stderr
        assert json.loads(run.stdout)["fired"] == 8
        assert d.ok("scheduler", "status", "--json", now=LATER.isoformat()).json["due"] == 0
        assert len(d.ok("notice", "list", "--json").json) > 0
        verified = d.ok("audit", "verify", "--json").json
        assert verified["ok"] is True
        out = tmp_path / "audit.jsonl"
        assert d.ok("audit", "export", "--format", "jsonl", "--out", str(out), "--json").json["rows"] == verified["events"]
        assert fired_count(pg_url) == 9
        collect_garbage()  # the in-process CLI's connection pools, inside this test


class TestSchema:
    def test_scheduler_table_matches_its_migration(self, any_db_url: str) -> None:
        """After `Database.migrate()`, alembic's autogenerate comparison finds nothing to change
        for scheduler_nodes (its table in duban.storage.tables and migration 0002 agree), on SQLite and PostgreSQL."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from duban.storage.tables import METADATA

        db = Database(any_db_url)
        try:
            db.migrate()
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), METADATA)
        finally:
            db.dispose()
        assert [d for d in diff if "scheduler_nodes" in repr(d)] == []
