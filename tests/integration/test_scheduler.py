"""`duban scheduler run` and `status` as real processes, on SQLite and PostgreSQL (SPEC §6).

Catching up after downtime, stopping cleanly on SIGTERM, surviving kill -9 inside a
firing transaction, one scheduler per SQLite file, and what `status` shows. Time is
pinned with `--now`; waits for another process are bounded polls.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import Duban
from tests.integration.scheduler_worker import (
    LATER,
    OPENED,
    RUNG_COUNT,
    TZ,
    assert_fired_exactly_once,
    assert_per_case_due_order,
    audit_verifies,
    query,
    query_write,
    run_duban,
    scheduler_args,
    seed,
    spawn,
    timer_statuses,
    wait_for,
)

LEASE = 60
CASES = 20
TOTAL = CASES * RUNG_COUNT  # timers of CASES freshly opened supervision cases (100)
TOTAL_OF_TWO = 2 * RUNG_COUNT


def status(url: str, tmp: Path, now: str, *extra: str) -> dict[str, object]:
    proc = run_duban(["--db", url, "--now", now, "scheduler", "status", "--json", *extra], tmp, "status")
    assert proc.popen.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


class TestCatchUp:
    @pytest.mark.parametrize("sizes", [("--batch", "7", "--chunk", "3"), ("--batch", "500", "--chunk", "500")],
                             ids=["small-chunks", "one-chunk"])
    def test_down_for_40_days_fires_every_rung_once_in_due_order(self, any_db_url: str, tmp_path: Path,
                                                                 sizes: tuple[str, ...]) -> None:
        """Cases opened, then no scheduler for 40 days: the first sweep fires every rung of every running
        ladder exactly once, oldest first across all cases; a second sweep fires nothing. Whether each
        transaction holds three timers or all of them (every rung of a case in one chunk, where a
        case's later rung runs after its earlier ones changed it) makes no difference."""
        seed(any_db_url, 30, accept_every=3)  # 10 accepted (no sign-for rung), 20 still assigned
        proc = run_duban(scheduler_args(any_db_url, LATER, "solo", *sizes, "--json"), tmp_path, "solo")
        assert proc.popen.returncode == 0, proc.stderr
        expected = 20 * RUNG_COUNT + 10 * (RUNG_COUNT - 1)
        assert json.loads(proc.stdout)["fired"] == expected
        assert timer_statuses(any_db_url) == Counter(fired=expected, cancelled=10)  # sign-for of accepted cases
        events = assert_fired_exactly_once(any_db_url, expected)
        due_order = [e["timer_due_at"] for e in events]
        assert due_order == sorted(due_order)  # one node: globally oldest first
        per_case = Counter(e["case_id"] for e in events)
        assert sorted(per_case.values()) == [4] * 10 + [5] * 20
        states = query(any_db_url, "SELECT state, escalation_level, overdue FROM cases")
        assert set(states) == {("overdue", 4, True)}
        again = run_duban(scheduler_args(any_db_url, LATER, "solo", "--json"), tmp_path, "again")
        assert json.loads(again.stdout)["fired"] == 0
        audit_verifies(any_db_url, tmp_path)

    def test_status_shows_late_timers_then_the_sweep(self, sqlite_url: str, tmp_path: Path) -> None:
        """Before a sweep every due timer is late (due longer than the interval); after it, none is,
        and the node's last sweep is recorded."""
        seed(sqlite_url, 2)
        before = status(sqlite_url, tmp_path, LATER.isoformat())
        assert (before["pending"], before["due"], before["late"], before["nodes"]) == (10, 10, 10, [])
        oldest = before["oldest_late"][0]  # type: ignore[index]
        assert oldest["deadline"] == "sign_for" and oldest["late_seconds"] > 36 * 86400
        run_duban(scheduler_args(sqlite_url, LATER, "solo", "--interval", "30"), tmp_path, "solo")
        after = status(sqlite_url, tmp_path, (LATER + timedelta(seconds=5)).isoformat(), "--interval", "30")
        assert (after["pending"], after["due"], after["late"], after["interval_seconds"]) == (0, 0, 0, 30.0)
        [node] = after["nodes"]  # type: ignore[misc]
        assert node["node"] == "solo" and node["fired_total"] == 10 and node["since_last_sweep_seconds"] == 5.0
        assert node["last_sweep_at"] == LATER.isoformat() and node["stopped_at"] is not None


class TestStopping:
    def test_runs_until_sigterm_and_logs_json_lines(self, sqlite_url: str, tmp_path: Path) -> None:
        """`scheduler run` sweeps at once on start (catching up), idles until the next interval, and
        exits 0 on SIGTERM; its log is one JSON line per sweep and per fired timer, with the case id.
        Meanwhile a second scheduler on the same SQLite file is refused (exit 4)."""
        seed(sqlite_url, 2)
        run = spawn(["--db", sqlite_url, "--now", LATER.isoformat(), "scheduler", "run", "--interval", "3600",
                     "--node", "daemon"], tmp_path, "daemon")
        wait_for(lambda: bool(query(sqlite_url, "SELECT last_sweep_at FROM scheduler_nodes WHERE node = 'daemon' "
                                                "AND last_sweep_at IS NOT NULL")), what="the first sweep")
        second = run_duban(scheduler_args(sqlite_url, LATER, "second"), tmp_path, "second")
        assert second.popen.returncode == 4
        assert "already running" in second.stderr and "daemon" in second.stderr and "PostgreSQL" in second.stderr
        run.popen.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 0, run.stderr
        logs = run.logs()
        events = [line["event"] for line in logs]
        assert events[0] == "scheduler.started" and events[-1] == "scheduler.stopped"
        assert events.count("sweep.done") == 1 and events.count("timer.fired") == 2 * RUNG_COUNT
        fired = [line for line in logs if line["event"] == "timer.fired"]
        assert {line["case_id"] for line in fired} == {1, 2} and {line["node"] for line in fired} == {"daemon"}
        assert timer_statuses(sqlite_url) == Counter(fired=2 * RUNG_COUNT)
        after = run_duban(scheduler_args(sqlite_url, LATER, "second"), tmp_path, "after")  # the lock went with it
        assert after.popen.returncode == 0, after.stderr

    def test_sigterm_mid_sweep_finishes_the_timer_and_gives_back_the_batch(self, any_db_url: str,
                                                                           tmp_path: Path) -> None:
        """SIGTERM arriving at the 7th firing, inside the second chunk of 5 (one transaction): that chunk
        commits whole, the other 40 claimed timers of the batch are released at once (no lease to wait
        for), and the next sweep fires them."""
        seed(any_db_url, CASES)
        proc = spawn(scheduler_args(any_db_url, LATER, "a", "--batch", "50", "--chunk", "5", "--json"), tmp_path, "a",
                     term_at=7)
        assert proc.wait() == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert (result["fired"], result["released"], result["stopped"]) == (10, 40, True)
        assert timer_statuses(any_db_url) == Counter(fired=10, pending=TOTAL - 10)
        rest = run_duban(scheduler_args(any_db_url, LATER, "b", "--json"), tmp_path, "b")
        assert json.loads(rest.stdout)["fired"] == TOTAL - 10
        assert_fired_exactly_once(any_db_url, TOTAL)
        audit_verifies(any_db_url, tmp_path)


class TestKilled:
    def test_kill_9_mid_sweep_then_restart_recovers_its_claims(self, any_db_url: str, tmp_path: Path) -> None:
        """kill -9 at the 20th firing, inside the third chunk of 8 (timers 17-24, one transaction): the two
        chunks before it (16 timers) committed, that whole chunk rolled back, the rest of the batch still
        claimed. The same node restarted takes its own claims back at once and fires everything once."""
        seed(any_db_url, CASES)
        killed = spawn(scheduler_args(any_db_url, LATER, "a", "--batch", "50", "--chunk", "8"), tmp_path, "killed",
                       kill_at=20)
        assert killed.wait() == -signal.SIGKILL
        assert timer_statuses(any_db_url) == Counter(fired=16, claimed=34, pending=TOTAL - 50)
        restarted = run_duban(scheduler_args(any_db_url, LATER, "a", "--json"), tmp_path, "restarted")
        assert restarted.popen.returncode == 0, restarted.stderr
        assert json.loads(restarted.stdout)["fired"] == TOTAL - 16
        assert [line["recovered_claims"] for line in restarted.logs() if line["event"] == "scheduler.started"] == [34]
        assert_per_case_due_order(assert_fired_exactly_once(any_db_url, TOTAL))
        audit_verifies(any_db_url, tmp_path)

    def test_another_node_takes_over_once_the_lease_expires(self, any_db_url: str, tmp_path: Path) -> None:
        """A node killed (-9) while firing sign-for reminders keeps its claims while their lease runs:
        another node at the same instant leaves them (status shows them held and late); a node sweeping
        after the lease fires them, once, and a later catch-up completes every ladder."""
        seed(any_db_url, CASES)
        early = OPENED + timedelta(days=3)  # only the 20 sign-for rungs are due (one per case)
        killed = spawn(scheduler_args(any_db_url, early, "a", "--lease", str(LEASE), "--chunk", "3"), tmp_path, "killed",
                       kill_at=10)  # chunks of 3: nine fired, the chunk of the 10th rolled back
        assert killed.wait() == -signal.SIGKILL
        assert timer_statuses(any_db_url) == Counter(fired=9, claimed=11, pending=TOTAL - 20)
        other = run_duban(scheduler_args(any_db_url, early, "b", "--json"), tmp_path, "b")
        assert json.loads(other.stdout)["fired"] == 0

        held = status(any_db_url, tmp_path, (early + timedelta(seconds=30)).isoformat())
        assert held["late"] == 11 and held["claims"] == [
            {"node": "a", "timers": 11, "lease_until": (early + timedelta(seconds=LEASE)).isoformat(), "expired": False}]
        text = run_duban(["--db", any_db_url, "--now", early.isoformat(), "scheduler", "status"], tmp_path, "text").stdout
        assert "迟滞 11" in text and "a：11 个计时器" in text and "b（" in text and "签收时限 · 催签" in text

        taker = run_duban(scheduler_args(any_db_url, early + timedelta(seconds=LEASE + 1), "b", "--json"), tmp_path, "taker")
        assert json.loads(taker.stdout)["fired"] == 11
        assert timer_statuses(any_db_url) == Counter(fired=20, pending=TOTAL - 20)
        rest = run_duban(scheduler_args(any_db_url, LATER, "b", "--json"), tmp_path, "rest")
        assert json.loads(rest.stdout)["fired"] == TOTAL - 20
        assert_per_case_due_order(assert_fired_exactly_once(any_db_url, TOTAL))
        audit_verifies(any_db_url, tmp_path)

    def test_a_later_timer_of_the_case_fires_a_dead_nodes_claim_first(self, any_db_url: str, tmp_path: Path) -> None:
        """Due order beats the lease: when another node fires a later rung of a case whose earlier rung a
        dead node still holds, it fires that earlier rung first, in the same transaction."""
        seed(any_db_url, CASES)
        killed = spawn(scheduler_args(any_db_url, LATER, "a", "--batch", "50", "--chunk", "1"), tmp_path, "killed",
                       kill_at=20)
        assert killed.wait() == -signal.SIGKILL
        assert timer_statuses(any_db_url) == Counter(fired=19, claimed=31, pending=TOTAL - 50)
        other = run_duban(scheduler_args(any_db_url, LATER, "b", "--json"), tmp_path, "b")
        assert json.loads(other.stdout)["fired"] == TOTAL - 19
        taken = [line for line in other.logs() if line["event"] == "timer.fired" and line["taken_over"]]
        assert len(taken) == 31
        assert timer_statuses(any_db_url) == Counter(fired=TOTAL)
        assert_per_case_due_order(assert_fired_exactly_once(any_db_url, TOTAL))
        audit_verifies(any_db_url, tmp_path)


class TestFailures:
    def test_a_timer_that_cannot_fire_does_not_stop_the_others(self, sqlite_url: str, tmp_path: Path) -> None:
        """Case 1 points at a workflow version that is not in the database: its timers fail and show as
        late, case 2's fire, `run --once` exits 1 saying so; the stopped node holds no claims."""
        seed(sqlite_url, 2)
        query_write(sqlite_url, "UPDATE cases SET workflow_version = 99 WHERE id = 1")
        run = run_duban(scheduler_args(sqlite_url, LATER, "a", "--json"), tmp_path, "a")
        assert run.popen.returncode == 1
        assert "5 timer(s) failed" in run.stderr
        result = json.loads(run.stdout)
        assert (result["fired"], result["failed"]) == (RUNG_COUNT, RUNG_COUNT)
        failures = [line for line in run.logs() if line["event"] == "timer.failed"]
        assert {f["case_id"] for f in failures} == {1} and "v99" in failures[0]["reason"]
        assert timer_statuses(sqlite_url) == Counter(fired=RUNG_COUNT, pending=RUNG_COUNT)
        late = status(sqlite_url, tmp_path, LATER.isoformat())
        assert late["late"] == RUNG_COUNT and {t["case_id"] for t in late["oldest_late"]} == {1}  # type: ignore[union-attr]


class TestRetries:
    @pytest.mark.parametrize("conflict", ["version", "deadlock"])
    def test_a_conflicting_firing_is_read_again_and_retried(self, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                                            conflict: str) -> None:
        """A chunk that meets a version clash (a person changed a case) or a PostgreSQL deadlock is rolled
        back whole and its timers fired again one per transaction; a single firing that meets one is
        retried with the case read again, instead of failing the timer or the sweep."""
        from duban.clock import ManualClock
        from duban.commands import daemon as scheduler
        from duban.errors import ConcurrencyError, StorageError
        from duban.service import timers
        from duban.service.app import App
        from duban.storage.database import Database

        class Deadlock(Exception):
            sqlstate = "40P01"

        def clash() -> Exception:
            if conflict == "version":
                return ConcurrencyError("case 1 changed underneath")
            error = StorageError("deadlock detected")
            error.__cause__ = type("DBAPIError", (Exception,), {"orig": Deadlock()})()
            return error

        seed(sqlite_url, 1)
        real, calls = timers.fire_chunk, []

        def flaky(*args: object) -> list[list[timers.Fired]]:
            calls.append(len(args[2]))  # type: ignore[arg-type]
            if len(calls) <= 2:  # the chunk, then the first timer on its own
                raise clash()
            return real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(timers, "fire_chunk", flaky)
        db = Database(sqlite_url)
        try:
            node = scheduler.Scheduler(App(db, ManualClock(LATER), TZ),
                                       scheduler.Config(node="n", interval=10, batch=10, chunk=10, lease=LEASE))
            node.start()
            result = node.sweep()
        finally:
            db.dispose()
        assert calls == [RUNG_COUNT] + [1] * (RUNG_COUNT + 1)  # one chunk, then each timer alone, the first twice
        assert (result.fired, result.failed) == (RUNG_COUNT, 0)
        assert_fired_exactly_once(sqlite_url, RUNG_COUNT)


class TestDaemonSweeps:
    def test_a_daemon_sweep_keeps_no_lines_a_one_off_sweep_lists_them(self, sqlite_url: str) -> None:
        """The daemon's sweeps (`keep_lines=False`) fire as a one-off sweep does but keep no list of
        what fired (a catch-up may fire millions); `--once` and `tick` get the list they print."""
        from duban.clock import ManualClock
        from duban.commands.daemon import Config, Scheduler
        from duban.service.app import App
        from duban.storage.database import Database

        seed(sqlite_url, 2)
        db = Database(sqlite_url)
        try:
            clock = ManualClock(OPENED + timedelta(days=3))  # the two sign-for rungs only
            node = Scheduler(App(db, clock, TZ), Config(node="d", interval=10, batch=10, chunk=10, lease=LEASE))
            daemon = node.sweep(keep_lines=False)
            clock.set(LATER)
            once = node.sweep()
        finally:
            db.dispose()
        assert (daemon.fired, daemon.lines) == (2, [])
        assert once.fired == TOTAL_OF_TWO - 2 and len(once.lines) >= once.fired
        assert_fired_exactly_once(sqlite_url, TOTAL_OF_TWO)


class TestCommandLine:
    @pytest.mark.parametrize(("option", "value"), [("--interval", "0"), ("--batch", "0"), ("--lease", "-1")])
    def test_bad_option_is_a_usage_error(self, duban: Duban, option: str, value: str) -> None:
        run = duban("scheduler", "run", "--once", option, value)
        assert run.code == 2 and option in run.stderr

    def test_status_of_an_uninitialised_database_says_run_init(self, sqlite_url: str) -> None:
        run = Duban(sqlite_url)("scheduler", "status")
        assert run.code == 1 and "duban init" in run.stderr


def seed_guarded(url: str, folder: Path) -> None:
    """Case 1 under an office's own workflow whose 超期 step (the red-card rung's `expire`) needs a
    measure that a timer cannot give, so the engine refuses that rung; case 2 a plain supervision case."""
    import yaml

    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database
    from duban.workflows import SHIPPED_DIR, Catalog

    raw = yaml.safe_load((SHIPPED_DIR / "supervision.yaml").read_text(encoding="utf-8"))
    raw["name"] = "guarded"
    [expire] = [t for t in raw["transitions"] if t["trigger"] == "expire"]
    expire["guards"] = ["measure_required"]
    folder.mkdir()
    (folder / "guarded.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    db = Database(url)
    try:
        app = App(db, ManualClock(OPENED), TZ, Catalog([SHIPPED_DIR, folder]))
        app.init()
        app.add_user("wang", "office", None)
        app.add_unit("区发改局")
        for workflow in ("guarded", "supervision"):
            app.open_case(workflow, title=f"{workflow}事项", lead_unit="区发改局", co_units=[], due="2026-03-20",
                          values={}, actor="wang")
    finally:
        db.dispose()


class TestRefusals:
    @pytest.mark.parametrize("sizes", [("--chunk", "1"), ("--batch", "500", "--chunk", "500")],
                             ids=["one-by-one", "one-chunk"])
    def test_a_rung_the_engine_refuses_is_audited_and_done(self, any_db_url: str, tmp_path: Path,
                                                           sizes: tuple[str, ...]) -> None:
        """The red-card rung of a case whose 超期 step needs a measure meets the engine's refusal: the
        sweep records it on the case's chain (`timer_refused`, with the deadline, rung and the
        refusal), marks the timer done and goes on — the case's later rungs and the other case fire,
        `run --once` exits 0, nothing is left claimed or retried, and the chain and the state tables
        still verify. Alone in its transaction or amid the case's other rungs in one makes no difference."""
        seed_guarded(any_db_url, tmp_path / "workflows")
        run = run_duban(scheduler_args(any_db_url, LATER, "a", *sizes, "--json"), tmp_path, "a")
        assert run.popen.returncode == 0, run.stderr
        result = json.loads(run.stdout)
        assert (result["fired"], result["refused"], result["failed"]) == (TOTAL_OF_TWO - 1, 1, 0)
        assert any("红牌超期 未能执行" in line and "measure" in line for line in result["lines"])
        [logged] = [line for line in run.logs() if line["event"] == "timer.refused"]
        assert (logged["case_id"], logged["deadline"], logged["rung"]) == (1, "due", 1)
        assert timer_statuses(any_db_url) == Counter(fired=TOTAL_OF_TWO)  # none pending, none claimed

        history = json.loads(run_duban(["--db", any_db_url, "case", "history", "1", "--json"], tmp_path, "history").stdout)
        [refused] = [e for e in history if e["action"] == "timer_refused"]
        assert (refused["action_label"], refused["actor"], refused["role"]) == ("计时器未执行", "system", "system")
        assert (refused["data"]["deadline"], refused["data"]["rung"], refused["data"]["trigger"]) == ("due", 1, "expire")
        assert refused["data"]["error"] == "GuardRejectedError" and "measure" in refused["data"]["refusal"]
        assert refused["from_state"] == refused["to_state"] == "assigned"
        rungs = [(e["data"]["deadline"], e["data"]["rung"]) for e in history if e["action"] in ("escalate", "overtaken")]
        assert ("due", 1) not in rungs and ("due", 2) in rungs  # the refused rung changed nothing; the next one fired
        states = query(any_db_url, "SELECT id, state FROM cases ORDER BY id")
        assert [tuple(r) for r in states] == [(1, "assigned"), (2, "overdue")]

        again = run_duban(scheduler_args(any_db_url, LATER, "a", "--json"), tmp_path, "again")
        assert (json.loads(again.stdout)["fired"], json.loads(again.stdout)["refused"]) == (0, 0)  # not retried
        verify = run_duban(["--db", any_db_url, "audit", "verify", "--state", "--json"], tmp_path, "verify")
        assert verify.popen.returncode == 0, verify.stdout + verify.stderr
        checked = json.loads(verify.stdout)
        assert checked["ok"] is True and checked["state"]["ok"] is True
