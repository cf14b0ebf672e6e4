"""``layerwise serve`` as a process: a client that resets its connection mid-response costs only
its own request (SIGPIPE at its default once ended the whole server with exit 141), and a log
reader that went away does not stop the server."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import time

import httpx
import pytest

from .server_process import LAYERWISE, free_port, serve_process

LONG = ["word " * 400] * 32  # per token, cut to the model maximum: megabytes the server is still writing when the client resets
PER_TOKEN = {"truncate": True, "layers": "all", "pool": "none"}


def _reset_while_answered(port: int, path: str, body: dict) -> None:
    """Send a request, read one byte of the answer, then reset the connection (RST, not FIN)."""
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n".encode() + payload
    )
    assert sock.recv(1) == b"H"
    time.sleep(0.3)  # the server is now blocked writing a response nobody reads
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_the_event_loop_under_test_is_uvloop_as_in_production():
    import uvloop  # noqa: F401 - uvicorn's "auto" loop picks it when installed (uvicorn[standard])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/embed_all", {"inputs": LONG, "truncate": True}),
        ("/embed", {"inputs": LONG, **PER_TOKEN}),
        ("/tokenize", {"inputs": LONG}),
    ],
)
def test_a_client_resetting_mid_response_costs_only_its_own_request(tiny_bundle, path, body):
    with serve_process(tiny_bundle, "--threads", "1") as server:
        for _ in range(3):
            _reset_while_answered(server.port, path, body)
        time.sleep(0.5)
        assert server.alive(), f"`layerwise serve` died (exit {server.process.poll()}):\n{server.stderr[-2000:]}"
        answer = httpx.post(f"{server.url}/embed", json={"inputs": "still serving"}, timeout=30)
        assert answer.status_code == 200


def test_closed_stdout_and_stderr_do_not_stop_the_server(tiny_bundle):
    """The access log goes to stdout and the rest to stderr: with both readers gone from the start,
    every log write hits a closed pipe, and requests are still answered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(LAYERWISE), "serve", str(tiny_bundle), "--port", str(port), "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    process.stderr.close()
    try:
        deadline = time.monotonic() + 90
        while not _ready(url):
            assert process.poll() is None and time.monotonic() < deadline, f"`layerwise serve` exited with {process.poll()}"
            time.sleep(0.05)
        for _ in range(5):
            assert httpx.post(f"{url}/embed", json={"inputs": "nobody reads the log"}, timeout=30).status_code == 200
        assert process.poll() is None
    finally:
        process.terminate()
        assert process.wait(timeout=60) == -signal.SIGTERM


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
