"""uvicorn's HTTP protocol, sending each response's head and body in one socket write.

uvicorn writes a response's status line and headers as soon as the app starts the response,
and its body in a second write. Each write is a system call that wakes the client; on the
2-core VM of bench/http.py the two writes of every answer were a third of the server's time
for a case read, and sending both in one write took 14–17 % off the server's CPU for a read
and for a fired trigger alike. So each request's first write (its head) is held until the
body's first write, or until the response ends without one (HEAD, 204), or the connection
closes. A `100 Continue` interim answer is never held: the client waits for it.

This leans on two attributes of uvicorn's `RequestResponseCycle` (`transport` and
`on_response`); tests/web/test_http_protocol.py checks them against the installed
uvicorn through a real server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CONTINUE = b"HTTP/1.1 100 "


class HeadHeld:
    """A request's view of the connection's transport: its first write (the response head)
    waits for the next one, or for `flush`, and the two go out as one."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first and not data.startswith(CONTINUE):
            self._first, self._head = False, data
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, …: the connection's own
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, each request's transport a `HeadHeld` (module level:
    `--workers N` hands the class to its worker processes by name)."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is before or cycle is None:  # an upgrade: no request cycle of its own
            return
        held = HeadHeld(self.transport)
        cycle.transport = held  # type: ignore[assignment]
        done = cycle.on_response

        def finished() -> None:  # a response that wrote no body (HEAD, 204): its head goes now
            held.flush()
            done()

        cycle.on_response = finished
