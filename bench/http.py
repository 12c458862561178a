"""HTTP layer (SPEC §11, §13): a case read and a trigger fired over HTTP against one real
`duban serve` process (uvicorn, its own process, 127.0.0.1), vs the same calls in-process
(`App.show`, `App.transition`), each side driven by 16 concurrent client threads.

The HTTP side pays for what a real request costs: HTTP parsing, the token check against
the database, the caller's scope and `my_triggers`, JSON both ways. The clients (one
kept-alive `http.client` connection per thread) run on the same machine as the server, so
they take CPU from it: on 2 cores the figure is a floor, not the server's ceiling.
Latency percentiles are per HTTP request, under that load.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import START, TZ
from duban.access.service import Access
from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database

CLIENTS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(url: str) -> Iterator[str]:
    """One `duban serve` process on a free port, until the block ends."""
    import httpx

    port = _free_port()
    env = {**os.environ, "DUBAN_NOW": "", "DUBAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "duban.cli", "--db", url, "--now", START.isoformat(), "serve",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded: ~30 s to listen
            if proc.poll() is not None:
                raise RuntimeError(f"duban serve exited {proc.returncode}: {proc.communicate()[1].decode()[-2000:]}")
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


class Client:
    """One kept-alive connection (stdlib `http.client`: the lightest client there is, so the
    clients, on the same cores as the server, take as little of its CPU as they can)."""

    def __init__(self, base: str, token: str) -> None:
        from http.client import HTTPConnection
        from urllib.parse import urlsplit

        where = urlsplit(base)
        self.conn = HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> None:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")

    def close(self) -> None:
        self.conn.close()


def _concurrently(items: Sequence[int], work: Callable[[Any, int], object], make: Callable[[], Any],
                  close: Callable[[Any], None]) -> tuple[float, list[float]]:
    """Run `work(resource, item)` over items from CLIENTS threads (one resource each);
    (items a second, every call's latency in seconds)."""
    lock, todo = threading.Lock(), list(reversed(items))
    latencies: list[float] = []
    start = threading.Barrier(CLIENTS + 1)

    def client() -> None:
        resource, mine = make(), []
        start.wait()
        try:
            while True:
                with lock:
                    if not todo:
                        break
                    item = todo.pop()
                t0 = time.perf_counter()
                work(resource, item)
                mine.append(time.perf_counter() - t0)
        finally:
            close(resource)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return len(items) / (time.perf_counter() - began), latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(http: tuple[float, list[float]], local: tuple[float, list[float]]) -> dict[str, Any]:
    p50, p99 = _percentile(http[1], 0.5), _percentile(http[1], 0.99)
    return {"http_per_s": round(http[0]), "in_process_per_s": round(local[0]), "ratio": round(http[0] / local[0], 3),
            "p50_ms": round(p50 * 1000, 2), "p99_ms": round(p99 * 1000, 2), "p99_over_p50": round(p99 / p50, 2),
            "in_process_p50_ms": round(_percentile(local[1], 0.5) * 1000, 2)}


def _seed(url: str, reads: int, fires: int) -> tuple[list[int], list[int], dict[str, str]]:
    app = App(Database(url), ManualClock(START), TZ)
    app.init()
    app.add_user("wang", "office", None)
    app.add_user("fgj", "unit", "区发改局")
    access = Access(app)
    tokens = {name: access.create_token(name)["token"] for name in ("wang", "fgj")}
    ids = [app.open_case("supervision", title=f"任务{i}", lead_unit="区发改局", co_units=[], due="2027-06-30",
                         values={}, actor="wang")["id"] for i in range(max(reads, 1) + 2 * fires)]
    app.db.dispose()
    return ids[:reads], ids[reads:], tokens


def bench_http(reads: int, fires: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'duban.db'}"
        read_ids, fire_ids, tokens = _seed(url, reads, fires)
        app = App(Database(url), ManualClock(START), TZ)

        def client(token: str) -> Callable[[], Client]:
            return lambda: Client(base, token)

        def get(c: Client, case_id: int) -> None:
            c.call("GET", f"/api/v1/cases/{case_id}")

        def post(c: Client, case_id: int) -> None:
            c.call("POST", f"/api/v1/cases/{case_id}/fire", b'{"trigger": "accept"}')

        def close(c: Client) -> None:
            c.close()

        def nothing(_: Any) -> None:
            return None

        with _server(url) as base:
            read_http = _concurrently(read_ids, get, client(tokens["wang"]), close)
            read_local = _concurrently(read_ids, lambda _, i: app.show(i), lambda: None, nothing)
            fire_http = _concurrently(fire_ids[:fires], post, client(tokens["fgj"]), close)
            fire_local = _concurrently(fire_ids[fires:], lambda _, i: app.transition(i, "accept", actor="fgj"),
                                       lambda: None, nothing)
        app.db.dispose()
    return {"clients": CLIENTS, "reads": reads, "fires": fires, "read": _figures(read_http, read_local),
            "fire": _figures(fire_http, fire_local), "ratio": round(min(read_http[0] / read_local[0],
                                                                        fire_http[0] / fire_local[0]), 3),
            "target_ratio": 0.5, "target_p99_over_p50": 5}
