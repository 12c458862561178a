"""The tamper-evident audit chain's canonical form and hash, fixed here in one place.

Every event's hash is SHA-256 over a canonical JSON serialisation of its fields and the
previous event's hash, so editing, dropping or reordering any stored event breaks the
chain from that event on. This is also what an offline verifier of an export recomputes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq", "case_id", "at", "actor", "role", "action", "trigger",
    "from_state", "to_state", "note", "data", "prev_hash",
)
# Keys of an event's data that say how it came, not what it did (SPEC §12: the CLI records
# `via` and the operating-system user on every event it writes); a replay passes them over.
ORIGIN_KEYS = frozenset({"via", "os_user"})


def format_instant(at: datetime) -> str:
    """The one text form of an instant inside the chain: UTC, microseconds, 'Z'.

    That is ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` of the UTC instant; `isoformat` writes the
    same text about three times as fast for four-digit years (strftime's ``%Y`` does not pad
    earlier years on every platform, so those keep the strftime path)."""
    utc = at.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# The canonical JSON encoder: what json.dumps(…, sort_keys=True, ensure_ascii=False,
# separators=(",", ":")) builds afresh for each call, built once.
CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed: the hashed fields as compact, key-sorted UTF-8 JSON."""
    body = {k: record[k] for k in HASHED_FIELDS}
    if isinstance(body["at"], datetime):
        body["at"] = format_instant(body["at"])
    return CANONICAL_JSON(body).encode()


def event_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()
