"""The audit chain a batch at a time (SPEC §7, §11): `canonical_batch` writes exactly the
bytes `canonical` writes, for any values (awkward text, None, nested data, instants in any
zone and year), and `verify_chain` over batches gives exactly the answer it gives over
records — the same count, head and first break — for every kind of tampering."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from duban.engine.audit import (
    GENESIS,
    HASHED_FIELDS,
    EventBatch,
    JsonRows,
    batch_hashes,
    batch_of,
    canonical,
    canonical_batch,
    event_hash,
    format_instant,
    json_values,
    verify_chain,
)
from duban.engine.audit.columns import _SENTINEL
from duban.exports.writers import CsvRows, jsonl_lines

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
AWKWARD = ["", "退回重办", 'say "hi"', "back\\slash", "line\nbreak", "tab\t", "\x00nul", "\x1f", "\u3000全角空格",
           "a,b", "\r\n", "emoji 😀", "\u2028", _SENTINEL, "None", "null", "%s %d %%"]

texts = st.one_of(st.sampled_from(AWKWARD), st.text())
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts)
json_data = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(texts, inner, max_size=4)), max_leaves=12)
instants = st.one_of(  # hypothesis takes naive bounds
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),  # noqa: DTZ001
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.timezones()),  # noqa: DTZ001
    st.sampled_from([format_instant(T0), "2026-03-02T01:00:00.000000Z"]),  # already the chain's text (exports)
)


def event(seq: int, prev_hash: str, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "seq": seq, "case_id": seq % 3 + 1, "at": T0 + timedelta(hours=seq), "actor": "王督查", "role": "office",
        "action": "fire", "trigger": "accept", "from_state": "assigned", "to_state": "in_progress",
        "note": f"第{seq}条", "data": {"单位": "区发改局", "n": seq}, "prev_hash": prev_hash,
    }
    e.update(over)
    e["hash"] = event_hash(e)
    return e


records = st.builds(
    lambda seq, case_id, at, actor, role, action, trigger, from_state, to_state, note, data, prev: {
        "seq": seq, "case_id": case_id, "at": at, "actor": actor, "role": role, "action": action, "trigger": trigger,
        "from_state": from_state, "to_state": to_state, "note": note, "data": data, "prev_hash": prev, "hash": "h"},
    st.integers(), st.one_of(st.none(), st.integers()), instants, texts, texts, texts,
    st.one_of(st.none(), texts), st.one_of(st.none(), texts), st.one_of(st.none(), texts), texts, json_data,
    st.one_of(st.just(GENESIS), texts),
)


class TestTheSameBytes:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(records, min_size=1, max_size=8))
    @example([{**event(1, GENESIS), "note": "", "trigger": None, "from_state": None, "to_state": None, "case_id": None,
               "data": {}}])
    def test_canonical_batch_is_canonical_of_each(self, batch: list[dict[str, Any]]) -> None:
        """Any values, mixed in one batch: each event's bytes are exactly `canonical`'s."""
        assert canonical_batch(batch_of(batch)) == [canonical(r) for r in batch]

    @pytest.mark.parametrize("value", [
        1, 1.5, True, None, ["a"], {"k": "v"}, float("nan")])
    def test_a_value_of_another_type_in_a_text_field_is_written_as_canonical_writes_it(self, value: Any) -> None:
        """A text field holding a number, a boolean or a list (a JSON export edited by hand) still matches."""
        batch = [event(1, GENESIS), {**event(2, GENESIS), "actor": value, "role": value}]
        assert canonical_batch(batch_of(batch)) == [canonical(r) for r in batch]

    def test_a_value_json_cannot_write_raises_like_canonical(self) -> None:
        """Bytes in a field: `canonical` raises TypeError, and so does the batch."""
        bad = {**event(1, GENESIS), "note": b"raw"}
        with pytest.raises(TypeError):
            canonical(bad)
        with pytest.raises(TypeError):
            canonical_batch(batch_of([event(2, GENESIS), bad]))

    def test_hashes_are_event_hash(self) -> None:
        chain = [event(1, GENESIS), event(2, "x" * 64)]
        assert batch_hashes(batch_of(chain)) == [e["hash"] for e in chain]

    @given(st.lists(json_data, max_size=6))
    @example([_SENTINEL, [1, _SENTINEL, 2]])  # the sentinel inside a value: encoded one by one
    def test_json_values_are_each_encoded_alone(self, values: list[Any]) -> None:
        """One encoder call for the column gives each value's own text, whatever the encoder."""
        for encoder, sep in ((json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True), ","),
                             (json.JSONEncoder(ensure_ascii=False, separators=(",", ":")), ","),
                             (json.JSONEncoder(ensure_ascii=False, sort_keys=True), ", ")):
            assert json_values(values, encoder.encode, sep) == [encoder.encode(v) for v in values]


