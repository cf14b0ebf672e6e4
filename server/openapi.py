"""``GET /openapi.json`` (also TEI's ``/api-doc/openapi.json``) and ``GET /docs``: the API described
from the routes themselves.

Paths and methods come from the app's routes (``starlette.schemas.SchemaGenerator``); each
handler carries its ``Doc`` (``documented``): a summary, its request model for the served
model's ``Limits`` (the same pydantic model that validates the body, so a field or bound cannot
be served undocumented; schemathesis checks the server against this description), its answer's
type and its dialect's error body. pydantic writes JSON Schema 2020-12; ``openapi30`` turns it
into OpenAPI 3.0's dialect (``nullable``, ``enum`` for ``const``, no ``$ref``). ``/docs`` is
Swagger UI served from the swagger-ui-bundle package (the serve extra), so it works offline;
without that package it says how to install it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import EndpointInfo, SchemaGenerator

from .._version import __version__
from .errors import RouteNotFound
from .fields import Limits

OPENAPI_PATH = "/openapi.json"
TEI_OPENAPI_PATH = "/api-doc/openapi.json"
DOCS_PATH = "/docs"
DOC_PATHS = (OPENAPI_PATH, TEI_OPENAPI_PATH, DOCS_PATH)
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")  # what /docs loads
DESCRIPTION = (
    "Every encoder layer's embeddings, text-embeddings-inference and OpenAI compatible. As in TEI, request fields a "
    "route does not know are ignored (and named in the `x-ignored-fields` response header); every known field, "
    "layerwise's extensions included, is checked. `null` counts as absent. What the schemas cannot say: a text's "
    "token count (413 past the model maximum unless truncated or chunked), and the tokens of all windows of a chunked "
    "request (413 past `max_request_tokens` in /info). What a route refuses across fields is in each request body's "
    "`allOf`: `overflow` with `truncate`; `stride` only with `overflow` 'chunk', which takes texts only; `weights` (one per "
    "chosen layer) and `gamma` only with `combine` 'scalar_mix'; `dimensions` the hidden size or, with 'concat', the whole "
    "width; on /v1/embeddings, several layers only with `combine`. What depends on how many layers are chosen is spelled "
    "out for lists of up to 10 layers; longer lists are described without a scalar mix or a concatenation's width, which "
    "the server takes up to the model's hidden states."
)
ERROR_STATUSES = {
    "400": "empty input",
    "408": "request body too slow (--body-timeout)",
    "413": "over a limit",
    "422": "invalid request or tokenizer error",
    "424": "backend error",
    "429": "overloaded",
    "503": "not ready",
}
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Doc:
    """A handler's operation: ``body`` builds its request model for the served model's limits (None: no body);
    ``answer`` is the JSON answer's type (None: text); ``error`` the error body's model (None: TEI's)."""

    summary: str
    body: Callable[[Limits], type[BaseModel]] | None = None
    answer: Any = None
    error: type[BaseModel] | None = None
    binary: bool = False  # also application/x-npy and -npz


def documented(doc: Doc) -> Callable[[F], F]:
    def attach(endpoint: F) -> F:
        endpoint.doc = doc  # type: ignore[attr-defined]
        return endpoint

    return attach


def schema_of(kind: Any) -> dict[str, Any]:
    """``kind``'s (a pydantic model or any type) JSON Schema in OpenAPI 3.0's dialect."""
    schema = kind.model_json_schema() if isinstance(kind, type) and issubclass(kind, BaseModel) else TypeAdapter(kind).json_schema()
    definitions = schema.pop("$defs", {})
    return openapi30(schema, definitions)


def openapi30(schema: Any, definitions: dict[str, Any]) -> Any:
    """JSON Schema 2020-12 as pydantic writes it -> OpenAPI 3.0: ``anyOf [X, null]`` -> X with ``nullable`` (and
    null among an enum's values), ``const`` -> ``enum``, ``examples`` -> ``example``, ``$ref`` inlined, no titles."""
    if isinstance(schema, list):
        return [openapi30(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return openapi30(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    out = {key: openapi30(value, definitions) for key, value in schema.items() if key not in ("title", "anyOf", "const", "examples")}
    if "const" in schema:
        out["enum"] = [schema["const"]]
    if "examples" in schema:
        out["example"] = schema["examples"][0]
    choices = [openapi30(choice, definitions) for choice in schema.get("anyOf", []) if choice != {"type": "null"}]
    if len(choices) < len(schema.get("anyOf", [])):
        out["nullable"] = True
        if len(choices) == 1 and "enum" in choices[0]:
            choices[0] = {**choices[0], "enum": [*choices[0]["enum"], None]}
    if len(choices) == 1:
        out = {**choices[0], **out}
    elif choices:
        out["anyOf"] = choices
    if out.get("type") == "null":  # only null: a field that must be absent or null
        out = {key: value for key, value in out.items() if key != "type"} | {"enum": [None], "nullable": True}
    return out


def _operation(doc: Doc, limits: Limits, error: type[BaseModel]) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema_of(doc.answer)}} if doc.answer is not None else {"text/plain": {}}
    if doc.binary:
        content |= {"application/x-npy": {}, "application/x-npz": {}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    operation: dict[str, Any] = {"summary": doc.summary, "responses": responses}
    if doc.body is None:
        responses["503"] = {"description": "not ready"}
        return operation
    errors = {"application/json": {"schema": schema_of(doc.error or error)}}
    responses |= {status: {"description": why, "content": errors} for status, why in ERROR_STATUSES.items()}
    operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema_of(doc.body(limits))}}}
    return operation


class Described(SchemaGenerator):
    """Starlette's generator, with each handler's ``Doc`` (one per method of a shared path) for the served model's ``limits``."""

    def __init__(self, limits: Limits, error: type[BaseModel]) -> None:
        super().__init__({"openapi": "3.0.3", "info": {"title": "layerwise", "version": __version__, "description": DESCRIPTION}})
        self._limits, self._error = limits, error

    def get_endpoints(self, routes: list[BaseRoute]) -> list[EndpointInfo]:
        endpoints = super().get_endpoints(routes)
        return [EndpointInfo(e.path, e.http_method, getattr(e.func, "by_method", {}).get(e.http_method.upper(), e.func)) for e in endpoints]

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        doc = getattr(func_or_method, "doc", None)
        return _operation(doc, self._limits, self._error) if doc is not None else {}


async def openapi(request: Request) -> Response:
    state = request.app.state
    return JSONResponse(Described(state.lifecycle.limits, state.dialect_of("/").error_model).get_schema(routes=request.app.routes))


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


ROUTES = [
    Route(OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
    Route(TEI_OPENAPI_PATH, openapi, methods=["GET"], include_in_schema=False),
    Route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False),
    Route(DOCS_PATH + "/{name}", docs_asset, methods=["GET"], include_in_schema=False),
]
