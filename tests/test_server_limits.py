"""Every bad request gets its status and a JSON error naming the field, limit and fix; the server keeps serving.

Against ``layerwise serve`` as users start it (tests/server_process.py): a plain server, one with
every limit small and a rigged model (NaN, a bug, a gate), and one with --auto-truncate.
"""

from __future__ import annotations

import re
import threading
import time

import httpx
import numpy as np
import pytest

import layerwise

from .rigged_serve import BUG_TEXT, NAN_TEXT
from .server_harness import untruncated_tokens
from .server_process import serve_process

LONG_TEXT = "token " * 200  # more than the tiny model's 128
SMALL_LIMITS = ("--threads", "1", "--payload-limit", "1000", "--max-concurrent-requests", "2")


@pytest.fixture(scope="module")
def url(tiny_bundle):
    with serve_process(tiny_bundle, "--threads", "1") as server:
        yield server.url


@pytest.fixture(scope="module")
def small(tiny_bundle):
    """A rigged server with small limits: 1,000-byte bodies, 2 requests at once, 1,000 floats of JSON."""
    rig = {"gate": True, "patch": {"layerwise.server.embedding.JSON_FLOAT_LIMIT": 1000}}
    with serve_process(tiny_bundle, *SMALL_LIMITS, rig=rig) as server:
        yield server


def _error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == kind
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (
            b"{not json",
            422,
            "validation",
            "request body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (b"", 422, "validation", 'request body is empty; /embed takes a JSON object such as {"inputs": "some text"}'),
        (b"[1, 2]", 422, "validation", "request body must be a JSON object, got an array"),
        (b"[" * 100_000, 422, "validation", "request body nests too deeply to be a request"),
        (b'{"text": "x"}', 422, "validation", "`inputs` is missing; send a string or a list of strings"),
        (b'{"normalize": true}', 422, "validation", "`inputs` is missing; send a string or a list of strings"),
        (b'{"inputs": 7}', 422, "validation", "`inputs` must be a string or a list of strings, got an integer"),
        (b'{"inputs": ["ok", {"t": 1}]}', 422, "validation", "`inputs[1]` must be a string, got an object"),
        (b'{"inputs": "x", "normalize": "yes"}', 422, "validation", "`normalize` must be a boolean, got a string"),
        (b'{"inputs": "x", "truncate": 1}', 422, "validation", "`truncate` must be a boolean, got an integer"),
        (
            b'{"inputs": "x", "layers": [3]}',
            422,
            "validation",
            "layer 3 does not exist: this model has hidden states 0..1 (0 is the embedding output), or -2..-1 counting from the end",
        ),
        (b'{"inputs": "x", "layers": [true]}', 422, "validation", "`layers` must hold integers, got true"),
        (b'{"inputs": "x", "pool": "avg"}', 422, "validation", "`pool` must be 'mean', 'max', 'cls' or 'none', got 'avg'"),
        (b'{"inputs": "x", "combine": "max"}', 422, "validation", "`combine` must be 'concat', 'sum', 'mean' or 'scalar_mix', got 'max'"),
        (b'{"inputs": "x", "combine": ["sum"]}', 422, "validation", "`combine` must be a string, got an array"),
        (
            b'{"inputs": "x", "truncation_direction": "up"}',
            422,
            "validation",
            "`truncation_direction` 'up' is not supported: layerwise keeps the start of a text; send 'Right' or leave it out",
        ),
        (b'{"inputs": [[null]]}', 422, "validation", "`inputs[0]` must hold token ids (integers from 0), got null"),
        (b'{"inputs": [[101, -1, 102]]}', 422, "validation", "`inputs[0]` must hold token ids (integers from 0), got -1"),
        (
            b'{"inputs": [101, 30522]}',
            422,
            "validation",
            "`inputs[0]` holds token id 30522, not in the model's vocabulary of 30522 tokens (ids 0..30521): send ids from this model's "
            "tokenizer (POST /tokenize gives them), or the text (langchain-openai sends tiktoken's ids unless told "
            "check_embedding_ctx_length=False)",
        ),
        (b'{"inputs": ["x", []]}', 400, "empty", "`inputs[1]` is an empty list of token ids; send at least one id"),
        (
            b'{"inputs": [[101, 102]], "overflow": "chunk"}',
            422,
            "validation",
            "`inputs[0]` is token ids, which `overflow` 'chunk' cannot split into windows (it splits texts): send the text, or cut the "
            "ids to the model's maximum input length yourself",
        ),
        (b'{"inputs": []}', 400, "empty", "`inputs` cannot be empty; send at least one string"),
        (b'{"inputs": ""}', 400, "empty", "`inputs` is an empty string; send some text"),
        (b'{"inputs": ["a", ""]}', 400, "empty", "`inputs[1]` is an empty string; every input needs some text"),
        (
            b'{"inputs": [' + b",".join([b'"x"'] * 33) + b"]}",
            422,
            "validation",
            "batch size 33 > maximum allowed batch size 32: split the request, or start the server with a larger --max-client-batch-size",
        ),
    ],
)
def test_bad_embed_requests_are_refused_naming_the_field(url, body, status, kind, message):
    assert _error(httpx.post(f"{url}/embed", content=body), status, kind) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m"}, "`input` is missing; send a string or a list of strings"),
        (
            {"input": "x", "pool": "none"},
            "`pool` 'none' (one vector per token) is served by /embed only; /v1/embeddings returns one vector per input",
        ),
        (
            {"input": "x", "layers": [0, 1]},
            "`layers` [0, 1] gives 2 vectors per input, but /v1/embeddings returns one: pass `combine` ('concat', 'sum' or 'mean'), or "
            "use /embed",
        ),
        (
            {"input": "x", "dimensions": 32},
            "`dimensions` 32 is not available: this request gives 64-dimensional vectors and layerwise does not shorten them; leave "
            "`dimensions` out",
        ),
        ({"input": "x", "model": 3}, "`model` must be a string, got an integer"),
        ({"input": "x", "dimensions": 64.0}, "`dimensions` must be an integer, got a number"),
        ({"input": "x", "encoding_format": "hex"}, "`encoding_format` must be 'float' or 'base64', got 'hex'"),
    ],
)
def test_bad_openai_requests_are_refused_naming_the_field(url, body, message):
    response = httpx.post(f"{url}/v1/embeddings", json=body)
    assert response.status_code == 422 and response.json() == {"error": {"message": message, "type": "validation", "code": 422}}