def jsonl_line(e: dict[str, Any]) -> str:
    """A JSONL line as the exporter wrote it event by event before it wrote batches."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def text(v: str | None) -> str:
        return "null" if v is None else encode_basestring(v)

    return (
        f'{{"seq":{e["seq"]},"case_id":{"null" if e["case_id"] is None else int(e["case_id"])},'
        f'"at":"{format_instant(e["at"])}",'
        f'"actor":{text(e["actor"])},"role":{text(e["role"])},"action":{text(e["action"])},"trigger":{text(e["trigger"])},'
        f'"from_state":{text(e["from_state"])},"to_state":{text(e["to_state"])},"note":{text(e["note"])},'
        f'"data":{encode(e["data"])},"prev_hash":{text(e["prev_hash"])},"hash":{text(e["hash"])}}}\n'
    )


str_records = records.filter(lambda r: isinstance(r["at"], datetime) and all(
    r[k] is None or isinstance(r[k], str) for k in ("actor", "role", "action", "trigger", "from_state", "to_state", "note")))


class TestExportLines:
    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(st.lists(str_records, min_size=1, max_size=6))
    def test_jsonl_lines_are_the_event_by_event_lines(self, batch: list[dict[str, Any]]) -> None:
        """The batch writer writes the very lines the event-by-event writer wrote, and each re-hashes."""
        assert jsonl_lines(batch_of(batch)) == "".join(map(jsonl_line, batch))
        for line, e in zip(jsonl_lines(batch_of(batch)).split("\n")[:-1], batch, strict=True):  # not splitlines: U+2028
            assert event_hash(json.loads(line)) == event_hash(e)

    @given(st.lists(st.tuples(st.integers(), st.one_of(st.none(), st.integers()), st.one_of(st.none(), texts), texts),
                    min_size=1, max_size=6))
    @example([(1, None, "", "x"), (2, 3, None, "a,b")])
    def test_csv_rows_are_what_csv_writer_writes(self, rows: list[tuple[Any, ...]]) -> None:
        """Quoting, doubled quotes, line breaks and empty fields exactly as the csv module writes them."""
        expected = io.StringIO()
        csv.writer(expected).writerows(rows)
        assert CsvRows().rows(list(zip(*rows, strict=True))) == expected.getvalue()

    def test_csv_rows_of_other_values_go_through_the_csv_module(self) -> None:
        rows = [(1.5, True, "x"), (None, False, 'q"')]
        expected = io.StringIO()
        csv.writer(expected).writerows(rows)
        assert CsvRows().rows(list(zip(*rows, strict=True))) == expected.getvalue()


def test_json_rows_quotes_only_plain_text() -> None:
    """A text column with something to escape is encoded; a plain one goes in as it is."""
    rows = JsonRows([("a", "text"), ("b", "text"), ("n", "int")])
    assert list(rows.rows([["x", "y"], ['q"', None], [1, None]])) == ['{"a":"x","b":"q\\"","n":1}', '{"a":"y","b":null,"n":null}']


# -- verification over batches -----------------------------------------------------------
class Batched:
    """Records offered a batch at a time, as the database reader offers them."""

    def __init__(self, events: list[dict[str, Any]], size: int) -> None:
        self.events, self.size = events, size

    def batches(self) -> Iterator[EventBatch]:
        for i in range(0, len(self.events), self.size):
            yield batch_of(self.events[i:i + self.size])


def chain(n: int = 12) -> list[dict[str, Any]]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = event(seq, prev)
        out.append(e)
        prev = e["hash"]
    return out


def edited_note(c: list[dict[str, Any]]) -> None:
    c[6]["note"] = "改过的说明"


def edited_and_rehashed(c: list[dict[str, Any]]) -> None:
    c[6]["actor"] = "someone_else"
    c[6]["hash"] = event_hash(c[6])


def dropped(c: list[dict[str, Any]]) -> None:
    del c[6]


def swapped(c: list[dict[str, Any]]) -> None:
    c[6], c[7] = c[7], c[6]


def forged_start(c: list[dict[str, Any]]) -> None:
    c[0] = event(1, "f" * 64)


def edited_data(c: list[dict[str, Any]]) -> None:
    c[11]["data"] = {"单位": "区发改局", "n": 99}


def edited_instant(c: list[dict[str, Any]]) -> None:
    c[0]["at"] = c[0]["at"] + timedelta(microseconds=1)


def edited_hash(c: list[dict[str, Any]]) -> None:
    c[3]["hash"] = c[3]["hash"].upper()


def unencodable(c: list[dict[str, Any]]) -> None:
    c[9]["note"] = b"not text"  # canonical raises TypeError: an earlier break still comes first


TAMPERINGS = [None, edited_note, edited_and_rehashed, dropped, swapped, forged_start, edited_data, edited_instant,
              edited_hash]


class TestVerifyInBatches:
    @pytest.mark.parametrize("size", [1, 2, 5, 7, 100])
    @pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: getattr(f, "__name__", "intact"))
    def test_same_answer_as_event_by_event(self, tamper: Any, size: int) -> None:
        """Count, head and the first break (its event and reason) are the same, wherever the break falls in a batch."""
        events = chain()
        if tamper is not None:
            tamper(events)
        expected = verify_chain(events)
        assert verify_chain(Batched(events, size)) == expected
        assert (expected[2] is None) == (tamper is None)

    @pytest.mark.parametrize("size", [1, 3, 100])
    def test_a_slice_verifies_from_its_own_first_link(self, size: int) -> None:
        events = [e for e in chain() if e["case_id"] == 2]
        expected = verify_chain(events, prev_hash=None, first_seq=None)
        assert verify_chain(Batched(events, size), prev_hash=None, first_seq=None) == expected
        consecutive = chain()[4:]
        assert verify_chain(Batched(consecutive, size), prev_hash=None, first_seq=None) == (8, consecutive[-1]["hash"], None)

    @pytest.mark.parametrize("size", [1, 4, 100])
    def test_a_value_that_cannot_be_hashed_is_met_in_order(self, size: int) -> None:
        """An earlier break is named first; otherwise the error surfaces, as event by event."""
        events = chain()
        unencodable(events)
        with pytest.raises(TypeError):
            verify_chain(events)
        with pytest.raises(TypeError):
            verify_chain(Batched(events, size))
        edited_note(events)  # event 7, before the bad one
        assert verify_chain(Batched(events, size)) == verify_chain(events)

    def test_an_empty_source_verifies(self) -> None:
        assert verify_chain(Batched([], 5)) == (0, GENESIS, None)


def test_every_hashed_field_is_in_a_batch() -> None:
    assert set(HASHED_FIELDS) < set(EventBatch.__dataclass_fields__)


def test_the_collector_is_paused_only_while_verifying() -> None:
    """verify_chain pauses the cyclic collector over the batches and turns it back on, even after an error."""
    import gc

    seen: list[bool] = []

    class Watching(Batched):
        def batches(self) -> Iterator[EventBatch]:
            for b in super().batches():
                seen.append(gc.isenabled())
                yield b

    events = chain()
    assert verify_chain(Watching(events, 5))[2] is None
    unencodable(events)
    with pytest.raises(TypeError):
        verify_chain(Watching(events, 5))
    assert seen and not any(seen)
    assert gc.isenabled()
