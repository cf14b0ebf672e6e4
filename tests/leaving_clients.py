"""Clients that leave at the worst moment, for the disconnect tests (it holds no tests).

``leave(server, path, point, how)`` sends one of ``REQUESTS`` to a running ``layerwise serve``
(tests/server_process.py) and drops the connection ``how`` (HOWS) at ``point`` (POINTS):
before the body, mid-body, while the request's run is held at the rig's gate (its work, on
/tokenize), or mid-response, with a 4 kB receive buffer so the server is still writing.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from .server_process import ServerProcess

BATCH = 4096  # the --max-client-batch-size REQUESTS need
LONG = ["word " * 400] * 80  # per token, cut to the model maximum
# Requests whose answers (6-7 MB) are more than the kernel's socket buffers take (tcp_wmem's
# 4 MB), so the server is still writing when the client leaves: with SIGPIPE at its default,
# each of these ended the server (exit 141); at 2.5 MB the answer fit and none did.
REQUESTS = {
    "/embed": {"inputs": LONG, "truncate": True, "pool": "none"},
    "/embed_all": {"inputs": LONG, "truncate": True},
    "/v1/embeddings": {"input": [f"text number {i}" for i in range(BATCH)], "layers": [0, -1], "combine": "concat"},
    "/tokenize": {"inputs": LONG * 3},
}
RUNS = ("/embed", "/embed_all", "/v1/embeddings")  # the routes with a batched run (a rig's gate holds it)
POINTS = ("before_body", "mid_body", "while_running", "mid_response")
HOWS = ("reset", "half_close", "vanish")


def leave(server: ServerProcess, path: str, point: str, how: str) -> None:
    """Send REQUESTS[path] and drop the connection at ``point``; ``while_running`` on a route in
    RUNS needs a server rigged with a gate (``rig={"gate": True, "runs": True}``)."""
    body = json.dumps(REQUESTS[path]).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = _head(path, len(body)) + body
    if point == "before_body":
        sock.sendall(_head(path, len(body)))
        time.sleep(0.2)  # the head is parsed: the route waits for the body
    elif point == "mid_body":
        sock.sendall(request[: len(request) - len(body) // 2])
        time.sleep(0.2)
    elif point == "while_running" and path in RUNS:
        server.close_gate()
        runs = len(server.runs())
        sock.sendall(request)
        _wait_until(lambda: len(server.runs()) > runs, f"the run of {path} never started")
    elif point == "while_running":  # /tokenize has no run: leave once its body is read, while its tokens are made
        sock.sendall(request)
        _wait_until(lambda: _unread(sock) == 0, "the server never read the body")
        time.sleep(0.05)  # the last 64 kB uvicorn holds for the app
    else:  # mid_response: the server is blocked writing a response nobody reads
        sock.sendall(request)
        assert sock.recv(1) == b"H"
        time.sleep(0.3)
    _drop(sock, how)
    if point == "while_running" and path in RUNS:
        server.open_gate()


def _head(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n".encode()


def _drop(sock: socket.socket, how: str) -> None:
    """``reset`` (RST), ``half_close`` (FIN, then read what comes for half a second, then close) or
    ``vanish`` (close; the kernel resets if data is unread)."""
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif how == "half_close":
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 0.5
        try:
            while time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                if not sock.recv(1 << 20):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    sock.close()


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def _unread(sock: socket.socket) -> int:
    """Bytes of this connection in flight or in the server's receive queue, not yet read by the
    server process (from /proc/net/tcp: the client's tx_queue plus the server side's rx_queue)."""
    client, server = (f"0100007F:{port:04X}" for port in (sock.getsockname()[1], sock.getpeername()[1]))
    unread = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, _, queues = line.split()[1:5]
        tx, rx = (int(q, 16) for q in queues.split(":"))
        if (local, remote) == (client, server):
            unread += tx
        elif (local, remote) == (server, client):
            unread += rx
    return unread
