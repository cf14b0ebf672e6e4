"""With an API key, every route but the reads of health, metrics and the API description needs the bearer token; the key is never logged."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from layerwise.cli import build_parser
from layerwise.commands.serve import settings_from_args
from layerwise.server.settings import Settings

from .server_harness import serving

KEY = "k3y-that-must-never-be-logged"


@pytest.fixture(scope="module")
def url(tiny_bundle):
    with serving(tiny_bundle, threads=1, api_key=KEY) as running:
        yield running.url


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": KEY}, {"authorization": f"Basic {KEY}"}])
def test_embedding_without_the_right_bearer_token_is_401(url, headers):
    response = httpx.post(f"{url}/embed", json={"inputs": "x"}, headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
        "error_type": "unauthorized",
    }


def test_the_right_key_works_for_plain_http_and_the_openai_client(url):
    assert httpx.post(f"{url}/embed", json={"inputs": "x"}, headers={"authorization": f"bearer {KEY}"}).status_code == 200
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    assert len(client.embeddings.create(input="x", model="tiny").data[0].embedding) == 64
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).embeddings.create(input="x", model="tiny")


def test_health_live_metrics_and_docs_stay_open_and_the_rest_is_closed(url):
    open_paths = ("/health", "/live", "/metrics", "/", "/ping", "/docs", "/api-doc/openapi.json")
    assert [httpx.get(f"{url}{path}").status_code for path in open_paths] == [200] * len(open_paths)
    for path in ("/", "/invocations", "/embed_all", "/tokenize", "/decode", "/embeddings"):  # POST / embeds: closed, unlike GET /
        assert httpx.post(f"{url}{path}", json={"inputs": "x"}).status_code == 401, path
    openai_refusal = httpx.post(f"{url}/embeddings", json={"input": "x"}).json()
    assert openai_refusal == {
        "error": {"message": "missing or wrong API key: send the header 'Authorization: Bearer <key>'", "type": "unauthorized", "code": 401}
    }
    assert [httpx.get(f"{url}{path}").status_code for path in ("/info", "/no-such-route")] == [401, 401]
    assert httpx.get(f"{url}/info", headers={"authorization": f"Bearer {KEY}"}).json()["api_key_required"] is True


def test_the_key_never_appears_in_logs_settings_or_responses(tiny_bundle, caplog):
    caplog.set_level(logging.DEBUG)
    with serving(tiny_bundle, threads=1, api_key=KEY) as running:
        for headers in ({}, {"authorization": f"Bearer {KEY}"}, {"authorization": f"Bearer {KEY}x"}):
            response = httpx.post(f"{running.url}/embed", json={"inputs": "x"}, headers=headers)
            assert KEY not in response.text
        assert KEY not in httpx.get(f"{running.url}/metrics").text
        assert KEY not in httpx.get(f"{running.url}/info", headers={"authorization": f"Bearer {KEY}"}).text
        assert KEY not in repr(running.server.config.app.state.settings)
    assert "POST /embed" in caplog.text and KEY not in caplog.text


def test_the_key_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAYERWISE_API_KEY", "from-env")
    assert settings_from_args(build_parser().parse_args(["serve", "b"])).api_key == "from-env"
    assert settings_from_args(build_parser().parse_args(["serve", "b", "--api-key", "flag"])).api_key == "flag"
    monkeypatch.setenv("LAYERWISE_API_KEY", "")
    assert settings_from_args(build_parser().parse_args(["serve", "b"])) == Settings(bundle="b")
