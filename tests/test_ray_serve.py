"""The HTTP app as Ray Serve replicas on the session's local Ray cluster: /embed and
/v1/embeddings answer with the Python API's vectors; `layerwise serve --ray` as users start it
outlives clients that leave, stops cleanly on Ctrl-C, and says what to raise when Ray Serve's
HTTP proxy is slow to start."""

from __future__ import annotations

import signal
import socket
import time

import httpx
import numpy as np
import openai
import pytest

import layerwise
from layerwise.exporter.texts import PARITY_TEXTS
from layerwise.runtime.errors import InputError
from layerwise.server.settings import Settings

from .leaving_clients import BATCH, leave
from .server_process import serve_process

TEXTS = list(PARITY_TEXTS[:4])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_replicas_answer_tei_and_openai_routes_with_the_runtimes_vectors(minilm_bundle, ray_cluster):
    from ray import serve

    from layerwise.ray.serve import APP_NAME, deploy

    settings = Settings(bundle=str(minilm_bundle), port=_free_port(), variant="int8", provider="cpu")
    url = f"http://127.0.0.1:{settings.port}"
    deploy(settings, replicas=2, threads_per_replica=1)
    try:
        deadline, ready = time.monotonic() + 180, 0
        while ready < 6 and time.monotonic() < deadline:  # several 200s in a row: both replicas loaded
            ready = ready + 1 if httpx.get(f"{url}/health", timeout=10).status_code == 200 else 0
            time.sleep(0.2)
        assert ready == 6, "the replicas did not become ready"
        encoder = layerwise.load(minilm_bundle, variant="int8")
        got = httpx.post(f"{url}/embed", json={"inputs": TEXTS, "normalize": True}, timeout=60)
        assert got.status_code == 200, got.text
        want = encoder.embed(TEXTS, layers=-1, normalize=True)[:, 0]
        np.testing.assert_allclose(np.array(got.json(), dtype=np.float32), want, atol=1e-5)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        result = client.embeddings.create(
            input=TEXTS, model=minilm_bundle.name, extra_body={"layers": [0, -1], "combine": "concat", "normalize": True}
        )
        want = encoder.embed(TEXTS, layers=[0, -1], combine="concat", normalize=True)
        np.testing.assert_allclose(np.array([d.embedding for d in result.data], dtype=np.float32), want, atol=1e-5)
    finally:
        serve.delete(APP_NAME)
        serve.shutdown()


def test_a_proxy_not_ready_in_time_is_an_error_naming_the_wait_and_how_to_raise_it(tiny_bundle, ray_cluster, monkeypatch):
    """Ray Serve's controller gets our wait for its proxy's ready check; one that can never pass
    (1 ms) makes the whole wait run out, and the error says which variable gives more."""
    from ray import serve

    from layerwise.ray.serve import PROXY_READY_ENV, START_TIMEOUT_ENV, deploy

    monkeypatch.setenv(PROXY_READY_ENV, "0.001")
    monkeypatch.setenv(START_TIMEOUT_ENV, "10")
    settings = Settings(bundle=str(tiny_bundle), port=_free_port(), provider="cpu")
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError) as caught:
            deploy(settings)
    finally:
        serve.shutdown()
    assert time.monotonic() - started < 120
    message = str(caught.value)
    assert message.startswith(f"Ray Serve's HTTP proxy for http://127.0.0.1:{settings.port} was not ready after 10 s (")
    assert "a busy machine can take longer: set LAYERWISE_RAY_START_TIMEOUT to more seconds" in message


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_start_timeout_that_is_not_a_positive_number_is_refused(monkeypatch, value):
    from layerwise.ray.serve import START_TIMEOUT_ENV, start_timeout

    monkeypatch.setenv(START_TIMEOUT_ENV, value)
    with pytest.raises(InputError) as caught:
        start_timeout()
    assert str(caught.value) == f"LAYERWISE_RAY_START_TIMEOUT must be a number of seconds > 0, got {value!r}"


