"""Over a real socket, the server's vectors equal the Python API's, in every format and through both clients."""

from __future__ import annotations

import base64
import io
import re

import httpx
import numpy as np
import openai
import pytest

from . import server_harness
from .server_harness import untruncated_tokens

encoder, running, url = server_harness.encoder, server_harness.running, server_harness.url  # module fixtures

TEXTS = ["The cat sat on the mat.", "Layers of meaning", "a much longer sentence about encoders, tokens and their many layers"]


def _post(url: str, body: dict, **kwargs) -> httpx.Response:
    response = httpx.post(f"{url}/embed", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response


def test_default_is_the_last_layer_pooled_the_models_way_normalized_one_flat_vector_per_input(url, encoder):
    pooling = encoder.info.default_pooling
    want = encoder.embed(TEXTS, layers=-1, pool=pooling["pool"], normalize=True)[:, 0]
    got = np.array(_post(url, {"inputs": TEXTS}).json(), dtype=np.float32)
    assert got.shape == (3, 64)
    np.testing.assert_array_equal(got, want)


def test_a_single_string_gives_a_list_with_one_vector(url, encoder):
    got = _post(url, {"inputs": TEXTS[0], "normalize": True}).json()
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), encoder.embed(TEXTS[0], layers=-1, normalize=True)[:, 0])


@pytest.mark.parametrize(
    "options",
    [
        {"layers": "all"},
        {"layers": [0, -1], "pool": "cls", "combine": "concat"},
        {"layers": 1, "pool": "max", "normalize": True},
        {"layers": "all", "combine": "mean", "normalize": False},
        {"pool": "cls", "combine": "sum"},
    ],
)
def test_explicit_options_give_the_runtime_shape_and_values(url, encoder, options):
    got = np.array(_post(url, {"inputs": TEXTS, **options}).json(), dtype=np.float32)
    runtime = {"layers": -1, "normalize": True, **options}
    np.testing.assert_array_equal(got, encoder.embed(TEXTS, **runtime))


def test_per_token_output_is_one_ragged_array_per_input(url, encoder):
    got = _post(url, {"inputs": TEXTS, "layers": "all", "pool": "none", "normalize": False}).json()
    want = encoder.embed_tokens(TEXTS, layers="all")
    assert [np.array(g).shape for g in got] == [w.shape for w in want] and want[0].shape[:1] == (2,)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.array(g, dtype=np.float32), w)
    default = _post(url, {"inputs": TEXTS[:1], "pool": "none"}).json()
    assert np.array(default[0]).shape == (want[0].shape[1], 64)  # TEI's embed_all shape: [tokens, hidden] per input


def test_base64_npy_and_npz_bodies_carry_the_same_float32(url, encoder):
    options = {"inputs": TEXTS, "layers": [0, 1], "normalize": True}
    want = encoder.embed(TEXTS, layers=[0, 1], normalize=True)
    openai_body = {"input": TEXTS, "layers": [0, 1], "combine": "concat", "normalize": True, "encoding_format": "base64"}
    encoded = [row["embedding"] for row in httpx.post(f"{url}/v1/embeddings", json=openai_body).json()["data"]]
    decoded = np.stack([np.frombuffer(base64.b64decode(e), dtype="<f4") for e in encoded])
    np.testing.assert_array_equal(decoded, encoder.embed(TEXTS, layers=[0, 1], combine="concat", normalize=True))
    ignored = _post(url, {**options, "encoding_format": "base64"})  # TEI's /embed has no encoding_format: floats, as TEI
    assert ignored.headers["x-ignored-fields"] == "encoding_format"
    np.testing.assert_array_equal(np.array(ignored.json(), dtype=np.float32), want)
    npy = _post(url, options, headers={"accept": "application/x-npy"})
    assert npy.headers["content-type"] == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.content), allow_pickle=False), want)
    npz = np.load(io.BytesIO(_post(url, options, headers={"accept": "application/x-npz"}).content), allow_pickle=False)
    np.testing.assert_array_equal(npz["embeddings"], want)
    assert npz["layers"].tolist() == [0, 1]


def test_per_token_npz_follows_the_cli_layout(url, encoder):
    response = _post(
        url, {"inputs": TEXTS, "layers": [0, -1], "pool": "none"}, headers={"accept": "application/x-npz, application/json;q=0.5"}
    )
    saved = np.load(io.BytesIO(response.content), allow_pickle=False)
    want = encoder.embed_tokens(TEXTS, layers=[0, -1])
    assert saved["lengths"].tolist() == [w.shape[1] for w in want] and saved["layers"].tolist() == [0, 1]
    np.testing.assert_array_equal(saved["layer_1"], np.concatenate([w[1] for w in want]))


