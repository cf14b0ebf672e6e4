"""TEI's whole surface for an embedding model, over a real socket: huggingface_hub's clients, aliases, /embed_all,
/tokenize, /decode, /docs, errors."""

from __future__ import annotations

import asyncio
import re

import httpx
import numpy as np
import openai
import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from tokenizers import Tokenizer

from layerwise.server import openai as openai_routes
from layerwise.server import tei
from layerwise.server.openapi import DOC_PATHS, OPENAPI_PATH

from . import server_harness

encoder, running, url = server_harness.encoder, server_harness.running, server_harness.url  # module fixtures

TEXTS = ["The cat sat on the mat.", "Layers of meaning", "naïve café, déjà vu"]
LONG_TEXT = "token " * 200  # more than the tiny model's 128


def _pooled(encoder, texts, **options):
    pool = encoder.info.default_pooling["pool"]
    return encoder.embed(texts, layers=-1, pool=pool, **{"normalize": True, **options})[:, 0]


@pytest.mark.filterwarnings("ignore::layerwise.runtime.TruncationWarning")
def test_inference_client_feature_extraction_equals_embed_for_one_text_and_a_list(url, encoder):
    client = InferenceClient(model=url)  # posts to POST /, as against TEI
    np.testing.assert_array_equal(client.feature_extraction(TEXTS[0]), _pooled(encoder, [TEXTS[0]]))
    np.testing.assert_array_equal(client.feature_extraction(TEXTS), _pooled(encoder, TEXTS))
    raw = client.feature_extraction(TEXTS, normalize=False)
    np.testing.assert_array_equal(raw, _pooled(encoder, TEXTS, normalize=False))
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    cut = client.feature_extraction([LONG_TEXT, "short"], truncate=True, truncation_direction="right")
    np.testing.assert_array_equal(cut, _pooled(encoder, [LONG_TEXT, "short"]))
    with pytest.raises(Exception, match="413") as refused:
        client.feature_extraction(LONG_TEXT, truncate=False)
    assert "more than the model's maximum input length 128" in str(refused.value.response.json()["error"])


def test_async_inference_client_gets_the_same_vectors(url, encoder):
    async def both() -> list[np.ndarray]:
        client = AsyncInferenceClient(model=url)
        return await asyncio.gather(client.feature_extraction(TEXTS), client.feature_extraction(TEXTS[1], normalize=False))

    many, one = asyncio.run(both())
    np.testing.assert_array_equal(many, _pooled(encoder, TEXTS))
    np.testing.assert_array_equal(one, _pooled(encoder, [TEXTS[1]], normalize=False))


def test_post_root_and_invocations_are_embed_and_get_root_and_ping_are_health(url):
    body = {"inputs": TEXTS, "layers": [0, 1]}
    want = httpx.post(f"{url}/embed", json=body).json()
    assert [httpx.post(f"{url}{path}", json=body).json() == want for path in ("/", "/invocations")] == [True, True]
    assert [httpx.get(f"{url}{path}").json() for path in ("/", "/ping")] == [{"status": "ready"}] * 2


def test_embed_all_is_every_tokens_vector_as_pool_none(url, encoder):
    got = httpx.post(f"{url}/embed_all", json={"inputs": TEXTS}).json()  # TEI's shape: per input [tokens, hidden], not normalised
    want = encoder.embed_tokens(TEXTS, layers=-1)
    assert [np.array(g).shape for g in got] == [(w.shape[1], 64) for w in want]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.array(g, dtype=np.float32), w[0])
    layered = httpx.post(f"{url}/embed_all", json={"inputs": TEXTS[0], "layers": "all", "combine": "concat", "normalize": True}).json()
    np.testing.assert_array_equal(
        np.array(layered[0], dtype=np.float32), encoder.embed_tokens(TEXTS[0], layers="all", combine="concat", normalize=True)[0]
    )
    ignored = httpx.post(f"{url}/embed_all", json={"inputs": TEXTS[0], "pool": "mean"})  # not a field of /embed_all: ignored, as TEI
    assert ignored.headers["x-ignored-fields"] == "pool" and len(ignored.json()[0]) == len(got[0])


def test_tokenize_gives_teis_token_objects_with_the_tokenizers_ids_and_byte_offsets(url, tiny_bundle):
    tokenizer = Tokenizer.from_file(str(tiny_bundle / "tokenizer.json"))
    for special in (True, False):
        got = httpx.post(f"{url}/tokenize", json={"inputs": TEXTS, "add_special_tokens": special}).json()
        for text, tokens, want in zip(TEXTS, got, tokenizer.encode_batch(TEXTS, add_special_tokens=special)):
            assert [t["id"] for t in tokens] == want.ids
            for token, (start, stop), is_special in zip(tokens, want.offsets, want.special_tokens_mask):
                if is_special:
                    assert token["special"] and token["start"] is None and token["stop"] is None
                else:  # TEI counts UTF-8 bytes: "naïve" has 6
                    assert (token["start"], token["stop"]) == (len(text[:start].encode()), len(text[:stop].encode()))
                    assert token["text"] == text.encode()[token["start"] : token["stop"]].decode() == text[start:stop]
    single = httpx.post(f"{url}/tokenize", json={"inputs": "naïve"}).json()
    assert single == [
        [
            {"id": 101, "text": "[CLS]", "special": True, "start": None, "stop": None},
            {"id": tokenizer.token_to_id("naive"), "text": "naïve", "special": False, "start": 0, "stop": 6},
            {"id": 102, "text": "[SEP]", "special": True, "start": None, "stop": None},
        ]
    ]


