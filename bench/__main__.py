"""Benchmarks: `python -m bench all` (`--quick` for a smoke run under a minute).

Each figure is measured in the same run as its anchor (the raw database, or the bare
interpreter, doing the same work) and reported as a ratio, so it holds on a noisy machine.
Never run by the tests as a timed assert (one smoke test runs `--quick --scale` tiny).

Sections: transition (SQLite, PostgreSQL), sweep, audit (CSV/JSONL export, verify), notify (delivery),
startup, memory, http (a `duban serve` process vs in-process, 16 clients). Prints a table and writes JSON (``--out``).

Two commands stand apart (not part of ``all``: each takes minutes at office scale):
``python -m bench load --cases N --events M [--db URL]`` builds a realistic office
(`bench.load`), and ``python -m bench reads [--out FILE]`` times what people read in
offices of two sizes, each read against the same query by hand in SQL (`bench.reads`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTIONS = ("transition", "transition_postgres", "sweep", "audit", "startup", "memory", "notify", "http")


def sizes(quick: bool, scale: float) -> dict[str, Any]:
    def s(n: int, least: int = 10) -> int:
        return max(least, int(n * scale))

    if quick:
        return {"transition": s(300), "transition_postgres": s(200), "sweep_due": s(1000, 20),
                "sweep_pending": [s(10_000, 200), s(100_000, 2000)], "audit": s(50_000, 1000), "startup_runs": 3,
                "memory": s(2000), "notify": s(500), "http_reads": s(2000, 48), "http_fires": s(400, 32)}
    return {"transition": s(3000), "transition_postgres": s(1000), "sweep_due": s(10_000, 20),
            "sweep_pending": [s(100_000, 200), s(1_000_000, 2000)], "audit": s(1_000_000, 1000), "startup_runs": 7,
            "memory": s(10_000), "notify": s(2000), "http_reads": s(10_000, 48), "http_fires": s(2000, 32)}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
                            "platform": platform.platform()}
    try:
        import psycopg

        from bench.common import PG_ADMIN

        with psycopg.connect(PG_ADMIN.replace("postgresql+psycopg", "postgresql"), connect_timeout=3) as c:
            row = c.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    except Exception as exc:
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    return info


def runners(n: dict[str, Any]) -> dict[str, Callable[[], dict[str, Any]]]:
    from bench.audit import bench_audit
    from bench.http import bench_http
    from bench.memory import bench_memory
    from bench.notify import bench_notify
    from bench.startup import bench_startup
    from bench.sweep import bench_sweep
    from bench.transition import bench_postgres, bench_sqlite

    return {
        "transition": lambda: bench_sqlite(n["transition"]),
        "transition_postgres": lambda: bench_postgres(n["transition_postgres"]),
        "sweep": lambda: bench_sweep(n["sweep_due"], n["sweep_pending"]),
        "audit": lambda: bench_audit(n["audit"]),
        "startup": lambda: bench_startup(n["startup_runs"]),
        "memory": lambda: bench_memory(n["memory"]),
        "notify": lambda: bench_notify(n["notify"]),
        "http": lambda: bench_http(n["http_reads"], n["http_fires"]),
    }


def table(results: dict[str, Any]) -> str:
    """The rows docs/performance.md shows: figure, duban, anchor, ratio, target."""
    lines = ["| figure | duban | anchor | ratio | target |", "|---|---|---|---|---|"]
    for key, name, raw in (("transition", "SQLite", "sqlite3"), ("transition_postgres", "PostgreSQL", "psycopg")):
        t = results.get(key, {})
        if "ratio" in t:
            anchor = f"raw {raw} {t[f'raw_{raw}_tx_per_s']:,} tx/s"
            lines.append(f"| transition, {name} ({t['cases']} cases) | {t['duban_tx_per_s']:,} tx/s | "
                         f"{anchor} | {t['ratio']:.2f} | ≥ 0.50 |")
            lines.append(f"| `fire` (transition + case view), {name} | {t['fire_tx_per_s']:,} tx/s | "
                         f"{anchor} | {t['fire_ratio']:.2f} | — |")
        elif t:
            lines.append(f"| transition, {name} | skipped: {t.get('skipped')} | | | |")
    for r in results.get("sweep", {}).get("runs", []):
        lines.append(f"| sweep, {r['due']:,} due of {r['pending']:,} pending | {r['duban_fired_per_s']:,} fired/s | "
                     f"raw sqlite3 {r['raw_sqlite3_fired_per_s']:,} fired/s | {r['ratio']:.2f} | ≥ 5,000 fired/s |")
    a = results.get("audit", {})
    for what, label in (("csv", "CSV export"), ("jsonl", "JSONL export"), ("verify", "audit verify")):
        if what in a:
            r = a[what]
            workers = f", workers {r['workers_peak_rss_mb']:.0f} MB" if r.get("workers_peak_rss_mb") else ""
            lines.append(f"| {label}, {a['events']:,} events | {r['duban_rows_per_s']:,} rows/s, peak RSS "
                         f"{r['peak_rss_mb']:.0f} MB{workers} | raw {r['raw_rows_per_s']:,} rows/s | {r['ratio']:.2f} | "
                         f"≥ {r['target_rows_per_s']:,} rows/s |")
    s = results.get("startup", {})
    if s:
        lines.append(f"| start-up `duban --help` | {s['help_s']:.3f} s | python -c pass {s['python_bare_s']:.3f} s | "
                     f"{s['python_bare_s'] / s['help_s']:.2f} | < 0.3 s |")
        lines.append(f"| start-up `duban case show ID` | {s['case_show_s']:.3f} s | python -c pass "
                     f"{s['python_bare_s']:.3f} s | {s['python_bare_s'] / s['case_show_s']:.2f} | < 0.3 s |")
    d = results.get("notify", {})
    if d:
        lines.append(f"| delivery, {d['deliveries']:,} webhook notices, every attempt recorded | {d['duban_per_s']:,}/s | "
                     f"bare httpx posts {d['bare_posts_per_s']:,}/s | {d['ratio']:.2f} | ≥ 500/s |")
    h = results.get("http", {})
    for what, label, local in (("read", "case read `GET /api/v1/cases/{id}`", "App.show + my_triggers"),
                               ("fire", "trigger `POST …/fire`", "App.transition")):
        if what in h:
            r = h[what]
            lines.append(f"| HTTP {label}, {h['clients']} clients | {r['http_per_s']:,}/s, p50 {r['p50_ms']} ms, "
                         f"p99 {r['p99_ms']} ms (×{r['p99_over_p50']}) | in-process {local} {r['in_process_per_s']:,}/s "
                         f"| {r['ratio']:.2f} | ≥ 0.50, p99 ≤ 5 × p50 |")
    if "framework_per_s" in h.get("read", {}):
        r = h["read"]
        lines.append(f"| the bare framework serving the same bytes (FastAPI on uvicorn, no sign-in, no database) | "
                     f"{r['framework_per_s']:,}/s | in-process App.show + my_triggers {r['in_process_per_s']:,}/s | "
                     f"{r['framework_over_in_process']:.2f} | (the ceiling of the read's ratio here) |")
    m = results.get("memory", {})
    if m:
        lines.append(f"| memory per open case ({m['cases']:,} cases) | {m['duban_bytes_per_case']:,} B | "
                     f"raw row {m['raw_row_bytes_per_case']:,} B | {m['ratio']:.2f} | Machines: "
                     f"{m['machines_before']} → {m['machines_after']} |")
    return "\n".join(lines)


def _reads(argv: list[str]) -> None:
    from bench.reads import bench_reads
    from bench.reads import table as reads_table

    parser = argparse.ArgumentParser(prog="python -m bench reads")
    parser.add_argument("--out", default="bench/results/reads.json")
    args = parser.parse_args(argv)
    from duban.logconfig import configure

    configure()
    results = bench_reads()
    print(reads_table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), **results}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    if sys.argv[1:2] == ["load"]:
        from bench.load import main as load_main

        load_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["reads"]:
        _reads(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("which", nargs="*", default=["all"], choices=["all", *SECTIONS])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (the smoke test uses 0.1)")
    parser.add_argument("--out", default="bench/results/latest.json")
    args = parser.parse_args()
    from duban.logconfig import configure

    configure()  # warnings only: per-step info lines would dominate the measurement
    n = sizes(args.quick, args.scale)
    chosen = SECTIONS if "all" in args.which else tuple(w for w in SECTIONS if w in args.which)
    results: dict[str, Any] = {}
    run = runners(n)
    for name in chosen:
        started = time.perf_counter()
        results[name] = run[name]()
        print(f"{name:<20} {time.perf_counter() - started:6.1f} s  "
              + "  ".join(f"{k}={v}" for k, v in results[name].items() if k != "runs"), file=sys.stderr)
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine(), "quick": args.quick, "scale": args.scale, "sizes": n, **results}
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
