"""`duban serve` sends each answer's head and body in one write (duban.web.http_protocol),
and every kind of answer still arrives whole: a GET, a HEAD (no body to carry the head), two
pipelined requests, a `100 Continue` before a body, a fired trigger's JSON."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from duban.web.http_protocol import HeadHeld
from tests.conftest import Duban
from tests.web.test_serve import _token, serving


class Recorded:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_head_goes_out_with_its_body_in_one_write() -> None:
    sent = Recorded()
    held = HeadHeld(sent)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert sent.writes == []
    held.write(b"{}")
    assert sent.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    held.write(b"more")  # a streamed body's later chunks go as they come
    assert sent.writes[-1] == b"more"
    assert held.is_closing() is False  # anything else is the connection's own


def test_a_head_without_a_body_goes_when_flushed_or_closed() -> None:
    sent = Recorded()
    held = HeadHeld(sent)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it: never held
    assert sent.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    held.flush()
    assert sent.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"
    other = Recorded()
    closing = HeadHeld(other)  # type: ignore[arg-type]
    closing.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    closing.close()
    assert other.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and other.closed


def _exchange(base: str, *sends: bytes, heads_only: int = 0, answers: int = 1) -> list[tuple[bytes, bytes]]:
    """Send each of `sends` in turn on one connection, the next one after an answer more has
    come; return the answers once there are `answers` (the first `heads_only` have no body)."""
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=10) as s:
        got, pending = b"", list(sends)
        while True:
            if pending and len(_split(got, heads_only)) >= len(sends) - len(pending):
                s.sendall(pending.pop(0))
            found = _split(got, heads_only)
            if len(found) >= answers and not pending:
                return found
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {got!r}"
            got += chunk


def _split(data: bytes, heads_only: int) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        if len(out) >= heads_only and not head.startswith(b"HTTP/1.1 100 "):
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
        if len(rest) < length:
            break
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


def test_every_kind_of_answer_arrives_whole_from_the_real_server(duban: Duban) -> None:
    auth = f"Authorization: {_token(duban, 'wang')['Authorization']}\r\n".encode()
    me = b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    case = duban.ok("case", "open", "supervision", "--title", "一次写出", "--unit", "区发改局", "--due", "10wd",
                    "--json", now="2027-03-01T09:00", actor="wang").json
    with serving(duban.db_url, "--insecure-cookies") as base:
        [(head, body)] = _exchange(base, me)
        assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["name"] == "wang"

        # HEAD: a head alone, sent when the response ends (no body write to carry it)
        [(head, _)] = _exchange(base, b"HEAD /static/duban.css HTTP/1.1\r\nHost: x\r\n\r\n", heads_only=1)
        assert head.startswith(b"HTTP/1.1 200 ")

        # a HEAD and a GET in one packet (pipelined): both answered, in order
        (first, _), (second, body) = _exchange(base, b"HEAD /static/duban.css HTTP/1.1\r\nHost: x\r\n\r\n" + me,
                                               heads_only=1, answers=2)
        assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 ")
        assert json.loads(body)["name"] == "wang"

        # Expect: 100-continue: the interim answer comes before the client sends its body
        fire = json.dumps({"trigger": "watch"}).encode()
        (interim, _), (head, body) = _exchange(
            base, f"POST /api/v1/cases/{case['id']}/fire HTTP/1.1\r\nHost: x\r\n".encode() + auth
            + f"Content-Type: application/json\r\nContent-Length: {len(fire)}\r\nExpect: 100-continue\r\n\r\n".encode(),
            fire, answers=2)
        assert interim.startswith(b"HTTP/1.1 100 ")
        assert head.startswith(b"HTTP/1.1 200 ")
        shown = json.loads(body)
        assert shown["id"] == case["id"] and shown["step"]["trigger"] == "watch"
