"""`python -m bench load --cases N --events M [--db URL]`: a realistic office, fast.

The office: `--units` units (a few big, many small: case counts follow a Zipf-like law),
one liaison per unit, an office user, a leader and an inspector, all made through `App`
(the directory writes its own audit events). Its cases are copies of the template cases
of `bench.templates` — real cases of the five workflows, walked by the real engine into
every state it reaches — each copy with its own id, title, lead unit and co-unit, its
instants moved back by whole days (a closed case up to two years, an open one only as far
as its next pending timer allows, so nothing falls due that the sweep has not fired) and
its audit events appended to the one chain.

The chain is computed with the product's own `duban.engine.audit.event_hash`, so
`duban audit verify` passes on the result; every value goes through the columns' own
SQLAlchemy type processors, so the rows are those duban would have written. Rows are
written in batches: `executemany` on SQLite, `COPY` (psycopg 3 `cursor.copy`) on
PostgreSQL. A template is chosen for each case so that the events average `--events`/`--cases`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Table, create_engine, insert, select, text

from bench.templates import INSPECTOR, LEADER, OFFICE, TEMPLATE_CO, TEMPLATE_LEAD, Template, build, unit_user
from duban.engine.audit import GENESIS, event_hash
from duban.storage.tables import AUDIT, CASE_UNITS, CASES, NOTICES, TIMERS, WORKFLOW_VERSIONS

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in the office: what `bench reads` pins the clock to
BATCH = 5000  # cases a transaction
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?\+00:00")
TOPICS = ("供暖", "老旧小区改造", "垃圾分类", "营商环境", "政务服务", "道路积水", "噪声扰民", "物业管理", "停车难",
          "农民工工资", "食品安全", "校外培训", "医保报销", "户籍办理", "不动产登记", "占道经营", "燃气安全",
          "电梯维保", "违章建筑", "河道整治", "扬尘治理", "公交线路", "路灯维修", "供水水压", "养老服务")
KINDS = ("问题整改", "群众投诉", "领导批示件", "会议议定事项", "建议提案", "舆情回应", "专项督查")
BUREAUS = ("发改", "教育", "科技", "工信", "公安", "民政", "司法", "财政", "人社", "自然资源", "生态环境", "住建",
           "交通", "水务", "农业农村", "商务", "文旅", "卫健", "应急", "审计", "市场监管", "统计", "医保", "城管",
           "信访", "政务服务", "国资", "林业", "体育", "退役军人")


def unit_names(n: int) -> list[str]:
    """`n` plausible unit names: 区发改局 … then 某某街道办事处 numbered."""
    names = [f"区{b}局" for b in BUREAUS][:n]
    names += [f"第{i}街道办事处" for i in range(1, n - len(names) + 1)]
    return names


def _processors(conn: Connection, table: Table, names: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    d = conn.dialect
    found: list[Callable[[Any], Any] | None] = [table.c[n].type.dialect_impl(d).bind_processor(d) for n in names]
    if d.name == "postgresql":  # psycopg's JSON processor wraps the value (Json) for a parameter: COPY takes its text
        found = [_unwrapped(p) if p is not None and isinstance(table.c[n].type, JSON) else p
                 for p, n in zip(found, names, strict=True)]
    return found


def _unwrapped(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def text_of(value: Any) -> Any:
        wrapped = process(value)
        dumps = getattr(wrapped, "dumps", None) or json.dumps
        return dumps(wrapped.obj) if hasattr(wrapped, "obj") else wrapped

    return text_of


class Bound(str):
    """A value already through its column's bind processor (a template's unchanged JSON)."""


class Writer:
    """Rows to one table, bound by the columns' processors, sent a batch at a time."""

    def __init__(self, conn: Connection, table: Table, names: Sequence[str]) -> None:
        self.conn, self.table, self.names = conn, table, tuple(names)
        self.procs = _processors(conn, table, names)
        self.rows: list[list[Any]] = []
        self.count = 0

    def add(self, values: Sequence[Any]) -> None:
        self.rows.append([v if p is None or v is None or type(v) is Bound else p(v)
                          for p, v in zip(self.procs, values, strict=True)])

    def bound(self, name: str, value: Any) -> Bound:
        p = self.procs[self.names.index(name)]
        return Bound(p(value) if p is not None else value)

    def flush(self) -> None:
        if not self.rows:
            return
        cols = ", ".join(f'"{n}"' for n in self.names)
        raw: Any = self.conn.connection.dbapi_connection
        if self.conn.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {self.table.name} ({cols}) FROM STDIN") as copy:
                for row in self.rows:
                    copy.write_row(row)
        else:
            cur = raw.cursor()
            cur.executemany(f"INSERT INTO {self.table.name} ({cols}) VALUES ({', '.join('?' * len(self.names))})",
                            self.rows)
            cur.close()
        self.count += len(self.rows)
        self.rows = []


