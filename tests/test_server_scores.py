"""Scores over HTTP: TEI's /similarity through huggingface_hub's InferenceClient equals the cosine of the Python
API's vectors; /bertscore and /maxsim give the Python API's numbers; bad requests are refused naming the field,
and the routes are described with the served model's limits."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient

from . import server_harness

encoder, running, url = server_harness.encoder, server_harness.running, server_harness.url  # module fixtures

CANDIDATES = ["the cat sat on the mat", "a storm is coming over the hills", "prices rose in March"]
REFERENCES = [["a cat was on the mat", "cats sit"], "the weather turns bad", "in March, prices went up"]


def test_inference_clients_sentence_similarity_is_the_cosine_of_the_python_apis_vectors(url, encoder):
    sentences = ["a cat sat on a mat", "the stock market fell", "kittens like mats"]
    got = InferenceClient(model=f"{url}/similarity").sentence_similarity("the cat sat on the mat", other_sentences=sentences)
    pool = encoder.info.default_pooling.get("pool", "mean")
    vectors = encoder.embed(["the cat sat on the mat", *sentences], layers=-1, pool=pool, normalize=True)[:, 0].astype(np.float64)
    np.testing.assert_allclose(got, vectors[1:] @ vectors[0], atol=1e-6)


def test_bertscore_route_gives_the_python_apis_scores_for_several_layers_and_references(url, encoder):
    pairs = [{"candidate": c, "reference": r} for c, r in zip(CANDIDATES, REFERENCES)]
    answer = httpx.post(f"{url}/bertscore", json={"pairs": pairs, "layer": [0, 1], "idf": True})
    assert answer.status_code == 200, answer.text
    want = encoder.bertscore(CANDIDATES, [r if isinstance(r, list) else [r] for r in REFERENCES], [0, 1], idf=True)
    body = answer.json()
    np.testing.assert_array_equal(body["f1"], want.f1)
    np.testing.assert_array_equal(body["precision"], want.precision)
    assert body["layers"] == [0, 1] and body["hash"] == want.hash


def test_maxsim_route_gives_the_python_apis_scores_and_matches(url, encoder):
    answer = httpx.post(f"{url}/maxsim", json={"query": "cat on a mat", "documents": CANDIDATES, "matches": True})
    assert answer.status_code == 200, answer.text
    want = encoder.maxsim("cat on a mat", CANDIDATES, return_matches=True)
    np.testing.assert_array_equal(answer.json()["scores"], want.scores)
    assert answer.json()["matches"][1]["tokens"] == list(want.matches[1].tokens)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/bertscore", {"pairs": [], "layer": 1}, 422, "`pairs` must hold at least 1 item(s)"),
        ("/bertscore", {"pairs": [{"candidate": "a", "reference": "b"}]}, 422, "`layer` is missing"),
        ("/bertscore", {"pairs": [{"candidate": "a", "reference": "b"}], "layer": 2}, 422, "layer 2 does not exist"),
        ("/bertscore", {"pairs": [{"candidate": "a", "reference": "b"}] * 33, "layer": 1}, 422, "`pairs` must hold at most 32 item(s)"),
        ("/maxsim", {"query": "", "documents": ["a"]}, 400, "`query` is an empty string"),
        ("/maxsim", {"query": "a", "documents": ["b"], "layer": [0, 1]}, 422, "MaxSim over several layers ([0, 1]) needs `combine`"),
        ("/similarity", {"inputs": {"source_sentence": "a"}}, 422, "`inputs.sentences` is missing"),
    ],
)
def test_bad_score_requests_are_refused_naming_the_field(url, path, body, status, message):
    answer = httpx.post(f"{url}{path}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"].startswith(message), answer.json()["error"]


def test_the_score_routes_are_described_with_the_served_models_limits(url):
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    bertscore = paths["/bertscore"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert bertscore["properties"]["pairs"]["maxItems"] == 32 and "layer" in bertscore["required"]
    assert {"/similarity", "/maxsim"} <= set(paths)