def test_too_long_text_is_413_naming_its_token_count_unless_truncate_is_on(url, tiny_bundle):
    tokens = untruncated_tokens(tiny_bundle, [LONG_TEXT])[0]
    message = _error(httpx.post(f"{url}/embed", json={"inputs": ["short", LONG_TEXT]}), 413, "validation")
    assert message == (
        f"`inputs[1]` has {tokens} tokens, more than the model's maximum input length 128 (1 of 2 input(s) too long); "
        'pass "overflow": "truncate" to cut them, "overflow": "chunk" to embed them whole as windows, or shorten them'
    )
    cut = httpx.post(f"{url}/embed", json={"inputs": ["short", LONG_TEXT], "truncate": True})
    assert cut.status_code == 200 and cut.headers["x-compute-tokens"] == str(3 + 128)


def test_auto_truncate_cuts_by_default_but_a_request_can_still_refuse_it(tiny_bundle):
    with serve_process(tiny_bundle, "--threads", "1", "--auto-truncate") as running:
        cut = httpx.post(f"{running.url}/v1/embeddings", json={"input": LONG_TEXT, "model": "tiny"})
        assert cut.status_code == 200 and cut.json()["usage"]["prompt_tokens"] == 128
        assert httpx.get(f"{running.url}/info").json()["auto_truncate"] is True
        _error(httpx.post(f"{running.url}/embed", json={"inputs": LONG_TEXT, "truncate": False}), 413, "validation")


def test_body_over_the_payload_limit_is_413_before_any_parsing(small):
    garbage = b"x" * 5000  # not JSON: a 422 would mean it was parsed
    declared = _error(httpx.post(f"{small.url}/embed", content=garbage), 413, "validation")
    assert (
        declared
        == "request body is 5000 bytes, more than the limit of 1000 bytes (--payload-limit): send fewer or shorter inputs per request"
    )
    chunked = httpx.post(f"{small.url}/embed", content=iter([garbage[:800], garbage[800:]]))  # no content-length
    assert re.match(r"request body is at least \d+ bytes, more than the limit of 1000 bytes", _error(chunked, 413, "validation"))
    assert httpx.post(f"{small.url}/embed", json={"inputs": "still serving"}).status_code == 200


