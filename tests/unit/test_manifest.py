"""Checking an exported JSONL against its manifest, offline (SPEC §7): what a reviewer who
was handed the two files learns from `duban.exports.manifest.verify_export` — every edit, drop,
swap or cut of a line is found and named, and a filtered export verifies as a slice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from duban.engine.audit import GENESIS, event_hash, format_instant
from duban.errors import IntegrityError, NotFoundError
from duban.exports.manifest import Manifest, dumps, manifest_path, sha256_file, verify_export

START = datetime(2027, 5, 10, 1, 0, tzinfo=UTC)


def chain(n: int) -> list[dict[str, Any]]:
    """A valid chain of n events over three cases, as the JSONL export writes them."""
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {"seq": seq, "case_id": seq % 3 + 1, "at": format_instant(START + timedelta(hours=seq)), "actor": "王督查",
             "role": "office", "action": "fire", "trigger": "accept", "from_state": "assigned",
             "to_state": "in_progress", "note": f"第{seq}次督办", "data": {"单位": "区发改局", "n": seq}, "prev_hash": prev}
        e["hash"] = prev = event_hash(e)
        events.append(e)
    return events


def write_export(path: Path, events: list[dict[str, Any]], *, whole_chain: bool) -> Path:
    """Write events as JSONL with a manifest beside it, as `audit export` does."""
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    manifest = Manifest(
        file=path.name, format="jsonl", created_at="2027-06-01T09:00:00+08:00", filters={}, whole_chain=whole_chain,
        rows=len(events), first_seq=events[0]["seq"] if events else None, last_seq=events[-1]["seq"] if events else None,
        first_prev_hash=events[0]["prev_hash"] if events else None, last_hash=events[-1]["hash"] if events else None,
        chain_head={"seq": events[-1]["seq"], "hash": events[-1]["hash"]} if whole_chain and events else None,
        sha256=sha256_file(path),
    )
    manifest_path(path).write_text(dumps(manifest), encoding="utf-8")
    return path


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[str]) -> None:
    path.write_text("".join(new_lines), encoding="utf-8")


@pytest.fixture
def whole(tmp_path: Path) -> Path:
    return write_export(tmp_path / "audit.jsonl", chain(10), whole_chain=True)


@pytest.fixture
def case_slice(tmp_path: Path) -> Path:
    """The events of case 2 only: seqs 1, 4, 7, 10 — a slice with gaps."""
    return write_export(tmp_path / "case2.jsonl", [e for e in chain(10) if e["case_id"] == 2], whole_chain=False)


class TestIntactExports:
    def test_whole_chain_verifies(self, whole: Path) -> None:
        """An untouched export matches its manifest: every event, the count, the ends and the bytes."""
        check = verify_export(whole)
        assert check.ok, check.problem
        assert (check.checked, check.rows, check.last_seq) == ("events", 10, 10)

    def test_filtered_export_verifies_as_a_slice(self, case_slice: Path) -> None:
        """A case's events are not adjacent in the chain, yet they verify on their own hashes."""
        check = verify_export(case_slice)
        assert check.ok, check.problem
        assert check.rows == 4

    def test_slice_of_consecutive_events_checks_the_links_between_them(self, tmp_path: Path) -> None:
        """Where sequence numbers are consecutive, each event must point at the one before."""
        events = chain(6)[2:5]
        events[1] = {**events[1], "prev_hash": "f" * 64}
        events[1]["hash"] = event_hash(events[1])  # re-hashed after the edit: only the link betrays it
        check = verify_export(write_export(tmp_path / "s.jsonl", events, whole_chain=False))
        assert (check.ok, check.seq, check.line) == (False, 4, 2)
        assert "previous-hash does not match event 3" in str(check.problem)

    def test_empty_export_verifies(self, tmp_path: Path) -> None:
        """A period with no events gives an empty file that still matches its manifest."""
        assert verify_export(write_export(tmp_path / "none.jsonl", [], whole_chain=False)).ok


