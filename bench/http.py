"""HTTP layer (SPEC §11, §13): a case read and a trigger fired over HTTP against one real
`duban serve` process (uvicorn, its own process, 127.0.0.1), vs the same calls in-process
(`App.show`, `App.transition`), each side driven by 16 concurrent clients: over HTTP 16
client processes (16 people's programs), in-process 16 threads.

The HTTP side pays for what a real request costs: HTTP parsing, the token check against
the database, the caller's scope, JSON both ways. The in-process read builds the same
document the API answers with — the case as `App.show` gives it plus the caller's
`my_triggers` — so the ratio is what HTTP and sign-in add to the same read (the bare
`App.show` rate is reported beside it). The in-process fire is `App.transition`, as the SPEC
names it; `same_work_per_s` beside it is what the fire endpoint does in-process (the
visibility check in the step, `App.fire` with the case view it returns, `my_triggers`).
Each side first runs a short untimed warm-up (pooled connections, caches, the OS's page
cache), so neither is timed cold. The clients (one kept-alive `http.client` connection
each) run on the same machine as the server, so they take CPU from it: on
2 cores the figure is a floor, not the server's ceiling. Latency percentiles are per HTTP
request, under that load. `server_cpu_ms` is the server process's own CPU time per request
(from /proc), which depends far less on what else the machine is doing than a rate does.
"""

from __future__ import annotations

import json
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
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import START, TZ
from duban.access.service import Access
from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database

CLIENTS = 16
WARM_UP = 4 * CLIENTS  # calls each side makes, untimed, before it is timed
FIRE = b'{"trigger": "accept"}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(url: str, now: datetime = START, *, tries: int = 300) -> Iterator[tuple[str, int]]:
    """One `duban serve` process on a free port, its clock pinned to `now`, until the block
    ends; it has `tries` tenths of a second to listen (a big office takes longer to open)."""
    port = _free_port()
    with _process([sys.executable, "-m", "duban.cli", "--db", url, "--now", now.isoformat(), "serve",
                   "--port", str(port)], port, tries) as found:
        yield found


@contextmanager
def _bare_server(body: bytes) -> Iterator[tuple[str, int]]:
    """`bench.bare_app` serving `body` at the case read's path, on a free port."""
    port = _free_port()
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        with _process([sys.executable, "-m", "bench.bare_app", str(port), f.name], port, 300) as found:
            yield found