def test_openai_client_gets_the_runtimes_vectors_as_base64_and_as_floats(url, encoder, tiny_bundle):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    pooling = encoder.info.default_pooling
    want = encoder.embed(TEXTS, layers=-1, pool=pooling["pool"], normalize=True)[:, 0]
    for encoding in ({}, {"encoding_format": "float"}):  # the client asks for base64 and decodes it unless told
        result = client.embeddings.create(input=TEXTS, model="any name", **encoding)
        assert [d.index for d in result.data] == [0, 1, 2] and result.object == "list"
        np.testing.assert_array_equal(np.array([d.embedding for d in result.data], dtype=np.float32), want)
    tokens = sum(untruncated_tokens(tiny_bundle, TEXTS))
    assert result.model == "tiny" and (result.usage.prompt_tokens, result.usage.total_tokens) == (tokens, tokens)


def test_openai_client_can_ask_for_combined_layers(url, encoder):
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    result = client.embeddings.create(input="one text", model="tiny", extra_body={"layers": "all", "combine": "concat", "normalize": True})
    want = encoder.embed("one text", layers="all", combine="concat", normalize=True)[0]
    assert len(result.data[0].embedding) == 128
    np.testing.assert_array_equal(np.array(result.data[0].embedding, dtype=np.float32), want)


def test_plain_http_openai_request_has_the_documented_envelope(url):
    body = httpx.post(f"{url}/v1/embeddings", json={"input": "hello", "model": "m", "encoding_format": "float"}).json()
    assert set(body) == {"object", "data", "model", "usage"}
    assert body["data"][0]["object"] == "embedding" and body["data"][0]["index"] == 0 and len(body["data"][0]["embedding"]) == 64


def test_timing_headers_are_sent_as_tei_sends_them(url, tiny_bundle):
    headers = _post(url, {"inputs": TEXTS}).headers
    for name in ("x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time", "x-batch-requests"):
        assert headers[name].isdigit(), name
    assert headers["x-compute-tokens"] == str(sum(untruncated_tokens(tiny_bundle, TEXTS)))
    assert headers["x-compute-characters"] == str(sum(map(len, TEXTS))) and headers["x-compute-type"] == "cpu"


def test_each_request_is_tokenized_once(url, monkeypatch):
    from layerwise.runtime.tokenize import TextTokenizer

    calls = []
    encode = TextTokenizer.encode  # the runtime's only way to tokenize
    monkeypatch.setattr(TextTokenizer, "encode", lambda self, texts, *a, **k: calls.append(list(texts)) or encode(self, texts, *a, **k))
    _post(url, {"inputs": TEXTS})
    httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS[0], "model": "m"}).raise_for_status()
    assert calls == [TEXTS, TEXTS[:1]]


def test_info_names_the_model_and_the_limits(url):
    info = httpx.get(f"{url}/info").json()
    assert {k: info[k] for k in ("model_id", "num_layers", "hidden_size", "max_input_length", "variant", "provider")} == {
        "model_id": "tiny",
        "num_layers": 1,
        "hidden_size": 64,
        "max_input_length": 128,
        "variant": "fused",
        "provider": "cpu",
    }
    assert {k: info[k] for k in ("max_batch_tokens", "max_client_batch_size", "max_concurrent_requests", "payload_limit")} == {
        "max_batch_tokens": 16384,
        "max_client_batch_size": 32,
        "max_concurrent_requests": 512,
        "payload_limit": 2_000_000,
    }


