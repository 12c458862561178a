"""`python -m bench reads`: what people read all day, at office scale (SPEC §11 "new" rows).

For each size (``DUBAN_BENCH_READ_SIZES``, default 10,000 and 100,000 cases; ten audit
events a case) and each database (``DUBAN_BENCH_READ_DBS``, default ``sqlite,postgresql``;
PostgreSQL when ``DUBAN_TEST_PG`` or the bench's server answers), an office is loaded with `bench.load`, then each read is timed against
its anchor — the same rows asked for by hand in SQL on the same database, in the same run:

- ``todo``: the first page (50) of one unit's to-do list (`duban.web.query.todo`, the board's
  我的待办), for the biggest unit; anchor: the same page by hand — its open cases in a state
  where it has a step (a lead-only step only on the cases it leads), nearest running deadline
  first (`cases.next_due_at` along its index, as duban asks it; the biggest unit's page is
  all of cases with a running deadline; each row's unit checked as it is read), 51 rows, and
  the 50's timers.
- ``overdue_unit``: the first page (50) of `case list --overdue --unit U --limit 50`
  (`App.list_cases`); anchor: the 50 rows with their timers, asked as duban asks (along `ix_cases_overdue_id`).
- ``ledger``: the board's 督办台账, first page, workflow and unit filters and a title search
  (`query.ledger` → `query.lines`, as the board's page, with its 共 N 件, counted up to
  `COUNT_CAP` + 1); anchor: the count (as far)
  and the 50 rows with their timers.
- ``case_page``: one case with its deadlines and timeline (`App.show` + `App.history`).
- ``report_units`` (a quarter) and ``report_bulletin`` (a month), through `Reviews`; anchor:
  the same counts by a GROUP BY. Also each report's peak RSS as a `duban report` process.
- ``http_todo``, ``http_case``: `GET /api/v1/todo` and `GET /api/v1/cases/{id}` against a
  real `duban serve` process (as `bench.http` starts it); anchors as ``todo`` and ``case_page``.

Each figure is the median of a few runs after one untimed run (a run over 5 s is not
repeated). ``ratio`` = anchor time / duban time (target ≥ 0.5); ``growth`` = duban's time at
the biggest size / at the smallest (target ≤ 2). ``DUBAN_BENCH_OFFICES`` names a folder
where the SQLite offices are kept between runs (and PostgreSQL databases are kept too).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import PG_ADMIN, TZ
from bench.load import NOW, load, unit_names
from bench.templates import OFFICE, unit_user
from duban.engine.ports import COUNT_CAP

REPEAT = 3
SLOW_S = 5.0
PAGE = 50
QUARTER = ("2026-07-01", "2026-09-30")
TITLE = "供暖"


def sizes() -> list[int]:
    return [int(s) for s in os.environ.get("DUBAN_BENCH_READ_SIZES", "10000,100000").split(",") if s.strip()]


def databases() -> list[str]:
    """`DUBAN_BENCH_READ_DBS` (default both): e.g. `sqlite` alone for a run at 1M cases."""
    return [s.strip() for s in os.environ.get("DUBAN_BENCH_READ_DBS", "sqlite,postgresql").split(",") if s.strip()]


def _median(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()  # untimed: caches, the OS's page cache (unless it is slow: then it is the one run)
    if time.perf_counter() - started > SLOW_S:
        return time.perf_counter() - started
    times: list[float] = []
    while len(times) < REPEAT:
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        if times[-1] > SLOW_S:
            break
    return statistics.median(times)


# -- anchors: the same rows by hand ------------------------------------------------------
def _sql(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cur = conn.connection.dbapi_connection.cursor()
    cur.execute(sql, params)
    rows: list[Any] = cur.fetchall()
    cur.close()
    return rows


def todo_pairs(app: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(workflow, state) where a unit has a step to take (not the always-available options):
    where any unit on the case has one, and where only the lead unit has."""
    from duban.engine.timeliness import lead_only
    from duban.web.scope import OPTIONAL

    anyone: set[tuple[str, str]] = set()
    lead: set[tuple[str, str]] = set()
    for wf in app.catalog.all():
        for t in wf.spec.transitions:
            if "unit" in t.roles and t.trigger not in OPTIONAL:
                for s in t.sources:
                    (lead if lead_only(wf, s, t.trigger) else anyone).add((wf.name, s))
    return sorted(anyone), sorted(lead - anyone)