class TestTamperedExports:
    def test_edited_line_is_named(self, whole: Path) -> None:
        """Changing a note in line 4 breaks that event's own hash: event 4, line 4."""
        text = lines(whole)
        text[3] = text[3].replace("第4次督办", "第4次督办（已改）")
        rewrite(whole, text)
        check = verify_export(whole)
        assert (check.ok, check.seq, check.line) == (False, 4, 4)
        assert "does not match its hash" in str(check.problem)
        assert "line 4, audit event 4" in check.message()

    def test_dropped_line_in_whole_chain_names_the_gap(self, whole: Path) -> None:
        """Without line 5 the chain jumps from event 4 to 6, and says event 5 is missing."""
        text = lines(whole)
        rewrite(whole, text[:4] + text[5:])
        check = verify_export(whole)
        assert (check.ok, check.seq) == (False, 6)
        assert "event 5 is missing" in str(check.problem)

    def test_dropped_line_in_slice_fails_the_count(self, case_slice: Path) -> None:
        """A slice has gaps anyway, so a dropped event shows in the manifest's count."""
        text = lines(case_slice)
        rewrite(case_slice, text[:1] + text[2:])
        check = verify_export(case_slice)
        assert not check.ok
        assert "3 events, its manifest says 4" in str(check.problem)

    @pytest.mark.parametrize("fixture", ["whole", "case_slice"])
    def test_swapped_pair_is_found(self, fixture: str, request: pytest.FixtureRequest) -> None:
        """Swapping two lines puts a sequence number out of order, in any export."""
        path: Path = request.getfixturevalue(fixture)
        text = lines(path)
        text[1], text[2] = text[2], text[1]
        rewrite(path, text)
        check = verify_export(path)
        assert not check.ok
        assert check.line in (2, 3)
        assert check.seq is not None

    def test_line_cut_short_is_named(self, whole: Path) -> None:
        """A copy that stopped in the middle of the last line: that line is not an event."""
        whole.write_bytes(whole.read_bytes()[:-40])
        check = verify_export(whole)
        assert (check.ok, check.line) == (False, 10)
        assert "not a valid JSON event" in str(check.problem)

    def test_last_lines_removed_fail_the_manifest(self, whole: Path) -> None:
        """Whole lines removed from the end leave a valid chain that the manifest does not match."""
        rewrite(whole, lines(whole)[:7])
        check = verify_export(whole)
        assert not check.ok
        assert "manifest mismatch" in str(check.problem)

    def test_manifest_that_does_not_match_its_file(self, whole: Path) -> None:
        """A manifest claiming another count (or belonging to another file) is a mismatch."""
        where = manifest_path(whole)
        raw = json.loads(where.read_text(encoding="utf-8"))
        raw["rows"] = 11
        where.write_text(json.dumps(raw), encoding="utf-8")
        check = verify_export(whole)
        assert not check.ok
        assert "10 events, its manifest says 11" in str(check.problem)

    def test_truncated_export_with_its_manifest_edited_to_match(self, whole: Path) -> None:
        """Cutting the last events and editing the manifest's count, end and SHA-256 to match still
        fails: an unfiltered export must end at the chain head its own manifest records (issue 11)."""
        rewrite(whole, lines(whole)[:7])
        where = manifest_path(whole)
        raw = json.loads(where.read_text(encoding="utf-8"))
        last = json.loads(lines(whole)[-1])
        raw.update(rows=7, last_seq=7, last_hash=last["hash"], sha256=sha256_file(whole))
        where.write_text(json.dumps(raw), encoding="utf-8")
        check = verify_export(whole)
        assert not check.ok
        assert "ends at event 7 and its manifest's chain head is event 10" in str(check.problem)
        raw["chain_head"] = None  # and with the head taken out of the manifest too
        where.write_text(json.dumps(raw), encoding="utf-8")
        assert "chain head is missing" in str(verify_export(whole).problem)

    def test_changed_bytes_fail_the_sha256(self, whole: Path) -> None:
        """Even a change that keeps every event valid (re-formatted JSON) changes the file's SHA-256."""
        rewrite(whole, [json.dumps(json.loads(line), ensure_ascii=True) + "\n" for line in lines(whole)])
        check = verify_export(whole)
        assert not check.ok
        assert "SHA-256" in str(check.problem)

    def test_csv_export_is_checked_by_its_sha256(self, tmp_path: Path) -> None:
        """CSV and XLSX are not re-hashed, but any change to their bytes is found."""
        path = tmp_path / "audit.csv"
        path.write_text("\ufeff序号,案件编号\n1,1\n", encoding="utf-8")
        m = Manifest(file=path.name, format="csv", created_at="", filters={}, whole_chain=True, rows=1, first_seq=1,
                     last_seq=1, first_prev_hash=GENESIS, last_hash="x", chain_head=None, sha256=sha256_file(path))
        manifest_path(path).write_text(dumps(m), encoding="utf-8")
        assert verify_export(path).ok
        path.write_text("\ufeff序号,案件编号\n1,2\n", encoding="utf-8")
        assert "SHA-256" in str(verify_export(path).problem)


