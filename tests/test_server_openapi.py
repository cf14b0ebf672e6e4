"""The served OpenAPI description agrees with the server: schemathesis, every check, over a real socket.

schemathesis generates requests from /openapi.json (valid ones, and ones that break it in one
place) and checks each answer: no 500, documented statuses and content types, valid bodies
accepted, invalid ones refused, 405 with ``allow`` for undocumented methods. Bounded (a fixed
seed and example count) to stay within the suite's time; the CLI run is what a user would type.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx

from .server_harness import cpu_loader, serving

EXAMPLES = 25  # per operation and phase: ~30 s on a busy 2-core machine
SEED = 20


def test_schemathesis_finds_the_server_consistent_with_its_openapi_description(tiny_bundle, tmp_path):
    with serving(tiny_bundle, threads=1) as running:
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", f"{running.url}/openapi.json",
            "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--no-color",
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert httpx.get(f"{running.url}/health").status_code == 200  # and it still serves
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout and "17 passed" in result.stdout, result.stdout[-3000:]


def test_the_description_names_the_models_limits(tiny_bundle):
    with serving(tiny_bundle, threads=1) as running:
        spec = httpx.get(f"{running.url}/openapi.json").json()
    body = spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = body["properties"]["inputs"]["oneOf"][2]
    assert (batch["minItems"], batch["maxItems"]) == (1, 32)
    assert body["properties"]["inputs"]["oneOf"][1]["items"] == {"type": "integer", "minimum": 0, "maximum": 30521}
    assert body["properties"]["truncate"]["nullable"] is True and body["additionalProperties"] is True
    layer = body["properties"]["layers"]["oneOf"][0]
    assert (layer["minimum"], layer["maximum"]) == (-2, 1)
    assert {
        "not": {"required": ["overflow", "truncate"], "properties": {"overflow": {"type": "string"}, "truncate": {"type": "boolean"}}}
    } in body["allOf"]
    assert "ignored" in spec["info"]["description"]
    assert body["properties"]["stride"]["maximum"] == 125 and body["properties"]["pool"]["enum"] == ["mean", "max", "cls", "none", None]
    openai = spec["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert openai["properties"]["pool"]["enum"] == ["mean", "max", "cls", None] and "input" in openai["required"]
    by_count = next(rule["anyOf"] for rule in body["allOf"] if "anyOf" in rule and "layers" in rule["anyOf"][0]["properties"])
    two_layers = next(way["anyOf"] for way in by_count if way["properties"]["layers"] == {"type": "array", "minItems": 2, "maxItems": 2})
    one_weight_each = {"combine": {"enum": ["scalar_mix"]}, "weights": {"type": "array", "minItems": 2, "maxItems": 2}}
    assert any(way["properties"].items() >= one_weight_each.items() for way in two_layers)
    widths = [way["properties"]["dimensions"]["enum"] for way in two_layers if way["properties"]["combine"] == {"enum": ["concat"]}]
    assert widths == [[64, 128, None]]


def test_while_the_model_loads_the_description_leaves_its_bounds_out(tiny_bundle):
    loading = threading.Event()

    def load():
        loading.wait(60)
        return cpu_loader(tiny_bundle)()

    with serving(tiny_bundle, loader=load, ready=False) as running:
        spec = httpx.get(f"{running.url}/openapi.json").json()
        loading.set()
    body = spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["layers"]["oneOf"][0] == {"type": "integer"}
    assert body["properties"]["inputs"]["oneOf"][1]["items"] == {"type": "integer", "minimum": 0}
    assert body["properties"]["inputs"]["oneOf"][2]["maxItems"] == 32 and "maximum" not in body["properties"]["stride"]
