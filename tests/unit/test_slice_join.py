"""A chain checked in slices and joined (`SliceJoin`, what parallel `audit verify` does) gives
exactly what one walk over the whole chain gives: count, last good hash, first break and its
reason — for every kind of tampering, wherever the cuts between slices fall."""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations, pairwise
from typing import Any

import pytest

from duban.engine.audit import GENESIS, SliceCheck, SliceJoin, event_hash, verify_chain
from tests.unit.test_audit_chain import chain

Records = list[dict[str, Any]]


def check(part: Records) -> SliceCheck:
    count, last, broken = verify_chain(part, prev_hash=None, first_seq=None)
    first = part[0] if part else None
    return SliceCheck(count, last, broken, first["seq"] if first else None, first["prev_hash"] if first else None)


def joined(records: Records, cuts: tuple[int, ...]) -> tuple[int, str | None, Any]:
    """Slices of ``records`` between ``cuts`` (positions in the list), each checked alone, then joined."""
    bounds = [0, *cuts, len(records)]
    join = SliceJoin()
    for a, b in pairwise(bounds):
        if join.add(check(records[a:b])):
            break
    return join.result()


def edited(records: Records, i: int) -> Records:
    out = [dict(r) for r in records]
    out[i]["note"] = "改过"
    return out


def edited_and_rehashed(records: Records, i: int) -> Records:
    out = edited(records, i)
    out[i]["hash"] = event_hash(out[i])
    return out


def hash_edited(records: Records, i: int) -> Records:
    out = [dict(r) for r in records]
    out[i]["hash"] = "f" * 64
    return out


def link_forged(records: Records, i: int) -> Records:
    """The previous-hash changed and the event re-hashed: only the link shows it."""
    out = [dict(r) for r in records]
    out[i]["prev_hash"] = "e" * 64
    out[i]["hash"] = event_hash(out[i])
    return out


def dropped(records: Records, i: int) -> Records:
    return records[:i] + records[i + 1:]


def swapped(records: Records, i: int) -> Records:
    """Two neighbours' contents exchanged, each keeping its sequence number."""
    out = [dict(r) for r in records]
    j = min(i + 1, len(out) - 1) if i + 1 < len(out) else i - 1
    for key in out[i]:
        if key != "seq":
            out[i][key], out[j][key] = records[j][key], records[i][key]
    return out


def reordered(records: Records, i: int) -> Records:
    """Two neighbours read in the wrong order (as a list of records can be)."""
    out = list(records)
    j = i + 1 if i + 1 < len(out) else i - 1
    out[i], out[j] = out[j], out[i]
    return out


def renumbered(records: Records, i: int) -> Records:
    """A sequence number changed (the event re-hashed): a gap, or a number below 1 at the start."""
    out = [dict(r) for r in records]
    out[i]["seq"] = 0 if i == 0 else out[i]["seq"] + 100
    out[i]["hash"] = event_hash(out[i])
    return out


def duplicated(records: Records, i: int) -> Records:
    return records[:i + 1] + records[i:]


def truncated(records: Records, i: int) -> Records:
    """The chain's end cut off: no break, a shorter chain."""
    return records[:i]


TAMPERINGS: list[Callable[[Records, int], Records]] = [
    edited, edited_and_rehashed, hash_edited, link_forged, dropped, swapped, reordered, renumbered, duplicated,
    truncated]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_slices_joined_answer_as_one_walk(tamper: Callable[[Records, int], Records]) -> None:
    """Every tampered position, with every one or two cuts (at, before and after it): the same answer."""
    intact = chain(9)
    for i in range(len(intact)):
        records = tamper(intact, i)
        whole = verify_chain(records)
        for n in (1, 2):
            for cuts in combinations(range(1, len(records)), n):
                assert joined(records, cuts) == whole, (tamper.__name__, i, cuts)


def test_an_intact_chain_and_empty_slices() -> None:
    """Empty slices anywhere (a range with no events) change nothing; no slices at all is the empty chain."""
    records = chain(6)
    whole = verify_chain(records)
    assert whole == (6, records[-1]["hash"], None)
    join = SliceJoin()
    for part in (records[:0], records[:2], records[2:2], records[2:5], records[5:], records[6:]):
        join.add(check(part))
    assert join.result() == whole
    assert SliceJoin().result() == verify_chain([]) == (0, GENESIS, None)


def test_an_emptied_middle_slice_is_found_at_the_next_event() -> None:
    """All events of a middle range deleted: the next range's first event is out of sequence, as walking finds it."""
    records = chain(9)
    gone = records[:3] + records[6:]
    whole = verify_chain(gone)
    assert whole[2] is not None and whole[2].seq == 7
    join = SliceJoin()
    for part in (gone[:3], [], gone[3:]):
        join.add(check(part))
    assert join.result() == whole
