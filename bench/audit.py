"""Export and verify: n audit events (a valid chain, bulk-generated with the chain's own
hash function); CSV and JSONL exports (their default: worker processes, one per CPU,
`duban.exports.parallel_export`), `audit verify` (the same, `duban.exports.parallel_verify`), `audit verify
--jobs 1` (one process) and `audit verify --file` (of the JSONL export), each through the CLI
in a fresh subprocess that reports its rows a second and peak RSS (for the commands with
workers also the largest worker's). Anchors: raw
sqlite3 reading the same rows and writing them with `csv.writer` / one `str.join` per line
(exports), and reading them and hashing each row's text with SHA-256 in one process
(verify, either way); for the offline check, reading the file's lines, `json.loads` and
SHA-256 of each. ``fetch_rows_per_s`` is raw sqlite3 only reading the rows (``fetchmany``,
nothing else): no single reader of the database can go faster than that.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import START
from duban.engine.audit import GENESIS, event_hash

MEASURE = r"""
import json, resource, sys, time
from duban.cli import cli

db, what, out, empty = sys.argv[1:]

def args(db, out):
    if what == "verify":  # the default: worker processes, one per CPU
        return ["--db", db, "audit", "verify", "--json"]
    if what == "verify_sequential":
        return ["--db", db, "audit", "verify", "--jobs", "1", "--json"]
    if what == "verify_pubkey":  # the chain and every stored checkpoint's signature and Merkle root
        return ["--db", db, "audit", "verify", "--pubkey", out, "--json"]
    if what == "verify_file":  # the JSONL export (its warm-up: the JSONL export of the empty database)
        return ["audit", "verify", "--file", out, "--json"]
    return ["--db", db, "audit", "export", "--format", what, "--out", out, "--json"]

try:  # warm up on an empty database: imports and set-up are start-up, not throughput
    cli.main(args(empty, out + ".warm"), standalone_mode=False)
except SystemExit:
    pass
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    cli.main(args(db, out), standalone_mode=False)
except SystemExit:
    pass
seconds = time.perf_counter() - started
print("\n@@" + json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                           "start_mb": before / 1024,
                           "workers_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

ANCHOR = r"""
import csv, hashlib, json, resource, sqlite3, sys, time
db, what, out = sys.argv[1:]
conn = sqlite3.connect(db)
started = time.perf_counter()
rows = conn.execute("SELECT * FROM audit_events ORDER BY seq")
n = 0
if what == "fetch":
    while batch := rows.fetchmany(5000):
        n += len(batch)
elif what in ("verify", "verify_sequential"):
    for r in rows:
        hashlib.sha256("|".join(map(str, r[:12])).encode()).hexdigest() == r[12]
        n += 1
elif what == "verify_file":
    with open(out, "rb") as fh:
        for line in fh:
            json.loads(line)
            hashlib.sha256(line).hexdigest()
            n += 1
else:
    with open(out, "w", encoding="utf-8", newline="") as fh:
        if what == "csv":
            w = csv.writer(fh)
            for r in rows:
                w.writerow(r); n += 1
        else:
            for r in rows:
                fh.write("{" + ",".join(map(str, r)) + "}\n"); n += 1
print("\n@@" + json.dumps({"seconds": time.perf_counter() - started, "rows": n,
                           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, n: int, batch: int = 20_000, *, first: int = 1) -> None:
    """Events ``first`` … n forming a valid chain over 1,000 cases, inserted with the schema duban
    creates (from ``first`` > 1: appended to the chain already in ``path``)."""
    from duban.storage.database import Database

    if first == 1:
        db = Database(f"sqlite:///{path}")
        db.migrate()
        db.dispose()
    raw = sqlite3.connect(str(path), isolation_level=None)
    raw.execute("BEGIN")
    head = raw.execute("SELECT hash FROM audit_events WHERE seq = ?", (first - 1,)).fetchone()
    prev, rows = (head[0] if head else GENESIS), []
    sql = ('INSERT INTO audit_events (seq, case_id, at, actor, role, action, "trigger", from_state, to_state,'
           " note, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
    for seq in range(first, n + 1):
        at = START + timedelta(seconds=30 * seq)
        record = {"seq": seq, "case_id": seq % 1000 + 1, "at": at, "actor": "王督查", "role": "office",
                  "action": "fire", "trigger": "accept", "from_state": "assigned", "to_state": "in_progress",
                  "note": f"第{seq}号督办事项：请于5个工作日内报送办理情况", "data": {"单位": "区发改局", "序号": seq},
                  "prev_hash": prev}
        prev = event_hash(record)
        rows.append((seq, record["case_id"], at.replace(tzinfo=None).isoformat(" ", "microseconds"), "王督查",
                     "office", "fire", "accept", "assigned", "in_progress", record["note"],
                     json.dumps(record["data"]), record["prev_hash"], prev))
        if len(rows) == batch:
            raw.executemany(sql, rows)
            rows = []
    raw.executemany(sql, rows)
    raw.execute("COMMIT")
    raw.close()


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False)
    if "@@" not in done.stdout:
        raise RuntimeError(f"bench subprocess failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.rsplit("@@", 1)[1])
    return result


def bench_audit(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"events": n}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.db"
        generate(path, n)
        empty = Path(tmp) / "empty.db"
        generate(empty, 0)
        for what in ("csv", "jsonl", "verify", "verify_sequential", "verify_file"):
            target = str(Path(tmp) / f"export.{'jsonl' if what == 'verify_file' else what}")
            ours = _run(MEASURE, f"sqlite:///{path}", what, target, f"sqlite:///{empty}")
            anchor = _run(ANCHOR, str(path), what, target if what == "verify_file" else target + ".raw")
            rate, raw_rate = n / ours["seconds"], n / anchor["seconds"]
            out[what] = {"duban_rows_per_s": round(rate), "raw_rows_per_s": round(raw_rate),
                         "ratio": round(rate / raw_rate, 3), "peak_rss_mb": round(ours["peak_mb"], 1),
                         "rss_before_mb": round(ours["start_mb"], 1)}
            if what in ("csv", "jsonl", "verify"):  # worker processes by default (parallel_export, parallel_verify)
                out[what]["workers_peak_rss_mb"] = round(ours["workers_peak_mb"], 1)
            if what in TARGETS:
                out[what]["target_rows_per_s"] = TARGETS[what]
        out["verify"]["fetch_rows_per_s"] = round(n / _run(ANCHOR, str(path), "fetch", "")["seconds"])
        from bench.checkpoints import bench_signed

        out["checkpoints"] = bench_signed(path, n, Path(tmp), f"sqlite:///{empty}", out["verify"]["duban_rows_per_s"])
    out["ratio"] = min(out[w]["ratio"] for w in TARGETS)
    return out


TARGETS = {"csv": 100_000, "jsonl": 100_000, "verify": 200_000}  # SPEC §11 (none for the offline check)