def test_decode_round_trips_the_tokenizers_ids(url, tiny_bundle):
    tokenizer = Tokenizer.from_file(str(tiny_bundle / "tokenizer.json"))
    ids = [e.ids for e in tokenizer.encode_batch(TEXTS)]
    assert (
        httpx.post(f"{url}/decode", json={"ids": ids}).json()
        == tokenizer.decode_batch(ids)
        == ["the cat sat on the mat.", "layers of meaning", "naive cafe, deja vu"]
    )
    assert httpx.post(f"{url}/decode", json={"ids": ids[1], "skip_special_tokens": False}).json() == ["[CLS] layers of meaning [SEP]"]
    unknown = httpx.post(f"{url}/decode", json={"ids": [101, 10**6]})
    assert unknown.status_code == 422 and unknown.json() == {
        "error": "token id 1000000 (sequence 0) is not in the vocabulary of 30522 tokens (ids 0..30521)",
        "error_type": "tokenizer",
    }


def test_openai_client_works_on_v1_embeddings_and_the_embeddings_alias(url, encoder):
    want = _pooled(encoder, TEXTS)
    for base in (f"{url}/v1", url):
        client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)
        result = client.embeddings.create(input=TEXTS, model="tiny")
        np.testing.assert_array_equal(np.array([d.embedding for d in result.data], dtype=np.float32), want)


def test_openai_routes_answer_errors_in_openais_shape(url):
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.embeddings.create(input="x", model="tiny", dimensions=32)
    assert refused.value.body == {
        "message": "`dimensions` 32 is not available: this request gives 64-dimensional vectors and layerwise does not shorten them; "
        "leave `dimensions` out",
        "type": "validation",
        "code": 422,
    }
    for path in ("/embeddings", "/v1/embeddings"):
        response = httpx.post(f"{url}{path}", json={"input": []})
        assert response.status_code == 400
        assert response.json() == {"error": {"message": "`input` cannot be empty; send at least one string", "type": "empty", "code": 400}}
    assert httpx.post(f"{url}/embed", json={"inputs": []}).json() == {
        "error": "`inputs` cannot be empty; send at least one string",
        "error_type": "empty",
    }


def test_openapi_documents_every_route_and_every_field_the_parsers_accept(running, url):
    app_routes = {(r.path, m.lower()) for r in running.server.config.app.routes for m in r.methods if m != "HEAD"}
    spec = httpx.get(f"{url}{OPENAPI_PATH}").json()
    assert httpx.get(f"{url}/api-doc/openapi.json").json() == spec  # TEI's path too
    documented = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert documented == app_routes - {(path, "get") for path in (*DOC_PATHS, "/docs/{name}")}
    fields = {
        path: set(spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"])
        for path in ("/", "/embed", "/embed_all", "/embeddings", "/tokenize", "/decode")
    }
    limits = running.server.config.app.state.lifecycle.limits
    models = (tei.embed_model, tei.embed_model, tei.embed_all_model, openai_routes.embed_model, tei.tokenize_model, tei.decode_model)
    assert fields == {path: set(model(limits).model_fields) for path, model in zip(fields, models)}
    assert fields["/embed"] - fields["/embed_all"] == {"pool"} and {"layers", "combine", "weights", "gamma"} <= fields["/embeddings"]
    page = httpx.get(f"{url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and OPENAPI_PATH in page.text


def test_docs_loads_swagger_ui_from_this_server_not_a_cdn(url):
    page = httpx.get(f"{url}/docs").text
    assert "http://" not in page and "https://" not in page  # works offline
    assets = re.findall(r'(?:src|href)="(/docs/[^"]+)"', page)
    assert sorted(assets) == ["/docs/favicon-32x32.png", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"]
    for asset in assets:
        response = httpx.get(f"{url}{asset}")
        assert response.status_code == 200 and len(response.content) > 500, asset
    assert "SwaggerUIBundle" in httpx.get(f"{url}/docs/swagger-ui-bundle.js").text
    assert httpx.get(f"{url}/docs/../../etc/passwd").status_code == 404 and httpx.get(f"{url}/docs/index.j2").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "message"),
    [
        ("/decode", {"ids": []}, 400, "empty", "`ids` cannot be empty; send at least one token id"),
        ("/decode", {"ids": [[101], []]}, 400, "empty", "`ids[1]` cannot be empty; send at least one token id"),
        ("/decode", {"ids": [101, -1]}, 422, "validation", "`ids` must hold token ids (integers from 0), got -1"),
        ("/decode", {"ids": "101"}, 422, "validation", "`ids` must be a list of token ids or a list of such lists, got a string"),
        ("/tokenize", {"inputs": ["a", ""]}, 400, "empty", "`inputs[1]` is an empty string; every input needs some text"),
        (
            "/tokenize",
            {"inputs": ["a"] * 33},
            422,
            "validation",
            "batch size 33 > maximum allowed batch size 32: split the request, or start the server with a larger --max-client-batch-size",
        ),
        (
            "/tokenize",
            {"inputs": "a", "prompt_name": "query"},
            422,
            "validation",
            "`prompt_name` is not supported: this server has no prompts configured; prepend the prompt to the text",
        ),
    ],
)
def test_bad_tokenize_and_decode_requests_get_teis_statuses(url, path, body, status, kind, message):
    response = httpx.post(f"{url}{path}", json=body)
    assert (response.status_code, response.json()) == (status, {"error": message, "error_type": kind})
