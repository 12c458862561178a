"""Security events in the audit chain (SPEC §12), with the case empty, like the directory's.

The operator's acts (a password set, a user disabled, a token made) are
`duban.service.directory.directory_event`s: actor and role `operator`, with `via` and the
operating-system user. A person's own acts (signing in and out) name that person as the
actor; a failed sign-in names no actor (the one trying is not known to be the user), only
the user tried and why it failed, and an unknown name is not recorded at all: it may be a
password typed into the wrong field. Nothing secret is ever passed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from duban.engine.model import Event
from duban.service.directory import directory_event
from duban.storage import audit_log


def write(conn: Connection, events: list[Event]) -> None:
    chain = audit_log.Chain(conn)
    chain.add(None, events)
    chain.flush()


def operator(action: str, now: datetime, via: str, **data: Any) -> Event:
    return directory_event(action, now, via, **data)


def person(action: str, user: dict[str, Any], now: datetime, via: str, **data: Any) -> Event:
    return Event(action, user["name"], user["role"], now, data={"user": user["name"], **data, "via": via})


def anonymous(action: str, now: datetime, via: str, **data: Any) -> Event:
    return Event(action, "", "", now, data={**data, "via": via})
