"""The tamper-evident audit chain (SPEC §7): its canonical form and hash, and that
verification finds the first edited, dropped or reordered event."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from duban.engine.audit import GENESIS, HASHED_FIELDS, canonical, event_hash, format_instant, verify_chain

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def record(seq: int, prev_hash: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seq": seq, "case_id": 1, "at": T0 + timedelta(hours=seq), "actor": "wang", "role": "office",
        "action": "fire", "trigger": "accept", "from_state": "assigned", "to_state": "in_progress",
        "note": "", "data": {}, "prev_hash": prev_hash,
    }
    base.update(over)
    base["hash"] = event_hash(base)
    return base


def chain(n: int = 5) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        rec = record(seq, prev, note=f"第{seq}条")
        out.append(rec)
        prev = rec["hash"]
    return out


class TestCanonicalForm:
    def test_canonical_bytes_are_sorted_compact_utf8(self) -> None:
        """The hashed bytes are key-sorted compact JSON, Chinese kept as UTF-8, the instant in UTC with 'Z'."""
        rec = {
            "seq": 1, "case_id": 7, "at": datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
            "actor": "wang", "role": "office", "action": "fire", "trigger": "reject", "from_state": "reported",
            "to_state": "in_progress", "note": "退回重办", "data": {"b": 1, "a": [1, 2]}, "prev_hash": GENESIS,
            "hash": "ignored", "id": "ignored too",
        }
        expected = (
            '{"action":"fire","actor":"wang","at":"2026-03-02T01:00:00.000000Z","case_id":7,'
            '"data":{"a":[1,2],"b":1},"from_state":"reported","note":"退回重办","prev_hash":"' + GENESIS + '",'
            '"role":"office","seq":1,"to_state":"in_progress","trigger":"reject"}'
        ).encode()
        assert canonical(rec) == expected
        assert event_hash(rec) == hashlib.sha256(expected).hexdigest()

    def test_the_same_instant_in_any_zone_hashes_the_same(self) -> None:
        """An event read back in UTC or shown in Beijing time verifies alike."""
        utc = record(1, GENESIS, at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
        bj = record(1, GENESIS, at=datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert utc["hash"] == bj["hash"]

    def test_an_exported_instant_string_hashes_like_the_datetime(self) -> None:
        """JSONL exports carry the instant as format_instant text and still verify offline."""
        rec = record(1, GENESIS)
        exported = {**rec, "at": format_instant(rec["at"])}
        assert event_hash(exported) == rec["hash"]

    @pytest.mark.parametrize("field", [f for f in HASHED_FIELDS if f != "seq"])
    def test_every_hashed_field_counts(self, field: str) -> None:
        """Changing any hashed field changes the hash (who, when, what, why, and the link)."""
        rec = record(1, GENESIS)
        changed = dict(rec)
        changed[field] = {"x": 1} if field == "data" else (rec["at"] + timedelta(seconds=1) if field == "at" else "x")
        assert event_hash(changed) != rec["hash"]


class TestVerify:
    def test_an_intact_chain_verifies(self) -> None:
        """All events check, and the head is the last event's hash."""
        events = chain()
        assert verify_chain(events) == (5, events[-1]["hash"], None)

    def test_an_empty_chain_verifies(self) -> None:
        """A fresh database has nothing to break."""
        assert verify_chain([]) == (0, GENESIS, None)

    def test_an_edited_note_is_found(self) -> None:
        """Editing event 3's note breaks it, naming seq 3 as edited."""
        events = chain()
        events[2]["note"] = "改过的说明"
        count, head, broken = verify_chain(events)
        assert broken is not None and broken.seq == 3
        assert "edited" in broken.reason
        assert (count, head) == (2, events[1]["hash"])
        assert str(broken).startswith("audit event 3:")

    def test_an_edited_event_with_a_fresh_hash_is_found_at_the_next(self) -> None:
        """Re-hashing an edited event does not help: the next event's link no longer matches."""
        events = chain()
        events[2]["actor"] = "someone_else"
        events[2]["hash"] = event_hash(events[2])
        _, _, broken = verify_chain(events)
        assert broken is not None and broken.seq == 4
        assert "previous-hash" in broken.reason

    def test_a_dropped_event_is_found(self) -> None:
        """Deleting event 3 is found at event 4 (a sequence number is missing)."""
        events = chain()
        del events[2]
        _, _, broken = verify_chain(events)
        assert broken is not None and broken.seq == 4
        assert "missing" in broken.reason

    def test_reordered_events_are_found(self) -> None:
        """Swapping events 3 and 4 is found at the first one out of place."""
        events = chain()
        events[2], events[3] = events[3], events[2]
        _, _, broken = verify_chain(events)
        assert broken is not None and broken.seq == 4

    def test_a_chain_not_starting_at_genesis_is_found(self) -> None:
        """The first event must point at the genesis hash."""
        events = chain()
        forged = [record(1, "f" * 64), *events[1:]]
        _, _, broken = verify_chain(forged)
        assert broken is not None and broken.seq == 1

    def test_a_slice_verifies_from_its_own_first_link(self) -> None:
        """An export filtered to events 3-5 verifies on its own when told it is a slice."""
        events = chain()
        assert verify_chain(events[2:], prev_hash=None, first_seq=None) == (3, events[-1]["hash"], None)