def anchor_todo(conn: Any, unit: str, pairs: tuple[list[tuple[str, str]], list[tuple[str, str]]]) -> list[Any]:
    """The to-do's first page by hand: the same rows, the same order, 51 of them, the 50's timers."""
    anyone, lead = pairs
    either = " OR ".join("(c.workflow = ? AND c.state = ?)" for _ in anyone)
    only_lead = " OR ".join("(c.workflow = ? AND c.state = ?)" for _ in lead)
    hint = " INDEXED BY ix_cases_open_next_due_at" if conn.dialect.name == "sqlite" else ""  # as duban asks
    rows = _sql(conn, f"SELECT c.* FROM cases c{hint} WHERE c.closed_at IS NULL AND EXISTS (SELECT 1 FROM"
                      " case_units u WHERE u.case_id = c.id AND u.unit = ?) AND c.suspended = ?"
                      f" AND (({either}) OR (c.lead_unit = ? AND ({only_lead}))) AND c.next_due_at IS NOT NULL"
                      f" ORDER BY c.next_due_at, c.id LIMIT {PAGE + 1}",
                (unit, False, *[v for p in anyone for v in p], unit, *[v for p in lead for v in p]))
    return _with_timers(conn, rows[:PAGE])


def _with_timers(conn: Any, rows: list[Any]) -> list[Any]:
    ids = [r[0] for r in rows]
    if ids:
        _sql(conn, f"SELECT * FROM timers WHERE case_id IN ({', '.join('?' * len(ids))}) ORDER BY due_at, id", tuple(ids))
    return rows


def anchor_overdue(conn: Any, unit: str) -> list[Any]:
    """As duban asks it: along the overdue cases' index, each row's unit checked as it is read."""
    sqlite = conn.dialect.name == "sqlite"
    hint, overdue = (" INDEXED BY ix_cases_overdue_id", "c.overdue = 1") if sqlite else ("", "c.overdue")
    return _with_timers(conn, _sql(conn, f"SELECT c.* FROM cases c{hint} WHERE {overdue} AND EXISTS (SELECT 1 FROM"
                                         " case_units u WHERE u.case_id = c.id AND u.unit = ?) ORDER BY c.id LIMIT 50",
                                   (unit,)))


def anchor_ledger(conn: Any, unit: str) -> list[Any]:
    where = "workflow = ? AND id IN (SELECT case_id FROM case_units WHERE unit = ?) AND title LIKE ?"
    params = ("supervision", unit, f"%{TITLE}%")
    # the page's 共 N 件, as the board shows it: counted up to COUNT_CAP + 1 ("1,000 件以上")
    _sql(conn, f"SELECT COUNT(*) FROM (SELECT id FROM cases WHERE {where} LIMIT {COUNT_CAP + 1}) AS matching", params)
    return _with_timers(conn, _sql(conn, f"SELECT * FROM cases WHERE {where} ORDER BY id LIMIT 50", params))


def anchor_case(conn: Any, case_id: int) -> None:
    _sql(conn, "SELECT * FROM cases WHERE id = ?", (case_id,))
    _sql(conn, "SELECT * FROM timers WHERE case_id = ? ORDER BY due_at, id", (case_id,))
    _sql(conn, "SELECT * FROM audit_events WHERE case_id = ? ORDER BY seq", (case_id,))


# The reports' anchors count the period's cases (opened by its end, not closed before its
# start) and those cases' escalations and decisions before its end: the rows the report
# reads. Instants are UTC text in the stored form, so SQLite compares them as it stores them.
def _period(c: str = "") -> str:
    return f"{c}opened_at <= ? AND ({c}closed_at IS NULL OR {c}closed_at >= ?)"


def anchor_units(conn: Any, since: str, until: str) -> None:
    _sql(conn, "SELECT lead_unit, COUNT(*), SUM(CASE WHEN closed_at IS NOT NULL THEN 1 ELSE 0 END),"
               " SUM(CASE WHEN overdue = ? THEN 1 ELSE 0 END), SUM(escalation_level) FROM cases"
               f" WHERE {_period()} GROUP BY lead_unit", (True, until, since))
    _sql(conn, "SELECT c.lead_unit, e.action, COUNT(*) FROM audit_events e JOIN cases c ON c.id = e.case_id"
               " WHERE (e.action IN ('escalate', 'overtaken') OR e.\"trigger\" = 'hold_accountable') AND e.at < ?"
               f" AND {_period('c.')}"
               " GROUP BY c.lead_unit, e.action", (until, until, since))