class TestMissingOrBrokenFiles:
    def test_missing_manifest(self, whole: Path) -> None:
        """Without its manifest an export cannot be checked: not found (exit 3), naming the manifest."""
        manifest_path(whole).unlink()
        with pytest.raises(NotFoundError, match=r"audit\.jsonl\.manifest\.json is missing"):
            verify_export(whole)

    def test_missing_export(self, tmp_path: Path) -> None:
        with pytest.raises(NotFoundError, match="no such file"):
            verify_export(tmp_path / "nothing.jsonl")

    def test_manifest_that_is_not_json(self, whole: Path) -> None:
        """A damaged manifest is an integrity failure (exit 6)."""
        manifest_path(whole).write_text("{not json", encoding="utf-8")
        with pytest.raises(IntegrityError, match="not valid JSON"):
            verify_export(whole)

    def test_manifest_missing_fields(self, whole: Path) -> None:
        manifest_path(whole).write_text('{"rows": 10}', encoding="utf-8")
        with pytest.raises(IntegrityError, match=r"missing .*sha256"):
            verify_export(whole)


def line_by_line(path: Path) -> tuple[Any, ...]:
    """The check as it was made line by line (json.loads, then event_hash), for comparison."""
    from duban.exports.manifest import _FIELDS, read_manifest

    m = read_manifest(path)
    prev_seq, prev_hash, rows, last = None, GENESIS if m.whole_chain else m.first_prev_hash, 0, (None, None)
    for line, raw in enumerate(path.read_bytes().split(b"\n")[:-1] if path.read_bytes().endswith(b"\n")
                               else path.read_bytes().split(b"\n"), 1):
        try:
            e = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ("not a valid JSON event", line, None)
        if not isinstance(e, dict) or any(f not in e for f in _FIELDS) or type(e["seq"]) is not int:
            return ("malformed", line, e.get("seq") if isinstance(e, dict) and type(e.get("seq")) is int else None)
        seq = e["seq"]
        if event_hash(e) != e["hash"]:
            return ("does not match its hash", line, seq)
        if prev_seq is not None and (seq <= prev_seq or (seq == prev_seq + 1 and e["prev_hash"] != prev_hash)):
            return ("link", line, seq)
        prev_seq, prev_hash, rows, last = seq, e["hash"], rows + 1, (seq, e["hash"])
    return ("ok", rows, last)


def as_tuple(path: Path) -> tuple[Any, ...]:
    check = verify_export(path)
    if check.line is None:
        return ("ok", check.rows, (check.last_seq, check.last_hash))
    problem = str(check.problem)
    malformed = ("not a JSON object", "lacks", "not a whole number")
    kind = next((k for k in ("not a valid JSON event", "does not match its hash") if k in problem),
                "malformed" if any(k in problem for k in malformed) else "link")
    return (kind, check.line, check.seq)


AWKWARD_LINES = {
    "invalid UTF-8 in a line": lambda b: b.replace("第5次".encode(), b"\xff\xfe", 1),
    "Windows line ends": lambda b: b.replace(b"\n", b"\r\n"),
    "spaces around a line": lambda b: b.replace(b'{"seq": 3', b'  {"seq": 3', 1).replace(b'}\n{"seq": 4', b'} \t\n{"seq": 4', 1),
    "a byte-order mark": lambda b: b"\xef\xbb\xbf" + b,
    "U+2028 in a note": lambda b: b.replace("第2次".encode(), "第2\u2028次".encode(), 1),
    "a blank line": lambda b: b.replace(b'\n{"seq": 6', b'\n\n{"seq": 6', 1),
    "a line that is an array": lambda b: b.replace(b"\n", b"\n[1, 2]\n", 1),
    "a NUL byte": lambda b: b.replace(b'{"seq": 7', b'{"seq": 7\x00', 1),
    "a sequence number as text": lambda b: b.replace(b'{"seq": 8,', b'{"seq": "8",', 1),
    "a field removed": lambda b: b.replace(b', "role": "office"', b"", 1),
    "no newline at the end": lambda b: b[:-1],
    "two values on a line": lambda b: b.replace(b"}\n", b"} {}\n", 1),
}


@pytest.mark.parametrize("edit", list(AWKWARD_LINES))
def test_chunked_check_answers_as_line_by_line(whole: Path, edit: str) -> None:
    """However a line is damaged, the chunked check names the same line and event as a line-by-line one."""
    whole.write_bytes(AWKWARD_LINES[edit](whole.read_bytes()))
    assert as_tuple(whole) == line_by_line(whole)
