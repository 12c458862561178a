"""`duban serve`: the office board and the HTTP API (SPEC §13) on uvicorn.

Each server process builds its own App (`duban.bootstrap`) from the same settings as the
CLI (`--db`, `--tz`, `--now`): with `--workers N` uvicorn starts N processes, each importing
`worker_app` with those settings passed down in the environment. Sessions live in the database, so any
process (or any host behind a load balancer on PostgreSQL) serves any signed-in user.

The server fires no timers: run `duban scheduler run` beside it, or `--with-scheduler` for
a single-process office on SQLite (the scheduler then runs in this process's main thread,
where it can take the signals, and the server in a thread of its own).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from duban.commands.support import settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from duban.service.app import App

_ENV = {"db": "DUBAN_DB", "now": "DUBAN_NOW", "tz": "DUBAN_TZ"}
_INSECURE = "DUBAN_SERVE_INSECURE_COOKIES"


def build(db: str, now: str | None, tz_name: str, *, secure_cookies: bool) -> FastAPI:
    """The web app of one process: its own App (database pool, clock, zone) and sign-in."""
    from duban.access.service import Access
    from duban.bootstrap import app_from_settings
    from duban.web.factory import create_app

    # every event a board or API user causes says where it came from
    app = app_from_settings(db, now, tz_name, origin={"via": "web"})
    return create_app(app, Access(app), secure_cookies=secure_cookies)


def worker_app() -> FastAPI:
    """uvicorn's factory in each worker process (`--workers N`): settings from the environment."""
    from duban.logconfig import configure

    configure(default_level="INFO")
    return build(os.environ["DUBAN_DB"], os.environ.get("DUBAN_NOW") or None,
                 os.environ.get("DUBAN_TZ", "Asia/Shanghai"), secure_cookies=os.environ.get(_INSECURE) != "1")


def _check_database(app: App) -> None:
    """Refuse to serve a database that is missing or not migrated (exit 2 with what to run)."""
    from sqlalchemy import inspect

    from duban.errors import UsageError

    with app.db.read() as conn:
        if not inspect(conn).has_table("sessions"):
            raise UsageError(f"{app.db.display_url}: 数据库尚未初始化或需要升级：先运行 duban init")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (behind a proxy: 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (sessions are in the database, so any process serves any user).")
@click.option("--insecure-cookies", is_flag=True,
              help="Send the session cookie without Secure: only for plain HTTP on one machine.")
@click.option("--with-scheduler", is_flag=True,
              help="Also fire timers in this process (a single-node SQLite office; else run `duban scheduler run`).")
def serve(host: str, port: int, workers: int, insecure_cookies: bool, with_scheduler: bool) -> None:
    """The office board and the HTTP API (/api/v1) on one database (SPEC §13)."""
    import uvicorn

    from duban.errors import UsageError
    from duban.logconfig import configure
    from duban.web.http_protocol import OneWriteHttpToolsProtocol

    s = settings()
    if with_scheduler and workers > 1:
        raise UsageError("--with-scheduler runs the scheduler in the server's process: use it with --workers 1 "
                         "(or run `duban scheduler run` beside several workers)")
    configure(default_level="INFO")
    web = build(s.db, s.now, s.tz_name, secure_cookies=not insecure_cookies)
    _check_database(web.state.web.app)
    scheme = "http"
    click.echo(f"督办看板：{scheme}://{host}:{port}/   API：{scheme}://{host}:{port}/api/v1/openapi.json", err=True)
    if workers > 1:
        os.environ.update({_ENV["db"]: s.db, _ENV["tz"]: s.tz_name, _INSECURE: "1" if insecure_cookies else "0"})
        if s.now:
            os.environ[_ENV["now"]] = s.now
        uvicorn.run("duban.commands.serve:worker_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", proxy_headers=True, http=OneWriteHttpToolsProtocol)
        return
    config = uvicorn.Config(web, host=host, port=port, log_level="warning", proxy_headers=True, http=OneWriteHttpToolsProtocol)
    if not with_scheduler:
        uvicorn.Server(config).run()
        return
    _serve_with_scheduler(uvicorn.Server(config), web.state.web.app)


def _serve_with_scheduler(server: Any, app: App) -> None:
    import threading

    from duban.commands.daemon import Config, Scheduler, default_node, single_node_lock
    from duban.commands.scheduler import DEFAULT_BATCH, DEFAULT_CHUNK, DEFAULT_INTERVAL, DEFAULT_LEASE

    config = Config(node=default_node(), interval=DEFAULT_INTERVAL, batch=DEFAULT_BATCH, chunk=DEFAULT_CHUNK,
                    lease=DEFAULT_LEASE)
    lock = single_node_lock(app.db, config.node)
    thread = threading.Thread(target=server.run, name="duban-serve", daemon=True)
    thread.start()
    try:
        Scheduler(app, config).run_forever()  # until SIGINT / SIGTERM
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if lock is not None:
            lock.close()
