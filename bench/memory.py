"""Memory per open case: bytes traced (tracemalloc) to hold n open cases as the engine
loads them, against the raw sqlite3 rows of the same cases; and the number of
`transitions.Machine` objects alive (the engine shares one per workflow, never one per case)."""

from __future__ import annotations

import gc
import sqlite3
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import START, TZ
from bench.sweep import _setup


def _machines() -> int:
    from transitions import Machine

    return sum(1 for o in gc.get_objects() if isinstance(o, Machine))


def bench_memory(n: int) -> dict[str, Any]:
    from duban.storage import listing

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        app = _setup(path, n, 5 * n)
        with app.db.read() as conn:
            app.engine(conn)
            listing.cases(conn, open_only=True)[:1]  # warm caches before measuring
            gc.collect()
            machines_before = _machines()
            tracemalloc.start()
            cases = listing.cases(conn, open_only=True)
            for c in cases:  # what the engine needs to act: its pinned definition and the allowed triggers
                app.engine(conn).human_triggers(app.workflow_of(conn, c), c)
            ours = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            gc.collect()
            machines_after = _machines()
        app.db.dispose()
        raw = sqlite3.connect(str(path))
        tracemalloc.start()
        rows = raw.execute("SELECT * FROM cases WHERE closed_at IS NULL ORDER BY id").fetchall()
        anchor = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        raw.close()
    assert len(cases) == len(rows) == n
    return {"cases": n, "duban_bytes_per_case": round(ours / n), "raw_row_bytes_per_case": round(anchor / n),
            "ratio": round(anchor / ours, 3), "machines_before": machines_before, "machines_after": machines_after,
            "tz": str(TZ), "start": START.isoformat()}