class Copier:
    """One template, ready to be copied many times: its JSON as text, and what in it changes."""

    def __init__(self, t: Template) -> None:
        self.t = t
        self.title = t.case["title"]
        # The latest instant a copy may be moved back to: no pending timer may fall due.
        pending = [x["due_at"] for x in t.timers if x["status"] == "pending"]
        if t.closed:
            self.max_days = 730
        elif pending:
            self.max_days = max(0, min(30, (min(pending) - NOW).days - 1))
        else:
            self.max_days = 0
        self.deadlines = json.dumps(t.case["deadlines"], ensure_ascii=False)
        self.case_data = json.dumps(t.case["data"], ensure_ascii=False)
        self.event_data = [json.dumps(e["data"], ensure_ascii=False) for e in t.events]

    def prebind(self, audit: Writer) -> None:
        self.bound_data = [audit.bound("data", e["data"]) for e in self.t.events]

    def subs(self, s: str, title: str, lead: str, co: str, shift: timedelta) -> str:
        s = s.replace(self.title, title).replace(TEMPLATE_LEAD, lead).replace(TEMPLATE_CO, co)
        if shift:
            s = _INSTANT.sub(lambda m: (datetime.fromisoformat(m.group(0)) - shift).isoformat(), s)
        return s

    def json(self, original: Any, dumped: str, title: str, lead: str, co: str, shift: timedelta) -> Any:
        if not original:
            return original
        changed = self.subs(dumped, title, lead, co, shift)
        return original if changed == dumped else json.loads(changed)


def _pick(copiers: list[Copier], n: int, mean: float, rnd: random.Random) -> Iterator[Copier]:
    """Templates for n cases so that their events average `mean` (as near as the templates allow)."""
    rich = [c for c in copiers if len(c.t.events) > mean] or copiers
    poor = [c for c in copiers if len(c.t.events) <= mean] or copiers
    total = 0
    for k in range(n):
        c = rnd.choice(rich if mean * (k + 1) > total else poor)
        total += len(c.t.events)
        yield c


def _setup(url: str, units: list[str]) -> None:
    from bench.common import TZ
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    app = App(Database(url), ManualClock(NOW - timedelta(days=800)), TZ)
    app.init()
    for u in units:
        app.add_unit(u, via="bench")
        app.add_user(unit_user(u), "unit", u, via="bench")
    for name, role in ((OFFICE, "office"), (LEADER, "leader"), (INSPECTOR, "inspector")):
        app.add_user(name, role, None, via="bench")
    app.db.dispose()


