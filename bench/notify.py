"""Delivery: notices handed to a local receiver a second, every attempt recorded (SPEC §11, §14).

Setup: one supervision case lapses (its 催办通知 routed to a Standard Webhooks receiver),
and its delivery row is cloned into `n` pending deliveries. The figure is the time
`Deliverer.run_once` takes to send them all — claim, compose the Chinese message, sign,
POST, record the attempt, mark sent and append the audit event, a batch per transaction.
The anchor is a bare loop posting the same signed body `n` times to the same receiver
with the same httpx client settings, in the same run (the receiver runs in this process
for both, so both share its cost).
"""

from __future__ import annotations

import tempfile
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import START, TZ, timed
from duban.clock import ManualClock
from duban.delivery import signing
from duban.delivery.deliverer import DEFAULT_BATCH, Deliverer
from duban.delivery.outbox import Outbox
from duban.delivery.settings import parse
from duban.service.app import App
from duban.storage.database import Database

SECRET = "whsec_" + "ZHViYW4tYmVuY2gtd2ViaG9vay1rZXktMzItYnl0ZXMh"


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def _setup(path: Path, url: str, n: int) -> tuple[App, Any]:
    app = App(Database(f"sqlite:///{path}"), ManualClock(START), TZ)
    app.init()
    app.add_user("office", "office", None)
    app.add_user("fgj", "unit", "区发改局")
    settings = parse({"webhook": {"url": url, "secret_env": "WH"},
                      "routes": [{"kinds": ["催办通知"], "to": "unit", "via": ["webhook"]}]}, "bench.yaml")
    app.outbox = Outbox(settings)
    case = app.open_case("supervision", title="基准事项", lead_unit="区发改局", co_units=[], due="2026-11-30",
                         values={}, actor="office")
    app.fire(case["id"], "accept", actor="fgj")
    assert isinstance(app.clock, ManualClock)
    app.clock.advance(days=30)
    app.tick()
    with app.db.write() as conn:
        from sqlalchemy import text

        conn.execute(text("INSERT INTO deliveries (notice_id, case_id, channel, recipient, address, status, attempts,"
                          " next_at, created_at) SELECT notice_id, case_id, channel, recipient, address, status, attempts,"
                          " next_at, created_at FROM deliveries, (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                          " FROM k WHERE i < :more) SELECT i FROM k)"), {"more": n - 1})
    return app, settings


def bench_notify(n: int) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app, settings = _setup(Path(tmp) / "notify.db", url, n)
            node = Deliverer(app, settings, {"webhook": {"secret_env": SECRET}}, "bench", batch=DEFAULT_BATCH)
            try:
                with timed() as t:
                    result = node.run_once()
            finally:
                node.close()
            assert result.sent == n, result.as_json()
            with app.db.read() as conn:
                from sqlalchemy import text

                attempts = conn.execute(text("SELECT count(*) FROM delivery_attempts")).scalar_one()
            app.db.dispose()
        body = b'{"type":"notice.delivery","data":{"text":"' + "催办通知".encode() * 40 + b'"}}'
        stamp = int((START + timedelta(days=30)).timestamp())
        with httpx.Client() as client, timed() as bare:
            for i in range(n):
                client.post(url, content=body, headers=signing.webhook_headers(SECRET, f"msg_{i}", stamp, body),
                            timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    duban_rate, bare_rate = n / t[0], n / bare[0]
    return {"deliveries": n, "attempts_recorded": int(attempts), "duban_per_s": round(duban_rate),
            "bare_posts_per_s": round(bare_rate), "ratio": round(duban_rate / bare_rate, 3), "target_per_s": 500}
