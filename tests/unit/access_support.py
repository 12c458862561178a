"""What the sign-in tests share: an office on a fresh database with a pinned clock, a cheap
argon2 hasher (the defaults cost ~50 ms a hash), and a look at every audit event."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher

from duban.access.passwords import Hasher
from duban.access.service import Access
from duban.access.settings import Security
from duban.clock import ManualClock
from duban.service.app import App
from duban.storage.database import Database

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2027, 3, 1, 9, 0, tzinfo=TZ)
PASSWORD = "Correct-Horse-42"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class Office:
    app: App
    access: Access
    clock: ManualClock

    def events(self) -> list[dict[str, Any]]:
        return list(self.app.events())

    def security_events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(e["action"], e["data"]) for e in self.events() if e["case_id"] is None
                and e["action"] not in ("user_added", "unit_added")]

    def assert_no_secret(self, *secrets: str) -> None:
        """No event, in any field, holds any of these strings."""
        text = json.dumps(self.events(), default=str, ensure_ascii=False)
        for secret in secrets:
            assert secret and secret not in text


def office(url: str, security: Security | None = None) -> Office:
    """wang (office, with PASSWORD), fgj (unit 区发改局) and li (leader), at START.

    A SQLite file is copied from one made once per test run (migrating takes a second)."""
    fresh = not url.startswith("sqlite:///")
    if not fresh:
        shutil.copyfile(_template(), url.removeprefix("sqlite:///"))
    db = Database(url)
    clock = ManualClock(START)
    app = App(db, clock, TZ)
    access = Access(app, hasher=Hasher(CHEAP), security=security or Security())
    if fresh:
        _populate(access)
    return Office(app, access, clock)


def _populate(access: Access) -> None:
    access.app.db.migrate()
    access.app.add_user("wang", "office", None)
    access.app.add_user("fgj", "unit", "区发改局")
    access.app.add_user("li", "leader", None)
    access.set_password("wang", PASSWORD)


_made: list[Path] = []


def _template() -> Path:
    if not _made:
        folder = Path(tempfile.mkdtemp(prefix="duban-access-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.db"
        app = App(Database(f"sqlite:///{path}"), ManualClock(START), TZ)
        _populate(Access(app, hasher=Hasher(CHEAP), security=Security()))
        app.db.dispose()  # WAL checkpointed into the file: a copy is whole
        _made.append(path)
    return _made[0]
