"""Start, readiness and shutdown of ``layerwise serve`` as users start it: 503 until warmed, bad
settings refused before listening (exit status 2, one line on stderr), and a signal drains
in-flight requests while new ones are refused."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .server_process import free_port, run_serve, serve_process


def test_health_is_503_until_the_model_is_loaded_and_warmed_while_live_answers(tiny_bundle):
    with serve_process(tiny_bundle, "--threads", "1", rig={"load_gate": True}, ready=False) as running:
        health = httpx.get(f"{running.url}/health")
        assert health.status_code == 503 and health.json() == {
            "error": "the model is still loading; retry when GET /health answers 200",
            "error_type": "unhealthy",
        }
        assert httpx.get(f"{running.url}/live").json() == {"status": "loading"}
        assert httpx.post(f"{running.url}/embed", json={"inputs": "too early"}).status_code == 503
        assert "layerwise_ready 0" in httpx.get(f"{running.url}/metrics").text
        Path(running.rig["load_gate"]).touch()
        deadline = time.monotonic() + 60
        while httpx.get(f"{running.url}/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(f"{running.url}/live").json() == {"status": "ready"}
        assert httpx.post(f"{running.url}/embed", json={"inputs": "now"}).status_code == 200


IMPOSSIBLE = {  # flags -> the one line `layerwise serve` prints before exiting with status 2
    ("--max-batch-tokens", "100"): (
        "error: --max-batch-tokens 100 is less than the model's maximum input length 128 tokens, so a full-length "
        "input could never run; pass --max-batch-tokens 128 or more\n"
    ),
    ("--max-concurrent-requests", "0"): "error: --max-concurrent-requests must be a positive integer, got 0\n",
    ("--max-wait-ms", "-1"): "error: --max-wait-ms must be a number >= 0, got -1.0\n",
    ("--api-key", " "): "error: --api-key is empty; pass a non-empty key, or leave the flag out to serve without one\n",
    ("--body-timeout", "0"): "error: --body-timeout must be a finite number of seconds > 0, got 0.0\n",
    ("--header-timeout", "inf"): "error: --header-timeout must be a finite number of seconds > 0, got inf\n",
}


@pytest.fixture(scope="module")
def refused(tiny_bundle) -> dict[tuple[str, ...], tuple[int, str, str]]:
    """Each of IMPOSSIBLE's commands run to its end, all at once: (exit status, stdout, stderr)."""
    with ThreadPoolExecutor(max_workers=len(IMPOSSIBLE)) as pool:
        runs = {flags: pool.submit(run_serve, tiny_bundle, *flags, "--port", str(free_port())) for flags in IMPOSSIBLE}
        return {flags: (run.result().returncode, run.result().stdout, run.result().stderr) for flags, run in runs.items()}


def test_a_budget_below_the_maximum_input_length_is_refused_before_listening(refused):
    flags = ("--max-batch-tokens", "100")
    assert refused[flags] == (2, "", IMPOSSIBLE[flags])


@pytest.mark.parametrize("flags", [flags for flags in IMPOSSIBLE if flags[0] != "--max-batch-tokens"], ids=" ".join)
def test_impossible_settings_are_refused_with_exit_status_2(refused, flags):
    assert refused[flags] == (2, "", IMPOSSIBLE[flags])


def test_a_bundle_that_fails_to_load_stops_the_server_with_the_loaders_error(tiny_bundle, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    with open(broken / "tokenizer.json", "a") as f:
        f.write(" ")  # the manifest still reads, but the digest check at load fails
    started = time.monotonic()
    failed = run_serve(broken, "--port", str(free_port()), "--provider", "cpu")
    assert failed.returncode == 2 and time.monotonic() - started < 30
    last = failed.stderr.strip().splitlines()[-1]  # after uvicorn's own lines
    assert last.startswith("error: tokenizer 'tokenizer.json' has ") and last.endswith("re-export the bundle")
    assert "Traceback" not in failed.stderr


@pytest.mark.parametrize(("sig", "returncode"), [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 0)])
def test_a_signal_drains_in_flight_requests_refuses_new_ones_then_exits(tiny_bundle, sig, returncode):
    with serve_process(tiny_bundle, "--threads", "1", rig={"delay": 1.0}) as server:
        url = server.url
        results: list[int] = []
        in_flight = threading.Thread(
            target=lambda: results.append(httpx.post(f"{url}/embed", json={"inputs": "in flight"}, timeout=30).status_code)
        )
        in_flight.start()
        server.wait_for("layerwise_requests_in_flight", 1)
        server.process.send_signal(sig)
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
        assert server.process.wait(timeout=30) == returncode
        log = server.stderr
    assert "Waiting for connections to close" in log and "Traceback" not in log


@pytest.mark.parametrize(
    "sig",
    [signal.SIGTERM, signal.SIGINT],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_while_the_model_loads_stops_the_server_at_once(tiny_bundle, sig):
    """A load that never ends (a bundle on a hung network filesystem): the server still stops when told."""
    with serve_process(tiny_bundle, "--threads", "1", rig={"load_gate": True}, ready=False) as server:
        server.process.send_signal(sig)
        try:
            status = server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
    assert status in (0, -signal.SIGTERM), f"still running 5 s after {sig.name}"
