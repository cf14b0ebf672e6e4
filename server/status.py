"""The server's state: GET /health (readiness), /live (liveness), /info (the model and every limit), /metrics.

/health answers 200 only when the model is loaded, warmed and not draining (503 otherwise, from
``Lifecycle.batcher``); /live answers while the process serves, 503 once the model failed to load.
``by_method`` lets a path share GET and POST between handlers (TEI's ``GET /`` is /health,
``POST /`` is /embed) so a 405 names all their methods. Not handled here: the embedding routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._version import __version__
from ..runtime.combine import COMBINES
from ..runtime.options import POOLS
from . import embedding
from .metrics import CONTENT_TYPE
from .openapi import Doc, documented
from .settings import Settings, max_request_tokens

Handler = Callable[[Request], Awaitable[Response]]


def by_method(**handlers: Handler) -> Handler:
    """One endpoint for a path several handlers share (``GET /`` and ``POST /``), so the 405's
    ``allow`` header names all their methods; the description still documents each handler."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    endpoint.by_method = handlers  # type: ignore[attr-defined]
    return endpoint


@documented(Doc("Readiness: 200 once the model is loaded and warm (also GET / and /ping)", answer=dict[str, str]))
async def health(request: Request) -> Response:
    request.app.state.lifecycle.batcher()  # 503 unless ready
    return JSONResponse({"status": "ready"})


@documented(Doc("Liveness: 200 while the process serves, 503 if the model failed to load", answer=dict[str, str]))
async def live(request: Request) -> Response:
    phase = request.app.state.lifecycle.phase
    return JSONResponse({"status": phase}, status_code=503 if phase == "failed" else 200)


@documented(Doc("The model, its limits and the server settings", answer=dict[str, Any]))
async def info(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    model = request.app.state.lifecycle.batcher().encoder.info
    return JSONResponse(
        {
            "model_id": settings.model_id,
            "model_type": model.model_type,
            "variant": model.variant,
            "provider": model.provider,
            "threads": model.threads,
            "num_layers": model.num_layers,
            "hidden_size": model.hidden_size,
            "max_input_length": model.max_length,
            "default_pooling": model.default_pooling,
            "pools": list(POOLS),
            "combines": list(COMBINES),
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_batch_requests": settings.max_batch_requests,
            "max_wait_ms": settings.max_wait_ms,
            "max_client_batch_size": settings.max_client_batch_size,
            "max_request_tokens": max_request_tokens(settings, model.max_length),
            "payload_limit": settings.payload_limit,
            "json_float_limit": embedding.JSON_FLOAT_LIMIT,
            "auto_truncate": settings.auto_truncate,
            "keep_alive_timeout": settings.keep_alive_timeout,
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "api_key_required": settings.api_key is not None,
            "version": __version__,
        }
    )


@documented(Doc("Prometheus metrics"))
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/live", live, methods=["GET"]),
    Route("/info", info, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
