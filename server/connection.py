"""uvicorn's HTTP protocol with the read deadlines it lacks: slow or silent clients cannot hold connections.

uvicorn closes a keep-alive connection that stays idle after a response (``timeout_keep_alive``)
but waits forever for a new connection's first byte and for the rest of a request's head.
Here a connection that sends nothing for ``keep_alive_timeout`` seconds is closed, and a
request whose head (request line and headers) is not complete ``header_timeout`` seconds
after its first byte gets a 408 and the connection is closed. The body's deadline is the
app's (routes.read_body), which knows when it starts reading. Not handled here: routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

TIMEOUT_BODY = (
    b'{"error":"request head (request line and headers) not complete in time (--header-timeout); send it at once","error_type":"timeout"}'
)
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(TIMEOUT_BODY)).encode() + b"\r\n\r\n" + TIMEOUT_BODY
)


def protocol_with_deadlines(header_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's own protocol class (httptools, else h11) with the deadlines above; uvicorn's
    ``timeout_keep_alive`` is the idle deadline, also for a new connection."""

    class Deadlines(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # uvicorn arms this only after a response; the first data_received cancels it
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if self._head_deadline is None and (cycle is None or cycle.response_complete):  # a new request's first bytes
                self._head_deadline = self.loop.call_later(header_timeout, self._head_too_slow)
            super().data_received(data)
            if self.cycle is not cycle:  # the head is complete: the request now runs
                self._cancel_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def _cancel_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing():
                self.transport.write(TIMEOUT_RESPONSE)
                self.transport.close()

    return Deadlines