def test_json_output_over_the_float_limit_is_413_but_binary_bodies_pass(small):
    body = {"inputs": ["several tokens in this text"], "layers": "all", "pool": "none"}
    message = _error(httpx.post(f"{small.url}/embed", json=body), 413, "validation")
    assert message.startswith("the response would hold 1024 floats, more than the JSON limit of 1000: ask for a binary body")
    assert httpx.post(f"{small.url}/embed", json=body, headers={"accept": "application/x-npz"}).status_code == 200


def test_npy_cannot_hold_per_token_output_406(url):
    response = httpx.post(f"{url}/embed", json={"inputs": "x", "pool": "none"}, headers={"accept": "application/x-npy"})
    assert "ask for application/x-npz" in _error(response, 406, "validation")


def test_unknown_route_is_404_and_wrong_method_405_as_json_errors(url):
    assert _error(httpx.get(f"{url}/v2/embeddings"), 404, "not_found").startswith(
        "no route GET /v2/embeddings; this server has POST /embed"
    )
    wrong = httpx.get(f"{url}/embed")
    assert _error(wrong, 405, "method_not_allowed") == "GET is not allowed on /embed; use POST" and wrong.headers["allow"] == "POST"
    assert _error(httpx.post(f"{url}/health"), 405, "method_not_allowed") == "POST is not allowed on /health; use GET, HEAD"


def test_nan_in_an_output_is_a_424_backend_error_and_never_serialised(small):
    for accept in ("application/json", "application/x-npy"):
        response = httpx.post(f"{small.url}/embed", json={"inputs": ["fine", NAN_TEXT]}, headers={"accept": accept})
        message = _error(response, 424, "backend")
        assert message.startswith("the model produced NaN or Inf for `inputs[1]`; nothing was returned") and "NaN," not in response.text
    assert httpx.post(f"{small.url}/embed", json={"inputs": "fine"}).status_code == 200


def test_an_unexpected_failure_is_a_json_500_that_keeps_internals_in_the_log(small):
    response = httpx.post(f"{small.url}/embed", json={"inputs": [BUG_TEXT]})
    assert _error(response, 500, "backend") == "internal error (RuntimeError); see the server log"
    assert "internal detail" not in response.text
    assert httpx.post(f"{small.url}/embed", json={"inputs": "fine"}).status_code == 200
    assert "RuntimeError: internal detail that must stay in the log" in small.stderr


def test_overload_is_a_429_at_once_and_the_server_recovers(small):
    small.close_gate()
    results: list[int] = []
    held = [
        threading.Thread(target=lambda: results.append(httpx.post(f"{small.url}/embed", json={"inputs": "held"}, timeout=60).status_code))
        for _ in range(2)
    ]
    try:
        for thread in held:
            thread.start()
        small.wait_for("layerwise_requests_in_flight", 2)
        started = time.monotonic()
        refused = httpx.post(f"{small.url}/embed", json={"inputs": "one too many"})
        assert time.monotonic() - started < 1.0 and refused.headers["retry-after"] == "1"
        assert (
            _error(refused, 429, "overloaded")
            == "the server is at its limit of 2 concurrent requests (--max-concurrent-requests); retry shortly"
        )
        assert httpx.get(f"{small.url}/health").status_code == 200  # health is never refused
    finally:
        small.open_gate()
        for thread in held:
            thread.join(timeout=60)
    assert results == [200, 200]
    assert httpx.post(f"{small.url}/embed", json={"inputs": "after the storm"}).status_code == 200


def test_the_server_keeps_serving_correct_vectors_after_every_error(url, tiny_bundle):
    for body in (b"{", b'{"inputs": []}', b'{"inputs": "x", "pool": "avg"}', ('{"inputs": "' + LONG_TEXT + '"}').encode()):
        assert httpx.post(f"{url}/embed", content=body).status_code >= 400
    got = httpx.post(f"{url}/embed", json={"inputs": ["after errors"], "layers": "all"}).json()
    want = layerwise.load(tiny_bundle, provider="cpu").embed(["after errors"], layers="all", normalize=True)
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
