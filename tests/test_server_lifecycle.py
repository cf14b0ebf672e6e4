"""Start, readiness and shutdown: 503 until warmed, bad settings refused before listening, and a signal
drains in-flight requests while new ones are refused."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import layerwise
from layerwise.cli import main

from .server_harness import serving

ROOT = Path(__file__).resolve().parents[1]
SLOW_SERVE = """
import sys
import layerwise.server.app as app
from layerwise.cli import main
from tests.server_harness import Rigged

real_load = app.load
app.load = lambda *args, **kwargs: Rigged(real_load(*args, **kwargs), delay=float(sys.argv[2]))
sys.exit(main(["serve", sys.argv[1], "--port", sys.argv[3], "--threads", "1"]))
"""


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_is_503_until_the_model_is_loaded_and_warmed_while_live_answers(tiny_bundle):
    release = threading.Event()

    def slow_load():
        release.wait(timeout=30)
        return layerwise.load(tiny_bundle, provider="cpu", threads=1)

    with serving(tiny_bundle, loader=slow_load, ready=False) as running:
        health = httpx.get(f"{running.url}/health")
        assert health.status_code == 503 and health.json() == {
            "error": "the model is still loading; retry when GET /health answers 200", "error_type": "unhealthy",
        }
        assert httpx.get(f"{running.url}/live").json() == {"status": "loading"}
        assert httpx.post(f"{running.url}/embed", json={"inputs": "too early"}).status_code == 503
        assert "layerwise_ready 0" in httpx.get(f"{running.url}/metrics").text
        release.set()
        deadline = time.monotonic() + 30
        while httpx.get(f"{running.url}/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(f"{running.url}/live").json() == {"status": "ready"}
        assert httpx.post(f"{running.url}/embed", json={"inputs": "now"}).status_code == 200


def test_a_budget_below_the_maximum_input_length_is_refused_before_listening(tiny_bundle, capsys):
    assert main(["serve", str(tiny_bundle), "--max-batch-tokens", "100", "--port", str(_free_port())]) == 2
    assert capsys.readouterr().err == (
        "error: --max-batch-tokens 100 is less than the model's maximum input length 128 tokens, so a full-length "
        "input could never run; pass --max-batch-tokens 128 or more\n"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-concurrent-requests", "0"], "error: --max-concurrent-requests must be a positive integer, got 0\n"),
        (["--max-wait-ms", "-1"], "error: --max-wait-ms must be a number >= 0, got -1.0\n"),
        (["--api-key", " "], "error: --api-key is empty; pass a non-empty key, or leave the flag out to serve without one\n"),
        (["--body-timeout", "0"], "error: --body-timeout must be a finite number of seconds > 0, got 0.0\n"),
        (["--header-timeout", "inf"], "error: --header-timeout must be a finite number of seconds > 0, got inf\n"),
    ],
)
def test_impossible_settings_are_refused_with_exit_status_2(tiny_bundle, capsys, flags, message):
    assert main(["serve", str(tiny_bundle), *flags]) == 2
    assert capsys.readouterr().err == message


def test_a_bundle_that_fails_to_load_stops_the_server_with_the_loaders_error(tiny_bundle, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    with open(broken / "tokenizer.json", "a") as f:
        f.write(" ")  # the manifest still reads, but the digest check at load fails
    started = time.monotonic()
    assert main(["serve", str(broken), "--port", str(_free_port()), "--provider", "cpu"]) == 2
    assert time.monotonic() - started < 30
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after uvicorn's own lines
    assert last.startswith("error: tokenizer 'tokenizer.json' has ") and last.endswith("re-export the bundle")


@pytest.mark.parametrize(("sig", "returncode"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 0)])
def test_a_signal_drains_in_flight_requests_refuses_new_ones_then_exits(tiny_bundle, sig, returncode):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVE, str(tiny_bundle), "1.0", str(port)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            assert time.monotonic() < deadline and proc.poll() is None, "the server did not become ready"
            time.sleep(0.1)
        results: list[int] = []
        in_flight = threading.Thread(
            target=lambda: results.append(httpx.post(f"{url}/embed", json={"inputs": "in flight"}, timeout=30).status_code)
        )
        in_flight.start()
        while "layerwise_requests_in_flight 1" not in httpx.get(f"{url}/metrics").text:
            time.sleep(0.01)
        proc.send_signal(sig)
        refused = False
        for _ in range(200):
            try:
                httpx.get(f"{url}/live", timeout=1)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                # refused at connect, or reset/closed unanswered when accepted into the backlog just as
                # the listening socket closed: either way a new request is not served
                refused = True
                break
            time.sleep(0.01)
        in_flight.join(timeout=30)
        assert refused and results == [200]
        assert proc.wait(timeout=30) == returncode
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert "Waiting for connections to close" in proc.stderr.read()
