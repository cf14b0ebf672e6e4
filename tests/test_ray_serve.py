"""The HTTP app as Ray Serve replicas on the session's local Ray cluster: /embed and
/v1/embeddings answer with the Python API's vectors."""

from __future__ import annotations

import socket
import time

import httpx
import numpy as np
import openai
import pytest

import layerwise
from layerwise.exporter.texts import PARITY_TEXTS
from layerwise.server.settings import Settings

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


def test_serve_command_with_ray_answers_embed_and_stops_cleanly_on_ctrl_c(tiny_bundle, tmp_path):
    """`layerwise serve BUNDLE --ray --replicas 1` as the README runs it: its own local Ray cluster,
    /embed answers with the Python API's vectors, SIGINT stops it with status 0 and no traceback."""
    import os
    import signal
    import subprocess
    import sys

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [
        sys.executable,
        "-m",
        "layerwise.cli",
        "serve",
        str(tiny_bundle),
        "--ray",
        "--replicas",
        "1",
        "--port",
        str(port),
        "--provider",
        "cpu",
    ]
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(1)
        got = httpx.post(f"http://127.0.0.1:{port}/embed", json={"inputs": ["a text", "another one"], "normalize": False}, timeout=60)
        assert got.status_code == 200, got.text
        want = layerwise.load(tiny_bundle, provider="cpu").embed(["a text", "another one"], layers=-1)[:, 0]
        np.testing.assert_allclose(np.array(got.json(), dtype=np.float32), want, atol=1e-5)
    finally:
        server.send_signal(signal.SIGINT)
        status = server.wait(timeout=120)
        log.seek(0)
        output = log.read()
    assert status == 0, output
    assert "Traceback" not in output and "Deleting app ['layerwise']" in output, output
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
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
