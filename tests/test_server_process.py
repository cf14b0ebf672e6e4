"""``layerwise serve`` as a process: the event loop production runs (uvloop), the signals a
terminal or a supervisor sends, and file descriptors running out.

Clients that leave at the worst moment are in test_server_disconnects.py; closed, full or
stalled log streams in test_log_streams.py.
"""

from __future__ import annotations

import resource
import signal
import socket
import threading
import time

import httpx

from .server_process import serve_process


def test_the_event_loop_under_test_is_uvloop_as_in_production():
    import uvloop  # noqa: F401 - uvicorn's "auto" loop picks it when installed (uvicorn[standard])


def test_a_hangup_drains_in_flight_requests_as_sigterm_does(tiny_bundle):
    with serve_process(tiny_bundle, "--threads", "1", rig={"delay": 1.0}) as server:
        results: list[object] = []

        def in_flight() -> None:
            try:
                results.append(httpx.post(f"{server.url}/embed", json={"inputs": "in flight"}, timeout=30).status_code)
            except httpx.HTTPError as e:
                results.append(type(e).__name__)

        thread = threading.Thread(target=in_flight)
        thread.start()
        server.wait_for("layerwise_requests_in_flight", 1)
        server.process.send_signal(signal.SIGHUP)
        thread.join(timeout=30)
        status = server.process.wait(timeout=30)
        log = server.stderr
    assert results == [200], f"exit {status}: {log[-2000:]}"
    assert "Waiting for connections to close" in log


def test_running_out_of_file_descriptors_drops_connections_and_the_server_recovers(tiny_bundle):
    """With 64 descriptors, 100 idle connections leave none to accept with (EMFILE): the server
    neither exits nor stops accepting, and answers correctly once they are gone."""

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    with serve_process(tiny_bundle, "--threads", "1", preexec_fn=few_descriptors) as server:
        since = server.log_mark()
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(100)]
        time.sleep(1)  # the server has accepted what it can
        for sock in held:
            sock.close()
        server.assert_serves_correctly(tiny_bundle, since)