def test_metrics_are_prometheus_text_counting_requests_by_route_and_status(url):
    httpx.post(f"{url}/embed", json={"inputs": []})
    response = httpx.get(f"{url}/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+-]+$|^[a-z_]+\{.*le="\+Inf".*\} [0-9]+$')
    lines = response.text.splitlines()
    assert all(line.startswith("# ") or sample.match(line) for line in lines), [line for line in lines if not sample.match(line)][:3]
    assert 'layerwise_requests_total{route="/embed",status="400"} 1' in lines
    for name in (
        "layerwise_batch_requests_count",
        "layerwise_tokens_total",
        "layerwise_queue_depth",
        "layerwise_inference_duration_seconds_bucket",
    ):
        assert any(line.startswith(name) for line in lines), name


LONG_TEXT = " ".join(f"token{i % 37} and layer {i} of the encoder." for i in range(60))  # ~700 tokens: 6+ windows of 128


def test_overflow_chunk_embeds_long_inputs_whole_as_the_runtime_does(url, encoder):
    texts = [LONG_TEXT, TEXTS[0]]
    got = np.array(_post(url, {"inputs": texts, "layers": [0, -1], "overflow": "chunk", "stride": 16}).json(), dtype=np.float32)
    want = encoder.embed(texts, layers=[0, -1], overflow="chunk", stride=16, normalize=True)
    assert encoder.last_stats.split == 1 and encoder.last_stats.windows > 5
    np.testing.assert_array_equal(got, want)
    openai_body = {"input": texts, "pool": "cls", "overflow": "chunk", "encoding_format": "float"}
    response = httpx.post(f"{url}/v1/embeddings", json=openai_body)
    assert response.status_code == 200, response.text
    vectors = np.array([row["embedding"] for row in response.json()["data"]], dtype=np.float32)
    np.testing.assert_array_equal(vectors, encoder.embed(texts, layers=-1, pool="cls", overflow="chunk", normalize=True)[:, 0])
    tokens = _post(url, {"inputs": [LONG_TEXT], "layers": -1, "pool": "none", "normalize": False, "overflow": "chunk"}).json()
    np.testing.assert_array_equal(np.array(tokens[0], dtype=np.float32), encoder.embed_tokens(LONG_TEXT, layers=-1, overflow="chunk")[0])


def test_a_chunked_document_over_the_request_token_limit_gets_413_naming_its_tokens(url, encoder):
    from layerwise.runtime.windows import split

    document = LONG_TEXT * 4  # ~2,600 tokens: under 32 inputs x 128 tokens, but not once windows overlap
    tokens = int(split(encoder.tokenizer, [document], None, None).tokenized.lengths.sum())
    content = len(encoder.tokenizer.tokens([document], add_special_tokens=False)[0].ids)
    limit = httpx.get(f"{url}/info").json()["max_request_tokens"]
    assert content < limit == 32 * 128 < tokens
    for route, field in (("/embed", "inputs"), ("/v1/embeddings", "input")):
        response = httpx.post(f"{url}{route}", json={field: [TEXTS[0], document], "overflow": "chunk"})
        assert response.status_code == 413, response.text
        assert f"`{field}[1]` alone {tokens} tokens" in response.text and f"limit of {limit} tokens per request" in response.text
    huge = LONG_TEXT * 8  # its tokens alone pass the limit: refused before any window is made
    content = len(encoder.tokenizer.tokens([huge], add_special_tokens=False)[0].ids)
    response = httpx.post(f"{url}/embed", json={"inputs": [TEXTS[0], huge], "overflow": "chunk"})
    first = len(encoder.tokenizer.tokens([TEXTS[0]])[0].ids)
    assert response.status_code == 413 and response.json()["error"].startswith(
        f"`inputs[1]` has at least {content + 2} tokens (the inputs up to it at least {first + content + 2}), more than the limit of "
        f"{limit} tokens per request"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"overflow": "chunk", "stride": 126}, "`stride` must be an integer from 0 to 125"),
        ({"stride": 8}, '`stride` applies to \\"overflow\\": \\"chunk\\" only'),
        ({"overflow": "chunk", "truncate": True}, "send `overflow` or `truncate`, not both"),
        ({"overflow": "split"}, "`overflow` must be 'truncate', 'error' or 'chunk', got 'split'"),
    ],
)
def test_bad_chunking_options_get_422_naming_the_fix(url, body, message):
    response = httpx.post(f"{url}/embed", json={"inputs": LONG_TEXT, **body})
    assert response.status_code == 422 and message in response.text, response.text


def test_scalar_mix_gives_the_runtimes_weighted_layers_on_both_routes(url, encoder):
    mix = {"layers": [0, -1], "combine": "scalar_mix", "weights": [0.5, -1.0], "gamma": 2.0}
    want = encoder.embed(TEXTS, layers=[0, -1], combine="scalar_mix", weights=[0.5, -1.0], gamma=2.0)
    got = np.array(_post(url, {"inputs": TEXTS, **mix, "normalize": False}).json(), dtype=np.float32)
    assert got.shape == (3, 64)
    np.testing.assert_array_equal(got, want)
    response = httpx.post(f"{url}/v1/embeddings", json={"input": TEXTS, **mix, "normalize": False, "encoding_format": "float"})
    np.testing.assert_array_equal(np.array([row["embedding"] for row in response.json()["data"]], dtype=np.float32), want)


def test_dimensions_may_name_a_concatenations_whole_width(url):
    body = {"input": "x", "layers": "all", "combine": "concat", "dimensions": 128, "encoding_format": "float"}
    response = httpx.post(f"{url}/v1/embeddings", json=body)
    assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 128


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"combine": "scalar_mix"}, '"combine": "scalar_mix" needs `weights`, one number per chosen layer'),
        ({"weights": [1.0]}, '`weights` and `gamma` are the parameters of "combine": "scalar_mix": pass it with them, or leave them out'),
        (
            {"layers": [0, 1], "combine": "scalar_mix", "weights": [1.0]},
            "`weights` has 1 numbers but 2 layers are chosen: give one weight per layer, in the order of `layers`",
        ),
        ({"combine": "scalar_mix", "weights": [1.0], "gamma": 1e7}, "`gamma` must be at most 1000000.0, got 10000000.0"),
        (
            {"layers": [0, 1, 1], "combine": "scalar_mix", "weights": [1.0, 1.0, 1.0]},
            "`combine` 'scalar_mix' weighs at most 2 layers (this model's hidden states), got a list of 3",
        ),
    ],
)
def test_bad_scalar_mix_options_get_422_naming_the_fix(url, body, message):
    response = httpx.post(f"{url}/embed", json={"inputs": "x", **body})
    assert (response.status_code, response.json()) == (422, {"error": message, "error_type": "validation"})
