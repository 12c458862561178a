"""Signed checkpoints (SPEC §15), part of ``python -m bench audit``:

- the cost of one checkpoint taken after 10,000 new events, at growing log sizes (it reads
  only the events since the last checkpoint, so it must not grow with the log). Sizes: a
  tenth of the audit bench's log and the whole of it; ``DUBAN_BENCH_CHECKPOINT_SIZES`` (e.g.
  ``1000000,10000000``) sets them — 10M takes a long while to generate, so it is opt-in.
  Anchor: raw sqlite3 reading the same 10,000 rows' hashes and SHA-256 of each;
- ``audit verify --pubkey`` rows a second over the audit bench's log with a checkpoint
  every 10,000 events (the Merkle roots computed in the chain's pass), beside plain
  ``audit verify`` of the same log;
- the proof bundle of one case (``audit prove``): its size, the time to make it and the
  time to check it offline (``verify --bundle``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

EVERY = 10_000


def _app(url: str) -> Any:
    from duban.clock import ManualClock
    from duban.service.app import App
    from duban.storage.database import Database

    return App(Database(url), ManualClock(datetime(2026, 12, 2, 9, 0, tzinfo=UTC)), ZoneInfo("Asia/Shanghai"))


def sizes(n: int) -> list[int]:
    given = os.environ.get("DUBAN_BENCH_CHECKPOINT_SIZES")
    if given:
        return sorted({int(s) for s in given.split(",")})
    return sorted({max(2 * EVERY, n // 10), max(2 * EVERY, n)})


def checkpoint_growth(folder: Path, key: Any) -> dict[str, Any]:
    """One checkpoint after EVERY new events, at each size; the log grown in place between."""
    from bench.audit import generate
    from duban.service.checkpoints import make

    path = folder / "growing.db"
    url, done, out = f"sqlite:///{path}", 0, {}
    for size in sizes(0):
        generate(path, size - EVERY, first=done + 1)
        app = _app(url)
        make(app, key)  # catches up to size - EVERY (not timed)
        generate(path, size, first=size - EVERY + 1)
        started = time.perf_counter()
        made = make(app, key)
        seconds = time.perf_counter() - started
        app.db.dispose()
        raw = sqlite3.connect(str(path))
        started = time.perf_counter()
        for (h,) in raw.execute("SELECT hash FROM audit_events WHERE seq > ? ORDER BY seq", (size - EVERY,)):
            hashlib.sha256(bytes.fromhex(h)).digest()
        anchor = time.perf_counter() - started
        raw.close()
        out[str(size)] = {"seconds": round(seconds, 4), "events_read": made["events_read"],
                          "raw_seconds": round(anchor, 4), "ratio": round(anchor / seconds, 3)}
        done = size
    first, last = out[min(out, key=int)], out[max(out, key=int)]
    return {"every": EVERY, "by_log_size": out, "growth": round(last["seconds"] / first["seconds"], 2)}


def sign_every(url: str, key: Any, n: int) -> int:
    """Checkpoints of the log at every EVERY events (and at its end), as a scheduler signing
    that often would have left them; one pass over the hashes."""
    from duban.engine.checkpoint import Checkpoint, sign
    from duban.engine.merkle import Range, event_leaves
    from duban.service.checkpoints import utc_text
    from duban.storage import checkpoints

    app = _app(url)
    public, now = key.public_key, app.clock.now()
    tree, head, made = Range(0), None, 0
    with app.db.write() as conn:
        for rows in checkpoints.hashes(conn, 0):
            tree.extend(event_leaves([h for _, _, h in rows]))
            head = rows[-1][2]
            if tree.end % EVERY == 0 or tree.end == n:
                cp = Checkpoint(key.name, tree.end, tree.root(), utc_text(now))
                checkpoints.add(conn, size=cp.size, root=cp.root.hex(), head_hash=head, frontier=[h.hex() for h in tree.hashes()],
                                origin=cp.origin, key_id=public.key_id, fingerprint=public.fingerprint, signed_at=now,
                                note=sign(cp.body(), key.name, public.public, key.sign))
                made += 1
    app.db.dispose()
    return made


def bench_signed(path: Path, n: int, folder: Path, empty_url: str, verify_rate: float) -> dict[str, Any]:
    from bench.audit import MEASURE, _run
    from duban.service.keys import generate as keygen
    from duban.service.proofs import prove, verify_bundle, write

    _, pub_file, key = keygen(folder / "office.key")
    out: dict[str, Any] = {"checkpoint": checkpoint_growth(folder, key)}
    url = f"sqlite:///{path}"
    count = sign_every(url, key, n)
    ours = _run(MEASURE, url, "verify_pubkey", str(pub_file), empty_url)
    rate = n / ours["seconds"]
    out["verify_pubkey"] = {"checkpoints": count, "duban_rows_per_s": round(rate),
                            "plain_verify_rows_per_s": round(verify_rate), "ratio_to_plain": round(rate / verify_rate, 3),
                            "target_rows_per_s": 200_000}
    app = _app(url)
    started = time.perf_counter()
    bundle = prove(app, 1)
    proving = time.perf_counter() - started
    app.db.dispose()
    target = folder / "case1.proof.json"
    write(bundle, target)
    started = time.perf_counter()
    verify_bundle(target, key.public_key)
    checking = time.perf_counter() - started
    events = len(bundle["events"])
    out["proof"] = {"case_events": events, "bundle_bytes": target.stat().st_size,
                    "proof_nodes_per_event": round(sum(len(e["proof"]) for e in bundle["events"]) / max(1, events), 1),
                    "prove_seconds": round(proving, 3), "check_seconds": round(checking, 4),
                    "bundle_json_bytes_per_event": round(len(json.dumps(bundle["events"])) / max(1, events))}
    return out
