"""What the server refuses, and the one table mapping every exception to an HTTP status.

Each route's dialect shapes the body (dialect.py: TEI's ``{"error", "error_type"}``, OpenAI's
``{"error": {"message", "type", "code"}}``) from the same message, kind and status. Statuses
follow TEI: 413 and 422 validation, 422 tokenizer, 424 backend, 429 overloaded, 503 unhealthy,
400 empty; 408 for a body too slow to arrive. The runtime's exceptions know nothing of HTTP;
they are placed in ``ERRORS`` here, next to the server's own, and a runtime ``InputError`` is
worded for HTTP (``http_wording``: JSON field names, the request's ``inputs[i]``). Anything not in
the table is a 500 whose details stay in the server log; it and the 408 close the connection
(``connection: close``), since the request's state is unknown.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..runtime.errors import InputError, LayerwiseError, NonFiniteOutputError, TooLongError, UntokenizableText, http_wording

HTTP_NAMES = {"max_length": "the model's maximum input length"}  # the runtime's parameters HTTP has no field for


class RequestError(Exception):
    """A request the server refuses; ``ERRORS`` gives its status. The message names the fix."""


class InvalidRequest(RequestError):
    """Malformed JSON, an unknown field or a field of the wrong type or value."""


class EmptyInput(RequestError):
    """No inputs, or an empty string among them."""


class TooLarge(RequestError):
    """Body, input count, input length or response size over its limit."""


class TokenizerError(RequestError):
    """The tokenizer cannot encode or decode this input, e.g. a token id outside the vocabulary."""


class RequestTimeout(RequestError):
    """The body did not arrive within --body-timeout."""


class ClientGone(RequestError):
    """The client closed the connection before its answer was ready; nobody reads the 499."""


class NotAcceptable(RequestError):
    """The Accept header asks for a format this output cannot take."""


class Unauthorized(RequestError):
    """No or wrong API key."""


class Overloaded(RequestError):
    """The concurrency cap is reached; answered at once, never queued."""


class Unavailable(RequestError):
    """The model is still loading, failed to load, or the server is shutting down."""


class RouteNotFound(RequestError):
    """No route at this path."""


class MethodNotAllowed(RequestError):
    """The route exists but not for this method."""


# Most specific first is not needed: lookup walks each exception's MRO.
ERRORS: dict[type[BaseException], tuple[int, str, dict[str, str]]] = {
    InvalidRequest: (422, "validation", {}),
    InputError: (422, "validation", {}),
    TooLongError: (413, "validation", {}),
    UntokenizableText: (422, "tokenizer", {}),
    RequestTimeout: (408, "timeout", {"connection": "close"}),
    ClientGone: (499, "client_closed", {}),
    EmptyInput: (400, "empty", {}),
    TooLarge: (413, "validation", {}),
    NotAcceptable: (406, "validation", {}),
    Unauthorized: (401, "unauthorized", {"www-authenticate": "Bearer"}),
    Overloaded: (429, "overloaded", {"retry-after": "1"}),
    Unavailable: (503, "unhealthy", {"retry-after": "1"}),
    RouteNotFound: (404, "not_found", {}),
    MethodNotAllowed: (405, "method_not_allowed", {}),
    TokenizerError: (422, "tokenizer", {}),
    NonFiniteOutputError: (424, "backend", {}),
    LayerwiseError: (424, "backend", {}),
}


UNLISTED = (500, "backend", {"connection": "close"})


def status_of(exc: BaseException) -> tuple[int, str, dict[str, str]]:
    """Status, TEI error_type and extra headers for an exception; UNLISTED (a 500) if not in ERRORS."""
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return UNLISTED


class Dialect(Protocol):
    """What an error answer needs of a route's dialect (dialect.Dialect)."""

    @property
    def field(self) -> str: ...

    def error_body(self, message: str, kind: str, status: int) -> dict[str, Any]: ...


def error_response(exc: BaseException, dialect: Dialect, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer for ``exc`` in ``dialect``'s shape. An unlisted exception's text stays in the server log (uvicorn logs it)."""
    status, kind, extra = status_of(exc)
    listed = any(cls in ERRORS for cls in type(exc).__mro__)
    if isinstance(exc, InputError):
        message = exc.render(http_wording(dialect.field, names=HTTP_NAMES))
    else:
        message = str(exc) if listed else f"internal error ({type(exc).__name__}); see the server log"
    return JSONResponse(dialect.error_body(message, kind, status), status_code=status, headers={**extra, **(headers or {})})


async def _refused(request: Request, exc: Exception) -> Response:
    return error_response(exc, request.app.state.dialect_of(request.url.path))


async def _not_found(request: Request, exc: Exception) -> Response:
    routes = ", ".join(f"{min(route.methods or ())} {route.path}" for route in request.app.routes if isinstance(route, Route))
    refusal = RouteNotFound(f"no route {request.method} {request.url.path}; this server has {routes}")
    return error_response(refusal, request.app.state.dialect_of(request.url.path))


async def _not_allowed(request: Request, exc: Exception) -> Response:
    allow = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
    allow = ", ".join(sorted(allow.split(", ")))
    refusal = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use {allow}")
    return error_response(refusal, request.app.state.dialect_of(request.url.path), headers={"allow": allow})


EXCEPTION_HANDLERS = {  # anything else is middleware.FrontDoor's 500
    RequestError: _refused,
    LayerwiseError: _refused,
    404: _not_found,
    405: _not_allowed,
}