@pytest.fixture(scope="module")
def serve_ray(tiny_bundle):
    """`layerwise serve BUNDLE --ray --replicas 1` as the README runs it: its own local Ray cluster."""
    flags = ("--ray", "--replicas", "1", "--provider", "cpu", "--max-client-batch-size", str(BATCH))
    with serve_process(tiny_bundle, *flags, timeout=400) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "point"), [("/embed_all", "mid_response"), ("/embed_all", "mid_body"), ("/v1/embeddings", "mid_response")]
)
def test_serve_ray_outlives_a_client_resetting_mid_body_or_mid_response(serve_ray, tiny_bundle, path, point):
    """Ray Serve's proxy (uvicorn in a Ray worker) between the client and the replica: a reset costs only that request."""
    since = serve_ray.log_mark()
    leave(serve_ray, path, point, "reset")
    serve_ray.assert_serves_correctly(tiny_bundle, since)


def test_serve_ray_refuses_bad_requests_as_the_single_server_does(serve_ray):
    """Statuses, JSON errors and headers pass Ray Serve's proxy unchanged (test_server_limits.py has them all)."""
    url = serve_ray.url
    bad_json = httpx.post(f"{url}/embed", content=b"{not json")
    assert (bad_json.status_code, bad_json.json()) == (
        422,
        {
            "error": "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            "error_type": "validation",
        },
    )
    too_long = httpx.post(f"{url}/embed", json={"inputs": ["short", "token " * 200]})
    assert too_long.status_code == 413 and too_long.json()["error"].startswith("`inputs[1]` has ")
    openai_shape = httpx.post(f"{url}/v1/embeddings", json={"input": "x", "encoding_format": "hex"})
    assert (openai_shape.status_code, openai_shape.json()) == (
        422,
        {"error": {"message": "`encoding_format` must be 'float' or 'base64', got 'hex'", "type": "validation", "code": 422}},
    )
    too_big = httpx.post(f"{url}/embed", content=b"x" * (2_000_001), timeout=60)
    assert too_big.status_code == 413 and too_big.json()["error"].startswith("request body is 2000001 bytes, more than the limit")
    ignored = httpx.post(f"{url}/embed", json={"inputs": "x", "options": {"wait_for_model": True}})
    assert ignored.status_code == 200 and ignored.headers["x-ignored-fields"] == "options"
    wrong = httpx.get(f"{url}/embed")
    assert (wrong.status_code, wrong.headers["allow"], wrong.json()["error"]) == (405, "POST", "GET is not allowed on /embed; use POST")


def test_serve_command_with_ray_answers_embed_and_stops_cleanly_on_ctrl_c(serve_ray, tiny_bundle):
    """/embed answers with the Python API's vectors, SIGINT stops it with status 0 and no traceback.
    (After the tests above: it stops the module's server.)"""
    got = httpx.post(f"{serve_ray.url}/embed", json={"inputs": ["a text", "another one"], "normalize": False}, timeout=60)
    assert got.status_code == 200, got.text
    want = layerwise.load(tiny_bundle, provider="cpu").embed(["a text", "another one"], layers=-1)[:, 0]
    np.testing.assert_allclose(np.array(got.json(), dtype=np.float32), want, atol=1e-5)
    status = serve_ray.stop(signal.SIGINT, timeout=120)
    output = serve_ray.stdout + serve_ray.stderr
    assert status == 0, output
    assert "Traceback" not in output and "Deleting app ['layerwise']" in output, output
    try:
        httpx.get(f"{serve_ray.url}/health", timeout=5)
        raise AssertionError("the port still answers after the server stopped")
    except httpx.TransportError:
        pass


def test_replicas_or_actors_the_cluster_cannot_place_are_refused_not_waited_for(ray_cluster):
    from layerwise.ray.embedder import check_cpus
    from layerwise.runtime.errors import InputError

    check_cpus(2, 1, "--replicas", "--threads")  # the session's cluster has 2 CPUs
    with pytest.raises(InputError) as caught:
        check_cpus(4, 2, "--replicas", "--threads")
    assert str(caught.value) == (
        "--replicas 4 x --threads 2 needs 8 CPUs, but the Ray cluster has 2; "
        "pass fewer --replicas or --threads, or join a bigger cluster with --ray-address"
    )


def test_serve_ray_refuses_a_batch_budget_below_the_models_length_before_starting_ray(tiny_bundle, capsys):
    """``layerwise serve --ray`` checks the budget against the manifest's model length (it read a field the manifest lacks)."""
    from layerwise.cli import main

    assert main(["-q", "serve", str(tiny_bundle), "--ray", "--max-batch-tokens", "8"]) == 2
    assert "error: --max-batch-tokens 8 is less than the model's maximum input length" in capsys.readouterr().err