def load(url: str, cases: int, events: int, units: int = 100, seed: int = 16) -> dict[str, Any]:
    rnd = random.Random(seed)
    started = time.perf_counter()
    names = unit_names(units)
    _setup(url, names)
    with tempfile.TemporaryDirectory() as tmp:
        templates, pinned = build(Path(tmp), NOW)
    built = time.perf_counter()
    copiers = [Copier(t) for t in templates]
    weights = [1 / (i + 1) ** 0.8 for i in range(units)]
    plan = []
    for c in _pick(copiers, cases, events / cases, rnd):
        lead = rnd.choices(names, weights)[0]
        co = rnd.choice([u for u in rnd.sample(names, 2) if u != lead])
        plan.append((rnd.randint(0, c.max_days) if c.max_days else 0, c, lead, co))
    plan.sort(key=lambda p: -p[0])  # oldest first: ids and the chain follow the order cases were opened
    engine = create_engine(url)
    states: Counter[tuple[str, str]] = Counter()
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous = OFF")  # a bulk load: a crash means load again
        have = {(r.name, r.version) for r in conn.execute(select(WORKFLOW_VERSIONS.c.name, WORKFLOW_VERSIONS.c.version))}
        rows = [p for p in pinned if (p["name"], p["version"]) not in have]
        if rows:
            conn.execute(insert(WORKFLOW_VERSIONS), rows)
        head = conn.execute(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)).first()
        first_id = (conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM cases")).scalar_one() or 0) + 1
        conn.commit()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        case_cols = [c.name for c in CASES.columns]
        timer_cols = [c.name for c in TIMERS.columns if c.name != "id"]
        notice_cols = [c.name for c in NOTICES.columns if c.name != "id"]
        audit_cols = [c.name for c in AUDIT.columns]
        w_cases, w_units = Writer(conn, CASES, case_cols), Writer(conn, CASE_UNITS, ["case_id", "unit", "is_lead"])
        w_timers, w_notices = Writer(conn, TIMERS, timer_cols), Writer(conn, NOTICES, notice_cols)
        w_audit = Writer(conn, AUDIT, audit_cols)
        writers = (w_cases, w_units, w_timers, w_notices, w_audit)
        for c in copiers:
            c.prebind(w_audit)
        for k, (days, c, lead, co_name) in enumerate(plan):
            case_id, t, shift = first_id + k, c.t, timedelta(days=days)
            title = f"关于{rnd.choice(TOPICS)}的{rnd.choice(KINDS)}（第{case_id}号）"
            co = co_name if t.case["co_units"] else ""
            row = dict(t.case)
            row.update(id=case_id, title=title, lead_unit=lead, co_units=[co] if co else [],
                       deadlines=c.json(t.case["deadlines"], c.deadlines, title, lead, co, shift),
                       data=c.json(t.case["data"], c.case_data, title, lead, co, shift))
            for key in ("opened_at", "due_at", "closed_at", "updated_at", "next_due_at"):
                if row[key] is not None:
                    row[key] -= shift
            w_cases.add([row[n] for n in case_cols])
            states[(row["workflow"], row["state"])] += 1
            w_units.add((case_id, lead, True))
            if co:
                w_units.add((case_id, co, False))
            for x in t.timers:
                w_timers.add([case_id if n == "case_id" else (x[n] - shift if n in ("due_at", "lease_until", "fired_at")
                              and x[n] is not None else x[n]) for n in timer_cols])
            for x in t.notices:
                w_notices.add((case_id, x["created_at"] - shift, x["kind"],
                               x["recipient"].replace(TEMPLATE_LEAD, lead).replace(TEMPLATE_CO, co),
                               x["level"], c.subs(x["title"], title, lead, co, timedelta(0))))
            for e, dumped, bound in zip(t.events, c.event_data, c.bound_data, strict=True):
                seq += 1
                record = {"seq": seq, "case_id": case_id, "at": e["at"] - shift,
                          "actor": e["actor"].replace(TEMPLATE_LEAD, lead).replace(TEMPLATE_CO, co),
                          "role": e["role"], "action": e["action"], "trigger": e["trigger"],
                          "from_state": e["from_state"], "to_state": e["to_state"], "note": e["note"],
                          "data": c.json(e["data"], dumped, title, lead, co, shift), "prev_hash": prev}
                record["hash"] = prev = event_hash(record)
                if record["data"] is e["data"]:
                    record["data"] = bound
                w_audit.add([record[n] for n in audit_cols])
            if (k + 1) % BATCH == 0 or k + 1 == len(plan):
                for w in writers:
                    w.flush()
                conn.connection.commit()  # the rows went to the driver's cursor: commit there
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT MAX(id) FROM cases))"))
            conn.commit()
            # what autovacuum does soon after a load this size: statistics, and the visibility map
            # without which an index-only scan reads every row's page (a unit's case_units: 28× slower)
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    done = time.perf_counter()
    return {"cases": w_cases.count, "events": w_audit.count, "timers": w_timers.count, "notices": w_notices.count,
            "units": units, "templates": len(templates), "states": {f"{w}.{s}": n for (w, s), n in sorted(states.items())},
            "templates_s": round(built - started, 1), "load_s": round(done - built, 1),
            "cases_per_s": int(w_cases.count / max(done - built, 1e-9)),
            "events_per_s": int(w_audit.count / max(done - built, 1e-9))}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=None, help="audit events in all (default: 10 a case)")
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--db", default="sqlite:///bench-office.db")
    parser.add_argument("--verify", action="store_true", help="then run `audit verify` on the result")
    args = parser.parse_args(argv)
    from duban.logconfig import configure

    configure()
    stats = load(args.db, args.cases, args.events or 10 * args.cases, args.units)
    if args.verify:
        stats.update(verify(args.db))
    print(json.dumps(stats, ensure_ascii=False, indent=2))


def verify(url: str) -> dict[str, Any]:
    from bench.common import TZ
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    app = App(Database(url), ManualClock(NOW), TZ)
    started = time.perf_counter()
    count, _head, broken = app.verify()
    app.db.dispose()
    return {"verified_events": count, "chain_ok": broken is None, "verify_s": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    main(sys.argv[1:])
