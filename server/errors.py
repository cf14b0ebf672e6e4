"""What the server refuses, and the one table mapping every exception to an HTTP status.

Bodies follow text-embeddings-inference: ``{"error": message, "error_type": kind}``; on the
OpenAI routes (``OPENAI_ROUTES``) OpenAI's ``{"error": {"message", "type", "code"}}`` with the
same kind and the status as code. Statuses follow TEI: 413 and 422 validation, 422
tokenizer, 424 backend, 429 overloaded, 503 unhealthy, 400 empty; 408 for a body too slow to
arrive. The runtime's exceptions know nothing of HTTP; they are placed in ``ERRORS`` here,
next to the server's own. Anything not in the table is a 500 whose details stay in the server
log; it and the 408 close the connection (``connection: close``), since the request's state is
unknown.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from ..runtime.errors import InputError, LayerwiseError, NonFiniteOutputError, UntokenizableText


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


OPENAI_ROUTES = ("/v1/embeddings", "/embeddings")  # these answer errors in OpenAI's shape


# Most specific first is not needed: lookup walks each exception's MRO.
ERRORS: dict[type[BaseException], tuple[int, str, dict[str, str]]] = {
    InvalidRequest: (422, "validation", {}),
    InputError: (422, "validation", {}),
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


def error_response(exc: BaseException, path: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer for ``exc`` on ``path`` (TEI's shape, or OpenAI's on OPENAI_ROUTES).

    An unlisted exception's text stays in the server log (uvicorn logs it).
    """
    status, kind, extra = status_of(exc)
    listed = any(cls in ERRORS for cls in type(exc).__mro__)
    message = str(exc) if listed else f"internal error ({type(exc).__name__}); see the server log"
    body = (
        {"error": {"message": message, "type": kind, "code": status}} if path in OPENAI_ROUTES else {"error": message, "error_type": kind}
    )
    return JSONResponse(body, status_code=status, headers={**extra, **(headers or {})})
