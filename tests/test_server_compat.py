"""TEI's and OpenAI's clients work unchanged over a real socket: unknown fields ignored as TEI
ignores them, token-id inputs, TEI's /embed without encoding_format, and clean routing."""

from __future__ import annotations

import httpx
import numpy as np
import openai
from huggingface_hub import InferenceClient

from . import server_harness

encoder, running, url = server_harness.encoder, server_harness.running, server_harness.url  # module fixtures

TEXTS = ["hello", "Layers of meaning"]


def _pooled(encoder, texts):
    return encoder.embed(texts, layers=-1, pool=encoder.info.default_pooling["pool"], normalize=True)[:, 0]


def test_langchain_communitys_options_field_is_ignored_as_tei_ignores_it(url, encoder):
    body = {"inputs": TEXTS, "options": {"wait_for_model": True, "use_cache": True}}  # what HuggingFaceInferenceAPIEmbeddings posts
    for path in ("/", "/embed"):
        response = httpx.post(f"{url}{path}", json=body)
        assert response.status_code == 200 and response.headers["x-ignored-fields"] == "options", response.text
        np.testing.assert_array_equal(np.array(response.json(), dtype=np.float32), _pooled(encoder, TEXTS))
    assert "x-ignored-fields" not in httpx.post(f"{url}/embed", json={"inputs": TEXTS}).headers
    openai_body = httpx.post(f"{url}/v1/embeddings", json={"input": "x", "extra": 1, "options": {}})
    assert openai_body.status_code == 200 and openai_body.headers["x-ignored-fields"] == "extra, options"
    for path, body in (("/tokenize", {"inputs": "x", "options": {}}), ("/decode", {"ids": [101], "options": {}})):
        assert httpx.post(f"{url}{path}", json=body).headers["x-ignored-fields"] == "options"


def test_known_fields_stay_checked_beside_ignored_ones(url):
    response = httpx.post(f"{url}/embed", json={"inputs": "x", "options": {}, "layers": [9]})
    assert response.status_code == 422 and response.json()["error"].startswith("layer 9 does not exist")


def test_inference_client_asking_for_base64_gets_teis_float_vectors(url, encoder):
    client = InferenceClient(model=url)  # TEI's /embed has no encoding_format: TEI answers floats, so do we
    np.testing.assert_array_equal(client.feature_extraction(TEXTS, encoding_format="base64"), _pooled(encoder, TEXTS))


def test_token_ids_on_v1_embeddings_give_the_python_apis_vectors(url, encoder, tiny_bundle):
    ids = [e.ids for e in encoder.tokenizer.tokens(TEXTS)]  # with [CLS] and [SEP], as tokenizers gives them
    assert ids[0] == [101, 7592, 102]
    want = _pooled(encoder, TEXTS)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    for encoding in ({}, {"encoding_format": "float"}):  # the client asks for base64 and decodes it unless told
        result = client.embeddings.create(input=ids, model="tiny", **encoding)
        np.testing.assert_array_equal(np.array([d.embedding for d in result.data], dtype=np.float32), want)
    one = client.embeddings.create(input=ids[0], model="tiny")  # a single list of ints is one input
    np.testing.assert_array_equal(np.array([one.data[0].embedding], dtype=np.float32), want[:1])
    assert one.usage.prompt_tokens == 3
    runtime = encoder.embed(encoder.tokenizer.encode_ids(ids), layers=-1, normalize=True)[:, 0]  # the Python API's way
    np.testing.assert_array_equal(runtime, encoder.embed(TEXTS, layers=-1, normalize=True)[:, 0])


def test_token_ids_on_teis_embed_alone_and_mixed_with_text(url, encoder):
    ids = [101, 7592, 102]
    want = _pooled(encoder, TEXTS)
    single = httpx.post(f"{url}/embed", json={"inputs": ids}).json()
    np.testing.assert_array_equal(np.array(single, dtype=np.float32), want[:1])
    mixed = httpx.post(f"{url}/embed", json={"inputs": [TEXTS[1], ids, TEXTS[0]]})
    assert mixed.headers["x-compute-tokens"] == str(len(encoder.tokenizer.tokens([TEXTS[1]])[0].ids) + 6)
    np.testing.assert_array_equal(np.array(mixed.json(), dtype=np.float32), want[[1, 0, 0]])


def test_too_many_token_ids_are_413_unless_truncated(url):
    ids = [101] + [7592] * 200 + [102]
    refused = httpx.post(f"{url}/v1/embeddings", json={"input": [ids]})
    assert refused.status_code == 413 and refused.json()["error"]["message"].startswith(
        "`input[0]` has 202 tokens, more than the model's maximum input length 128"
    )
    cut = httpx.post(f"{url}/v1/embeddings", json={"input": [ids], "truncate": True})
    assert cut.status_code == 200 and cut.json()["usage"]["prompt_tokens"] == 128


def test_trailing_slash_is_a_clean_404_not_a_redirect(url):
    response = httpx.post(f"{url}/embed/", json={"inputs": "x"})
    assert response.status_code == 404 and response.json()["error"].startswith("no route POST /embed/; this server has POST /embed")
    assert "location" not in response.headers


def test_a_path_shared_by_get_and_post_names_both_in_allow(url):
    response = httpx.request("OPTIONS", f"{url}/")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"
    assert httpx.get(f"{url}/").json() == {"status": "ready"} and httpx.head(f"{url}/").status_code == 200
