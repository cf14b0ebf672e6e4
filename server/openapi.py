"""``GET /openapi.json`` (also TEI's ``/api-doc/openapi.json``) and ``GET /docs``: the API described
by Starlette's own schema generator.

Paths and methods come from the app's routes (``starlette.schemas.SchemaGenerator``); each
handler's operation comes from ``OPERATIONS`` and each request's fields from the field sets
the parsers accept (schema.py), with the served model's limits (openapi_fields.py), so a
route or field cannot be served undocumented (a test checks every route, and schemathesis
checks the server against the description). ``/docs`` is Swagger UI served from the
swagger-ui-bundle package (the serve extra), so it works offline; without that package it
says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import EndpointInfo, SchemaGenerator

from .._version import __version__
from . import routes, tei
from .errors import RouteNotFound
from .openapi_fields import ERROR_STATUSES, OPENAI_ERROR, OPENAI_RESPONSE, TEI_ERROR, TOKEN, VECTORS, Limits, request_schema
from .schema import DECODE_FIELDS, EMBED_ALL_FIELDS, OPENAI_FIELDS, TEI_FIELDS, TOKENIZE_FIELDS

OPENAPI_PATH = "/openapi.json"
TEI_OPENAPI_PATH = "/api-doc/openapi.json"
DOCS_PATH = "/docs"
DOC_PATHS = (OPENAPI_PATH, TEI_OPENAPI_PATH, DOCS_PATH)
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")  # what /docs loads
DESCRIPTION = (
    "Every encoder layer's embeddings, text-embeddings-inference and OpenAI compatible. As in TEI, request fields a "
    "route does not know are ignored (and named in the `x-ignored-fields` response header); every known field, "
    "layerwise's extensions included, is checked. `null` counts as absent."
)
Body = tuple[set[str], str, str]  # a route's field names, its required one, and its kind (openapi_fields.fields)


def _operation(summary: str, body: Body, answer: dict[str, Any], error: dict[str, Any] = TEI_ERROR, binary: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": answer}}
    if binary:
        content |= {"application/x-npy": {}, "application/x-npz": {}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    responses |= {
        status: {"description": why, "content": {"application/json": {"schema": error}}} for status, why in ERROR_STATUSES.items()
    }
    return {"summary": summary, "x-body": body, "responses": responses}


def _read(summary: str, answer: dict[str, Any] | None = None) -> dict[str, Any]:
    content = {"application/json": {"schema": answer}} if answer else {"text/plain": {}}
    return {"summary": summary, "responses": {"200": {"description": "OK", "content": content}, "503": {"description": "not ready"}}}


OPERATIONS: dict[Callable[..., Any], dict[str, Any]] = {
    routes.embed_tei: _operation(
        "One vector per input (TEI /embed; also POST / and /invocations), with layers, pool and combine",
        (TEI_FIELDS, "inputs", "tei"),
        VECTORS,
        binary=True,
    ),
    routes.embed_all: _operation(
        "Every token's vectors per input (TEI /embed_all), with layers and combine",
        (EMBED_ALL_FIELDS, "inputs", "tei"),
        VECTORS,
        binary=True,
    ),
    routes.embed_openai: _operation(
        "OpenAI embeddings (also /embeddings)", (OPENAI_FIELDS, "input", "openai"), OPENAI_RESPONSE, OPENAI_ERROR
    ),
    tei.tokenize: _operation(
        "TEI's token objects per input",
        (TOKENIZE_FIELDS, "inputs", "tokenize"),
        {"type": "array", "items": {"type": "array", "items": TOKEN}},
    ),
    tei.decode: _operation("Texts for token ids", (DECODE_FIELDS, "ids", "decode"), {"type": "array", "items": {"type": "string"}}),
    routes.health: _read("Readiness: 200 once the model is loaded and warm (also GET / and /ping)", {"type": "object"}),
    routes.live: _read("Liveness: 200 while the process serves, 503 if the model failed to load", {"type": "object"}),
    routes.info: _read("The model, its limits and the server settings", {"type": "object"}),
    routes.metrics: _read("Prometheus metrics"),
}


class Described(SchemaGenerator):
    """Starlette's generator, with operations from ``OPERATIONS`` (one per method of a shared path)
    and request bodies built for the served model's ``limits``."""

    def __init__(self, limits: Limits) -> None:
        super().__init__({"openapi": "3.0.3", "info": {"title": "layerwise", "version": __version__, "description": DESCRIPTION}})
        self._limits = limits

    def get_endpoints(self, routes: list[BaseRoute]) -> list[EndpointInfo]:
        endpoints = super().get_endpoints(routes)
        return [EndpointInfo(e.path, e.http_method, getattr(e.func, "by_method", {}).get(e.http_method.upper(), e.func)) for e in endpoints]

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        operation = dict(OPERATIONS.get(func_or_method, {}))
        body = operation.pop("x-body", None)
        if body is not None:
            names, required, kind = body
            schema = request_schema(names, required, self._limits, kind)
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        return operation


def limits(request: Request) -> Limits:
    settings, lifecycle = request.app.state.settings, request.app.state.lifecycle
    if lifecycle.phase != "ready":
        return Limits(settings.max_client_batch_size)
    encoder = lifecycle.batcher().encoder
    info, tokenizer = encoder.info, encoder.tokenizer
    max_stride = info.max_length - tokenizer.special_tokens - 1
    return Limits(settings.max_client_batch_size, info.num_layers, tokenizer.vocab_size, info.hidden_size, max_stride)


async def openapi(request: Request) -> Response:
    return JSONResponse(Described(limits(request)).get_schema(routes=request.app.routes))


def swagger_folder() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


async def docs(request: Request) -> Response:
    if swagger_folder() is None:
        return HTMLResponse(
            f"<!doctype html><html><head><title>layerwise API</title></head><body><p>Swagger UI is not installed here: "
            f"<code>pip install swagger-ui-bundle</code> (in the serve extra). The API description is at "
            f'<a href="{OPENAPI_PATH}">{OPENAPI_PATH}</a>.</p></body></html>'
        )
    return HTMLResponse(
        f'<!doctype html><html><head><title>layerwise API</title><link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">'
        f'<link rel="icon" href="{DOCS_PATH}/favicon-32x32.png"></head><body><div id="ui"></div>'
        f'<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>'
        f'<script>SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#ui"}})</script></body></html>'
    )


async def docs_asset(request: Request) -> Response:
    name, folder = request.path_params["name"], swagger_folder()
    if folder is None or name not in SWAGGER_FILES:
        raise RouteNotFound(f"no file {name!r} under {DOCS_PATH}; it serves {', '.join(SWAGGER_FILES)} (with swagger-ui-bundle installed)")
    return FileResponse(folder / name)


DOC_ROUTES = [
    Route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
    Route(TEI_OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
    Route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False),
    Route(DOCS_PATH + "/{name}", docs_asset, methods=["GET"], include_in_schema=False),
]
