"""Concurrent requests are merged into few runs (only with equal options, within the token budget), and each
client still gets exactly its own vectors, in its own order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from . import server_harness
from .server_harness import FAIL_TEXT, Rigged, serving

encoder = server_harness.encoder  # a module fixture

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _texts(i: int) -> list[str]:
    """1 to 4 distinct texts of varied length for client ``i``."""
    return [" ".join(WORDS[(i + j) % len(WORDS) :][: 1 + (i * 7 + j) % 11]) + f" client {i}" for j in range(1 + i % 4)]


@pytest.fixture
def rigged(encoder):
    return Rigged(encoder)


def _post_all(url: str, bodies: list[dict]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(lambda body: httpx.post(f"{url}/embed", json=body, timeout=60), bodies))


def _hold_first_run(running, rigged: Rigged, pool: ThreadPoolExecutor):
    """Send one request and keep its run at the gate, so the next ones queue up behind it."""
    rigged.gate.clear()
    first = pool.submit(httpx.post, f"{running.url}/embed", json={"inputs": "first"}, timeout=60)
    while not running.metrics.value("layerwise_requests_in_flight") or running.metrics.value("layerwise_queue_depth"):
        time.sleep(0.005)  # admitted and taken by the worker: its run waits at the gate
    time.sleep(0.05)
    return first


def test_many_clients_at_once_get_their_own_vectors_in_order(tiny_bundle, encoder):
    bodies = [{"inputs": _texts(i), "layers": "all", "pool": ("mean", "cls")[i % 2]} for i in range(24)]
    with serving(tiny_bundle, threads=1) as running:
        responses = _post_all(running.url, bodies)
    for body, response in zip(bodies, responses):
        assert response.status_code == 200, response.text
        want = encoder.embed(body["inputs"], layers="all", pool=body["pool"], normalize=True)
        np.testing.assert_allclose(np.array(response.json(), dtype=np.float32), want, rtol=0, atol=2e-5)


def test_queued_requests_with_equal_options_share_one_run_visible_in_metrics(tiny_bundle, rigged, encoder):
    with serving(tiny_bundle, loader=lambda: rigged) as running, ThreadPoolExecutor(max_workers=8) as pool:
        first = _hold_first_run(running, rigged, pool)
        queued = [pool.submit(httpx.post, f"{running.url}/embed", json={"inputs": _texts(i)}, timeout=60) for i in range(7)]
        running.wait_for("layerwise_queue_depth", 7)
        rigged.gate.set()
        responses = [first.result()] + [f.result() for f in queued]
        metrics = httpx.get(f"{running.url}/metrics").text
    assert [r.headers["x-batch-requests"] for r in responses] == ["1"] + ["7"] * 7
    assert len(rigged.runs) == 1 + 2  # warm-up, the held run, then one run for all seven
    assert "layerwise_batch_requests_count 2" in metrics and 'layerwise_batch_requests_bucket{le="8"} 2' in metrics
    assert 'layerwise_batch_requests_bucket{le="4"} 1' in metrics  # the run of seven is the one above 4
    for i, response in enumerate(responses[1:]):
        np.testing.assert_allclose(np.array(response.json()), encoder.embed(_texts(i), layers=-1, normalize=True)[:, 0], rtol=0, atol=2e-5)


def test_requests_with_different_options_never_share_a_run(tiny_bundle, rigged):
    with serving(tiny_bundle, loader=lambda: rigged) as running, ThreadPoolExecutor(max_workers=8) as pool:
        first = _hold_first_run(running, rigged, pool)
        bodies = [{"inputs": f"text {i}", "pool": ("cls", "max")[i % 2]} for i in range(6)]
        queued = [pool.submit(httpx.post, f"{running.url}/embed", json=body, timeout=60) for body in bodies]
        running.wait_for("layerwise_queue_depth", 6)
        rigged.gate.set()
        responses = [f.result() for f in queued]
        first.result()
    assert [r.headers["x-batch-requests"] for r in responses] == ["3"] * 6
    assert sorted(sorted(run) for run in rigged.runs[2:]) == [["text 0", "text 2", "text 4"], ["text 1", "text 3", "text 5"]]


def test_the_token_budget_splits_runs(tiny_bundle, rigged):
    text = " ".join(WORDS * 4)[:250]  # about 50 tokens: two fit in a budget of 128, three do not
    with serving(tiny_bundle, loader=lambda: rigged, max_batch_tokens=128) as running, ThreadPoolExecutor(max_workers=8) as pool:
        first = _hold_first_run(running, rigged, pool)
        queued = [pool.submit(httpx.post, f"{running.url}/embed", json={"inputs": text + f" {i}"}, timeout=60) for i in range(4)]
        running.wait_for("layerwise_queue_depth", 4)
        rigged.gate.set()
        responses = [f.result() for f in queued]
        first.result()
        assert 100 < 2 * int(responses[0].headers["x-compute-tokens"]) <= 128
    assert [r.headers["x-batch-requests"] for r in responses] == ["2"] * 4 and [len(run) for run in rigged.runs[2:]] == [2, 2]


def test_a_failing_text_fails_only_its_own_request_when_batched(tiny_bundle, rigged):
    with serving(tiny_bundle, loader=lambda: rigged) as running, ThreadPoolExecutor(max_workers=4) as pool:
        first = _hold_first_run(running, rigged, pool)
        clean = pool.submit(httpx.post, f"{running.url}/embed", json={"inputs": ["clean one"]}, timeout=60)
        failing = pool.submit(httpx.post, f"{running.url}/embed", json={"inputs": ["clean too", FAIL_TEXT]}, timeout=60)
        running.wait_for("layerwise_queue_depth", 2)
        rigged.gate.set()
        assert first.result().status_code == 200 and clean.result().status_code == 200
        assert failing.result().status_code == 424 and failing.result().json()["error_type"] == "backend"
    merged, *alone = rigged.runs[2:]  # the merged run failed, then each request ran alone
    assert sorted(merged) == sorted(["clean one", "clean too", FAIL_TEXT]) and sorted(alone) == [["clean one"], ["clean too", FAIL_TEXT]]


def test_a_lone_client_never_waits_for_the_batch_window(tiny_bundle):
    with serving(tiny_bundle, threads=1, max_wait_ms=5000) as running:
        started = time.monotonic()
        response = httpx.post(f"{running.url}/embed", json={"inputs": "nobody else is coming"})
        assert response.status_code == 200 and time.monotonic() - started < 2.0
        assert int(response.headers["x-queue-time"]) < 1000
