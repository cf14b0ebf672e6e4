"""``GET /api-doc/openapi.json`` (TEI's path) and ``GET /docs``: the API described by Starlette's own schema generator.

Paths and methods come from the app's routes (``starlette.schemas.SchemaGenerator``); each
handler's operation comes from ``OPERATIONS`` and each request's fields from the field sets
the parsers accept (schema.py), so a route or field cannot be served undocumented (a test
checks every route). ``/docs`` is Swagger UI (loaded from its CDN) showing that document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from .._version import __version__
from ..runtime.combine import COMBINERS
from ..runtime.options import OVERFLOWS, POOLS
from ..runtime.windows import STRIDE_DEFAULT_RULE
from . import routes, tei
from .schema import DECODE_FIELDS, EMBED_ALL_FIELDS, ENCODINGS, OPENAI_FIELDS, TEI_FIELDS, TOKENIZE_FIELDS

OPENAPI_PATH = "/api-doc/openapi.json"
SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
TEXTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}], "example": "What is Deep Learning?"}
LAYERS = {
    "oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}, {"type": "string", "enum": ["all"]}],
    "description": "hidden states: 0 is the embedding output, -1 the last layer; default the last",
}
FIELDS: dict[str, dict[str, Any]] = {
    "inputs": TEXTS,
    "input": TEXTS,
    "normalize": {"type": "boolean", "description": "unit-length vectors; default true on /embed, false on /embed_all"},
    "truncate": {"type": "boolean", "default": False, "description": "cut texts longer than the model maximum instead of a 413"},
    "overflow": {
        "type": "string",
        "enum": list(OVERFLOWS),
        "nullable": True,
        "description": "layerwise extension beside truncate: 'chunk' embeds a long text whole as overlapping windows (all windows' "
        "tokens count against max_request_tokens in /info)",
    },
    "stride": {
        "type": "integer",
        "nullable": True,
        "description": f"with overflow 'chunk': tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})",
    },
    "truncation_direction": {"type": "string", "enum": ["right", "Right"], "default": "right"},
    "prompt_name": {"type": "string", "nullable": True, "description": "not supported: must be null"},
    "dimensions": {"type": "integer", "nullable": True, "description": "only the width the request gives anyway"},
    "layers": LAYERS,
    "pool": {"type": "string", "enum": list(POOLS), "description": "default: the checkpoint's own pooling, else mean"},
    "combine": {"type": "string", "enum": [name for name in COMBINERS if name], "nullable": True},
    "encoding_format": {"type": "string", "enum": list(ENCODINGS), "default": "float"},
    "model": {"type": "string", "nullable": True},
    "user": {"type": "string", "nullable": True},
    "add_special_tokens": {"type": "boolean", "default": True},
    "ids": {
        "oneOf": [
            {"type": "array", "items": {"type": "integer"}},
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        ]
    },
    "skip_special_tokens": {"type": "boolean", "default": True},
}
VECTORS = {"type": "array", "items": {"oneOf": [{"type": "array", "items": {}}, {"type": "string", "format": "base64"}]}}
TOKEN = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "special": {"type": "boolean"},
        "start": {"type": "integer", "nullable": True, "description": "UTF-8 byte offset, null for special tokens"},
        "stop": {"type": "integer", "nullable": True},
    },
}
TEI_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}}}
OPENAI_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "object", "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"}}}
    },
}
OPENAI_RESPONSE = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {"type": "object", "properties": {"object": {"type": "string"}, "index": {"type": "integer"}, "embedding": {}}},
        },
        "model": {"type": "string"},
        "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}},
    },
}
TEI_ERRORS = {
    "400": "empty input",
    "413": "over a limit",
    "422": "invalid request or tokenizer error",
    "424": "backend error",
    "429": "overloaded",
    "503": "not ready",
}


def _request(fields: set[str], required: str) -> dict[str, Any]:
    properties = {name: FIELDS[name] for name in sorted(fields)}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": [required], "additionalProperties": False, "properties": properties}
            }
        },
    }


def _operation(
    summary: str, fields: set[str], required: str, answer: dict[str, Any], error: dict[str, Any] = TEI_ERROR, binary: bool = False
) -> dict[str, Any]:
    content = {"application/json": {"schema": answer}}
    if binary:
        content |= {"application/x-npy": {}, "application/x-npz": {}}
    responses = {"200": {"description": "OK", "content": content}}
    responses |= {status: {"description": why, "content": {"application/json": {"schema": error}}} for status, why in TEI_ERRORS.items()}
    return {"summary": summary, "requestBody": _request(fields, required), "responses": responses}


def _read(summary: str, answer: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": answer}} if answer else {"text/plain": {}}
    return {"summary": summary, "responses": {"200": {"description": "OK", "content": content}, "503": {"description": "not ready"}}}


OPERATIONS: dict[Callable[..., Any], dict[str, Any]] = {
    routes.embed_tei: _operation(
        "One vector per input (TEI /embed; also POST / and /invocations), with layers, pool and combine",
        TEI_FIELDS,
        "inputs",
        VECTORS,
        binary=True,
    ),
    routes.embed_all: _operation(
        "Every token's vectors per input (TEI /embed_all), with layers and combine", EMBED_ALL_FIELDS, "inputs", VECTORS, binary=True
    ),
    routes.embed_openai: _operation("OpenAI embeddings (also /embeddings)", OPENAI_FIELDS, "input", OPENAI_RESPONSE, OPENAI_ERROR),
    tei.tokenize: _operation(
        "TEI's token objects per input", TOKENIZE_FIELDS, "inputs", {"type": "array", "items": {"type": "array", "items": TOKEN}}
    ),
    tei.decode: _operation("Texts for token ids", DECODE_FIELDS, "ids", {"type": "array", "items": {"type": "string"}}),
    routes.health: _read("Readiness: 200 once the model is loaded and warm (also GET / and /ping)", {"type": "object"}),
    routes.live: _read("Liveness: 200 while the process serves, 503 if the model failed to load", {"type": "object"}),
    routes.info: _read("The model, its limits and the server settings", {"type": "object"}),
    routes.metrics: _read("Prometheus metrics"),
}


class Described(SchemaGenerator):
    """Starlette's generator, with operations from ``OPERATIONS`` instead of YAML docstrings."""

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        return OPERATIONS.get(func_or_method, {})


GENERATOR = Described(
    {
        "openapi": "3.0.3",
        "info": {
            "title": "layerwise",
            "version": __version__,
            "description": "Every encoder layer's embeddings, text-embeddings-inference and OpenAI compatible.",
        },
    }
)


async def openapi(request: Request) -> Response:
    return JSONResponse(GENERATOR.get_schema(routes=request.app.routes))


async def docs(request: Request) -> Response:
    return HTMLResponse(
        f'<!doctype html><html><head><title>layerwise API</title><link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css"></head>'
        f'<body><div id="ui"></div><script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>'
        f'<script>SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#ui"}})</script></body></html>'
    )


DOC_ROUTES = [
    Route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
    Route("/docs", docs, methods=["GET"], include_in_schema=False),
]