@contextmanager
def _process(command: list[str], port: int, tries: int) -> Iterator[tuple[str, int]]:
    import httpx

    env = {**os.environ, "DUBAN_NOW": "", "DUBAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(tries):
            if proc.poll() is not None:
                raise RuntimeError(f"duban serve exited {proc.returncode}: {proc.communicate()[1].decode()[-2000:]}")
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, proc.pid
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


def _figures(http: tuple[float, list[float]], local: tuple[float, list[float]], cpu: float) -> dict[str, Any]:
    p50, p99 = _percentile(http[1], 0.5), _percentile(http[1], 0.99)
    return {"http_per_s": round(http[0]), "in_process_per_s": round(local[0]), "ratio": round(http[0] / local[0], 3),
            "p50_ms": round(p50 * 1000, 2), "p99_ms": round(p99 * 1000, 2), "p99_over_p50": round(p99 / p50, 2),
            "in_process_p50_ms": round(_percentile(local[1], 0.5) * 1000, 2),
            "server_cpu_ms": round(cpu / len(http[1]) * 1000, 3)}


def _client_process(base: str, token: str, calls: Sequence[tuple[str, str, bytes | None]],
                    start: Any, out: Any) -> None:
    """One HTTP client as a process of its own: its calls in turn on one kept-alive
    connection (opened before the start, as a client already connected), then its latencies
    (seconds) on `out`."""
    client, mine = Client(base, token), []
    client.call("GET", "/api/v1/me")  # the connection open and the token checked once, untimed
    start.wait()
    try:
        for method, path, body in calls:
            t0 = time.perf_counter()
            client.call(method, path, body)
            mine.append(time.perf_counter() - t0)
    finally:
        client.close()
        out.put(mine)


def _timed_http(pid: int, base: str, token: str, calls: Sequence[tuple[str, str, bytes | None]]
                ) -> tuple[tuple[float, list[float]], float]:
    """The calls from CLIENTS client processes (each its share, in turn), as (calls a second,
    every call's latency), and the CPU seconds the server spent meanwhile.

    Processes, not threads: 16 people's browsers and scripts are 16 programs. Sixteen threads
    of one interpreter take turns at its lock, and the turn a thread waits for after its
    answer has arrived was counted as the server's latency (p99 ×6 of p50 with threads
    against ×2.2 with processes, on the same server)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(CLIENTS + 1), ctx.Queue()
    procs = [ctx.Process(target=_client_process, args=(base, token, calls[k::CLIENTS], start, out))
             for k in range(CLIENTS)]
    for proc in procs:
        proc.start()
    before = _cpu_seconds(pid)
    start.wait()
    began = time.perf_counter()
    latencies = [lat for _ in procs for lat in out.get(timeout=600)]
    elapsed = time.perf_counter() - began
    cpu = _cpu_seconds(pid) - before
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"an HTTP client exited {proc.exitcode}")
    return (len(calls) / elapsed, latencies), cpu


def _seed(url: str, reads: int, fires: int) -> tuple[list[int], list[int], dict[str, str]]:
    app = App(Database(url), ManualClock(START), TZ)
    app.init()
    app.add_user("wang", "office", None)
    app.add_user("fgj", "unit", "区发改局")
    access = Access(app)
    tokens = {name: access.create_token(name)["token"] for name in ("wang", "fgj")}
    ids = [app.open_case("supervision", title=f"任务{i}", lead_unit="区发改局", co_units=[], due="2027-06-30",
                         values={}, actor="wang")["id"] for i in range(max(reads, 1) + 3 * (fires + WARM_UP))]
    app.db.dispose()
    return ids[:reads], ids[reads:], tokens


def bench_http(reads: int, fires: int) -> dict[str, Any]:
    from duban.web.scope import case_document, sees_case, with_my_triggers

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'duban.db'}"
        read_ids, fire_ids, tokens = _seed(url, reads, fires)
        # fire_ids: the HTTP side's warm-up and timed cases, then the in-process side's
        http_warm, http_fire = fire_ids[:WARM_UP], fire_ids[WARM_UP:WARM_UP + fires]
        local_warm, local_fire = fire_ids[WARM_UP + fires:2 * WARM_UP + fires], fire_ids[2 * WARM_UP + fires:][:fires]
        same_fire = fire_ids[3 * WARM_UP + 2 * fires:]  # (the in-process side's warm-up covers both)
        app = App(Database(url), ManualClock(START), TZ)
        wang, fgj = Access(app).token_user(tokens["wang"]), Access(app).token_user(tokens["fgj"])
        assert wang is not None and fgj is not None

        def client(token: str) -> Callable[[], Client]:
            return lambda: Client(base, token)

        def get(c: Client, case_id: int) -> None:
            c.call("GET", f"/api/v1/cases/{case_id}")

        def post(c: Client, case_id: int) -> None:
            c.call("POST", f"/api/v1/cases/{case_id}/fire", FIRE)

        def read(_: Any, case_id: int) -> dict[str, Any]:  # the document GET /api/v1/cases/{id} answers with
            return case_document(app, wang, case_id)

        def transition(_: Any, case_id: int) -> object:
            return app.transition(case_id, "accept", actor="fgj")

        def fire_document(_: Any, case_id: int) -> dict[str, Any]:  # what POST …/fire does and answers with
            return with_my_triggers(app, fgj, app.fire(case_id, "accept", actor="fgj", seen=sees_case(fgj)))

        def close(c: Client) -> None:
            c.close()

        def nothing(_: Any) -> None:
            return None

        warm_reads = read_ids[:WARM_UP]
        with server(url) as (base, pid):
            _concurrently(warm_reads, get, client(tokens["wang"]), close)
            read_http, read_cpu = _timed_http(pid, base, tokens["wang"],
                                              [("GET", f"/api/v1/cases/{i}", None) for i in read_ids])
            _concurrently(warm_reads, read, lambda: None, nothing)
            read_local = _concurrently(read_ids, read, lambda: None, nothing)
            bare_show = _concurrently(read_ids, lambda _, i: app.show(i), lambda: None, nothing)
        # the framework alone serving the same bytes: what any FastAPI endpoint reaches here
        document = json.dumps(read(None, read_ids[0]), ensure_ascii=False, separators=(",", ":")).encode()
        with _bare_server(document) as (bare, bare_pid):
            framework, _ = _timed_http(bare_pid, bare, "-", [("GET", f"/api/v1/cases/{i}", None) for i in read_ids])
        with server(url) as (base, pid):
            _concurrently(http_warm, post, client(tokens["fgj"]), close)
            fire_http, fire_cpu = _timed_http(pid, base, tokens["fgj"],
                                              [("POST", f"/api/v1/cases/{i}/fire", FIRE) for i in http_fire])
            _concurrently(local_warm, transition, lambda: None, nothing)
            fire_local = _concurrently(local_fire, transition, lambda: None, nothing)
            fire_same = _concurrently(same_fire, fire_document, lambda: None, nothing)
        app.db.dispose()
    read_figures = {**_figures(read_http, read_local, read_cpu), "bare_show_per_s": round(bare_show[0]),
                    "bare_show_ratio": round(read_http[0] / bare_show[0], 3),
                    "framework_per_s": round(framework[0]), "framework_over_in_process": round(framework[0] / read_local[0], 3)}
    return {"clients": CLIENTS, "reads": reads, "fires": fires, "read": read_figures,
            "fire": {**_figures(fire_http, fire_local, fire_cpu), "same_work_per_s": round(fire_same[0]),
                     "same_work_ratio": round(fire_http[0] / fire_same[0], 3)}, "ratio": round(min(read_http[0] / read_local[0],
                                                                                  fire_http[0] / fire_local[0]), 3),
            "target_ratio": 0.5, "target_p99_over_p50": 5}
