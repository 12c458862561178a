"""`duban serve` end to end: the real command in a subprocess on a free port, its refusals,
`--with-scheduler` firing timers in the same process, and the demo's way to the board."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Duban

DUBAN = [sys.executable, "-m", "duban.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(db_url: str, *args: str, now: str = "2027-03-01T09:00") -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DUBAN_NOW": "", "DUBAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([*DUBAN, "--db", db_url, "--now", now, "serve", "--port", str(port), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded: up to ~30 s for the process to listen
            if proc.poll() is not None:
                raise AssertionError(f"duban serve exited {proc.returncode}: {proc.communicate()[1]}")
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)  # waiting for another process to listen, not for the clock
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)  # reads and closes both pipes
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _token(duban: Duban, name: str) -> dict[str, str]:
    made = duban.ok("token", "create", name, "--json", now="2027-03-01T09:00").json
    return {"Authorization": f"Bearer {made['token']}"}


def test_serve_answers_the_board_and_the_api(duban: Duban) -> None:
    headers = _token(duban, "wang")
    with serving(duban.db_url, "--insecure-cookies") as base:
        login = httpx.get(base + "/login")
        assert login.status_code == 200
        assert "用户名" in login.text
        assert "登录" in login.text
        assert httpx.get(base + "/static/duban.css").status_code == 200
        me = httpx.get(base + "/api/v1/me", headers=headers)
        assert me.json()["name"] == "wang"
        made = httpx.post(base + "/api/v1/cases", headers=headers,
                          json={"workflow": "supervision", "title": "经由 HTTP 交办", "lead_unit": "区发改局", "due": "5wd"})
        assert made.status_code == 201
    shown = duban.ok("case", "show", str(made.json()["id"]), "--json").json
    assert shown["title"] == "经由 HTTP 交办"
    assert shown["opened_by"] == "wang"
    opened = next(e for e in duban.ok("case", "history", str(shown["id"]), "--json").json if e["action"] == "open")
    assert opened["data"]["via"] == "web"  # where the event came from, as the CLI's say `cli`


def test_serve_refuses_what_cannot_work(tmp_path: Path, duban: Duban) -> None:
    r = Duban(f"sqlite:///{tmp_path / 'missing.db'}")("serve", "--port", str(_free_port()))
    assert r.code == 1
    assert "duban init" in r.stderr
    (tmp_path / "empty.db").touch()
    r = Duban(f"sqlite:///{tmp_path / 'empty.db'}")("serve", "--port", str(_free_port()))
    assert r.code == 1
    assert "duban init" in r.stderr
    r = duban("serve", "--workers", "2", "--with-scheduler")
    assert r.code == 2
    assert "--with-scheduler" in r.stderr


def test_with_scheduler_fires_timers_in_the_same_process(duban: Duban) -> None:
    case = duban.ok("case", "open", "supervision", "--title", "签收超时", "--unit", "区发改局", "--due", "10wd", "--json",
                    now="2027-03-01T09:00", actor="wang").json
    headers = _token(duban, "wang")
    with serving(duban.db_url, "--with-scheduler", now="2027-03-03T09:00") as base:  # 签收时限 passed
        for _ in range(200):  # bounded: the first sweep runs at start
            shown: dict[str, Any] = httpx.get(f"{base}/api/v1/cases/{case['id']}", headers=headers).json()
            if any(t["status"] == "fired" for t in shown["timers"]):
                break
            time.sleep(0.1)  # waiting for the scheduler thread's first sweep, not for the clock
        fired = [t["label"] for t in shown["timers"] if t["status"] == "fired"]
        assert fired == ["签收时限 · 催签"]


def test_the_demo_says_how_to_open_the_board(tmp_path: Path) -> None:
    from duban.access.service import Access, User
    from duban.clock import ManualClock
    from duban.commands.demo import DEMO_PASSWORD, USERS
    from duban.service.app import App
    from duban.storage.database import Database
    from tests.web.conftest import START, TZ

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    run = Duban(url)("demo")
    assert run.code == 0, run.stderr
    assert f"duban --db {url} --now 2018-01-31T10:00 serve --insecure-cookies" in run.stdout
    assert "http://127.0.0.1:8080/" in run.stdout
    assert DEMO_PASSWORD in run.stdout
    app = App(Database(url), ManualClock(START), TZ)
    try:
        for name, role, unit in USERS:
            assert Access(app).authenticate(name, DEMO_PASSWORD) == User(name, role, unit)
    finally:
        app.db.dispose()
    report = json.loads(Duban(f"sqlite:///{tmp_path / 'again.db'}")("demo", "--json").stdout)
    assert report["board"]["users"] == [u[0] for u in USERS]


def test_demo_serve_starts_the_board_on_what_it_built(tmp_path: Path) -> None:
    """`duban demo --serve`: the demo, then the board on it at once, as of the demo's last day
    (the API's case 7 is the one the demo leaves at 通报, read with a token of the office)."""
    port = _free_port()
    url = f"sqlite:///{tmp_path / 'duban.db'}"
    env = {**os.environ, "DUBAN_NOW": "", "DUBAN_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([*DUBAN, "--db", url, "demo", "--serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # bounded: the demo runs first (a few seconds), then the server listens
            if proc.poll() is not None:
                raise AssertionError(f"duban demo --serve exited {proc.returncode}: {proc.communicate()[1]}")
            try:
                login = httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)  # waiting for another process to listen, not for the clock
        assert login.status_code == 200 and "登录" in login.text
        token = Duban(url).ok("token", "create", "王督查", "--json", now="2018-01-31T10:00").json["token"]
        case = httpx.get(f"{base}/api/v1/cases/7", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert case["state"] == "overdue" and case["escalation_level"] == 4
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_demo_serve_and_json_do_not_mix(tmp_path: Path) -> None:
    run = Duban(f"sqlite:///{tmp_path / 'duban.db'}")("demo", "--serve", "--json")
    assert run.code == 2 and "--serve" in run.stderr
    assert not (tmp_path / "duban.db").exists()