def anchor_bulletin(conn: Any, since: str, until: str) -> None:
    _sql(conn, "SELECT workflow, SUM(CASE WHEN opened_at BETWEEN ? AND ? THEN 1 ELSE 0 END),"
               " SUM(CASE WHEN closed_at BETWEEN ? AND ? THEN 1 ELSE 0 END),"
               " SUM(CASE WHEN closed_at IS NULL AND overdue = ? THEN 1 ELSE 0 END) FROM cases"
               f" WHERE {_period()} GROUP BY workflow", (since, until, since, until, True, until, since))
    _sql(conn, "SELECT e.action, COUNT(*) FROM audit_events e JOIN cases c ON c.id = e.case_id"
               " WHERE e.at BETWEEN ? AND ? AND (e.action IN ('escalate', 'overtaken') OR e.\"trigger\" = 'hold_accountable')"
               f" AND {_period('c.')} GROUP BY e.action",
         (since, until, until, since))


# -- the office ------------------------------------------------------------------------
@contextmanager
def office(kind: str, n: int) -> Iterator[str | None]:
    """The URL of an office of n cases (loaded now, or kept from an earlier run)."""
    keep = os.environ.get("DUBAN_BENCH_OFFICES")
    if kind == "sqlite":
        folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="duban-office-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"office-{n}.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            load(url, n, 10 * n)
        try:
            yield url
        finally:
            if not keep:
                for p in folder.glob(f"office-{n}.db*"):
                    p.unlink()
                folder.rmdir()
        return
    from sqlalchemy import create_engine, text

    base = os.environ.get("DUBAN_TEST_PG", PG_ADMIN)
    name = f"{os.environ.get('DUBAN_BENCH_PG_PREFIX', 'duban_office')}_{n}"  # two runs side by side: two prefixes
    try:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not keep:
                c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
                exists = None
            if not exists:
                c.execute(text(f"CREATE DATABASE {name}"))
    except Exception:  # no server: PostgreSQL is reported as skipped
        yield None
        return
    url = base.rsplit("/", 1)[0] + f"/{name}"
    if not exists:
        load(url, n, 10 * n)
    try:
        yield url
    finally:
        if not keep:
            with admin.connect() as c:
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _report_rss(url: str, args: list[str]) -> float:
    """Peak RSS (MB) of a `duban report …` process on the office.

    The report is started by a small launcher process, which reads the report's peak from
    its own `wait4`: on Linux a process started straight from this one would count this
    process's own peak (a forked child starts with its parent's pages, and exec keeps the
    high-water mark), and this one has just held every case of the office."""
    launcher = ("import os, subprocess, sys\n"
                "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                "print(os.wait4(p.pid, 0)[2].ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "duban.cli", "--db", url, "--now",
                           NOW.isoformat(), "report", *args, "--json"], capture_output=True, text=True, check=True)
    return round(int(done.stdout.split()[-1]) / 1024, 1)


def measure(url: str) -> dict[str, Any]:
    from duban.access.service import Access, User
    from duban.clock import ManualClock
    from duban.reports.period import parse_period
    from duban.service.app import App
    from duban.service.reviews import Reviews
    from duban.storage.database import Database
    from duban.web import query

    app = App(Database(url), ManualClock(NOW), TZ)
    unit = unit_names(1)[0]  # the biggest unit (bench.load's Zipf-like draw)
    worker, office_user = User(unit_user(unit), "unit", unit), User(OFFICE, "office", None)
    pairs = todo_pairs(app)
    with app.db.read() as conn:
        case_id = int(_sql(conn, "SELECT case_id FROM audit_events WHERE case_id IS NOT NULL GROUP BY case_id ORDER BY COUNT(*) DESC, case_id LIMIT 1")[0][0])
    period = parse_period(*QUARTER, TZ)
    reviews = Reviews(app)
    filters = query.Filters(workflow="supervision", unit=unit, q=TITLE)

    def ledger() -> None:
        page, _, _ = query.ledger(app, office_user, filters, query.PAGE, None, count=True)
        query.lines(app, office_user, page, todo=False)

    def anchored(fn: Callable[[Any], object]) -> Callable[[], object]:
        def run() -> object:
            with app.db.read() as conn:
                return fn(conn)
        return run

    month = ("2026-10-31 16:00:00", "2026-11-30 15:59:59")  # November in Beijing, as UTC
    pairs_of: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "todo": (lambda: query.todo(app, worker), anchored(lambda c: anchor_todo(c, unit, pairs))),
        "overdue_unit": (lambda: app.list_cases(unit=unit, overdue=True, limit=PAGE),
                         anchored(lambda c: anchor_overdue(c, unit))),
        "ledger": (ledger, anchored(lambda c: anchor_ledger(c, unit))),
        "case_page": (lambda: (app.show(case_id), app.history(case_id)), anchored(lambda c: anchor_case(c, case_id))),
        "report_units": (lambda: reviews.units(period), anchored(lambda c: anchor_units(c, "2026-06-30 16:00:00",
                                                                                           "2026-09-30 16:00:00"))),
        "report_bulletin": (lambda: reviews.bulletin("month"), anchored(lambda c: anchor_bulletin(c, *month))),
    }
    out: dict[str, Any] = {}
    for name, (duban, anchor) in pairs_of.items():
        d, a = _median(duban), _median(anchor)
        out[name] = {"duban_s": round(d, 4), "anchor_s": round(a, 4), "ratio": round(a / d, 3)}
        print(f"  {name:<16} duban {d:8.3f} s  anchor {a:8.4f} s", file=sys.stderr)
    out["report_units"]["peak_rss_mb"] = _report_rss(url, ["units", "--since", QUARTER[0], "--until", QUARTER[1]])
    out["report_bulletin"]["peak_rss_mb"] = _report_rss(url, ["bulletin", "--period", "month"])
    access = Access(app)
    tokens = {u.name: access.create_token(u.name)["token"] for u in (worker, office_user)}
    app.db.dispose()
    out.update(_http(url, tokens[worker.name], tokens[office_user.name], case_id, out))
    return out


