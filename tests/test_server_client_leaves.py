"""A client that leaves before its request body is whole costs only its own request, quietly."""

from __future__ import annotations

import socket
import struct
import time

import httpx

from .server_process import serve_process


def test_a_client_leaving_mid_body_is_no_error_in_the_log(tiny_bundle):
    """Reset and plain close after half a body: starlette's ClientDisconnect is the client's doing,
    answered (to nobody) as 499, not logged as an unexpected error with a traceback."""
    with serve_process(tiny_bundle, "--threads", "1") as server:
        for how in ("reset", "close"):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(b"POST /embed HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"inputs\":")
            time.sleep(0.3)
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        deadline = time.monotonic() + 10
        while 'status="499"' not in httpx.get(f"{server.url}/metrics").text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert httpx.post(f"{server.url}/embed", json={"inputs": "still serving"}, timeout=30).status_code == 200
        assert 'layerwise_requests_total{route="/embed",status="499"} 2' in httpx.get(f"{server.url}/metrics").text
        assert "Traceback" not in server.stderr and "unexpected error" not in server.stderr, server.stderr[-3000:]