def _http(url: str, unit_token: str, office_token: str, case_id: int, local: dict[str, Any]) -> dict[str, Any]:
    from bench.http import Client, server

    found: dict[str, Any] = {}
    with server(url, NOW, tries=600) as (base, _pid):
        for name, token, path, anchor in (("http_todo", unit_token, "/api/v1/todo", "todo"),
                                          ("http_case", office_token, f"/api/v1/cases/{case_id}", "case_page")):
            client = Client(base, token)
            client.conn.timeout = 1800  # a case or a to-do page takes well under that; a slow run reports, not hangs
            try:
                d = _median(lambda: client.call("GET", path))  # noqa: B023 (called here, in this iteration)
            except Exception as exc:  # reported, and the other reads still run
                found[name] = {"failed": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            finally:
                client.close()
            a = local[anchor]["anchor_s"]
            found[name] = {"duban_s": round(d, 4), "anchor_s": a, "ratio": round(a / d, 3)}
            print(f"  {name:<16} duban {d:8.3f} s  anchor {a:8.4f} s", file=sys.stderr)
    return found


def bench_reads() -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for kind in databases():
        for n in sizes():
            print(f"reads: {kind}, {n:,} cases", file=sys.stderr)
            with office(kind, n) as url:
                if url is None:
                    runs[kind] = {"skipped": "no PostgreSQL server"}
                    break
                runs.setdefault(kind, {})[str(n)] = measure(url)
    for found in runs.values():
        if "skipped" in found or len(found) < 2:
            continue
        small, big = found[min(found, key=int)], found[max(found, key=int)]
        found["growth"] = {k: round(big[k]["duban_s"] / small[k]["duban_s"], 2) for k in small
                           if "duban_s" in small[k] and "duban_s" in big.get(k, {})}
    return {"sizes": sizes(), "events_per_case": 10, "runs": runs}


def table(results: dict[str, Any]) -> str:
    lines = ["| read | database | cases | duban | anchor (hand SQL) | ratio | growth | peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, found in results.get("runs", {}).items():
        if "skipped" in found:
            lines.append(f"| all | {kind} | | skipped: {found['skipped']} | | | | |")
            continue
        growth = found.get("growth", {})
        for n in sorted((k for k in found if k.isdigit()), key=int):
            for name, f in found[n].items():
                if "failed" in f:
                    lines.append(f"| {name} | {kind} | {int(n):,} | failed: {f['failed']} | | | | |")
                    continue
                g = f"{growth[name]:.1f}×" if n == max(found, key=lambda k: int(k) if k.isdigit() else -1) and name in growth else ""
                rss = f"{f['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in f else ""
                lines.append(f"| {name} | {kind} | {int(n):,} | {f['duban_s'] * 1000:,.1f} ms | "
                             f"{f['anchor_s'] * 1000:,.2f} ms | {f['ratio']:.3f} | {g} | {rss} |")
    return "\n".join(lines)


if __name__ == "__main__":
    found = bench_reads()
    print(table(found))
    print(json.dumps(found, indent=2, ensure_ascii=False))
