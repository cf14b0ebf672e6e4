"""The HTTP app and ``serve``: routes, limits in front of the batcher, uvicorn with graceful shutdown.

Routes: POST /embed (TEI), POST /v1/embeddings (OpenAI), GET /health (readiness: 503 until
the model is loaded and warmed, and while draining), GET /live (liveness), GET /info,
GET /metrics (Prometheus). Order per embedding request: readiness, concurrency cap (429 at
once), body size (413, before parsing), parsing (422/400/413), token lengths, batched run,
NaN check, body. Statuses come from errors.ERRORS only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import socket
import sys
import time
from typing import AsyncIterator, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..runtime import load
from ..runtime.errors import LayerwiseError
from ..runtime.manifest import read_manifest
from ..runtime.options import POOLS
from . import pipeline
from .errors import MethodNotAllowed, RequestError, RouteNotFound, TooLarge, error_response
from .lifecycle import Lifecycle, Loader
from .metrics import CONTENT_TYPE, Metrics
from .middleware import FrontDoor
from .render import binary_body, binary_media, check_acceptable, check_finite, openai_body, tei_body
from .schema import EmbedRequest, parse_openai, parse_tei
from .settings import Settings, check_budget, settings_from_args

log = logging.getLogger("layerwise.server")
INLINE_FLOATS = 1 << 16  # larger outputs are serialised in a thread, off the event loop


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit`` bytes (before any parsing)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(_too_large(f"{declared} bytes", limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(_too_large(f"over {size} bytes", limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: str, limit: int) -> str:
    return f"request body is {size}, more than the limit of {limit} bytes (--payload-limit): send fewer or shorter inputs per request"


async def _embed(request: Request, parse: Callable[..., EmbedRequest], tei: bool) -> Response:
    started = time.perf_counter()
    settings: Settings = request.app.state.settings
    batcher = request.app.state.lifecycle.batcher()
    with batcher.admit() as admission:
        body = await read_body(request, settings.payload_limit)
        parsed = parse(body, batcher.encoder.info, settings.max_client_batch_size)
        media = binary_media(request.headers.get("accept")) if tei else None
        check_acceptable(parsed, media)
        done = await pipeline.embed(batcher, admission, parsed, json_floats=media is None and parsed.encoding == "float")
        check_finite(parsed, done.output)
        if media is not None:
            make = functools.partial(binary_body, parsed, done.output, media)
        elif tei:
            make = functools.partial(tei_body, parsed, done.output)
        else:
            make = functools.partial(openai_body, parsed, done.output, settings.model_id, done.tokens)
        floats = sum(a.size for a in done.output) if isinstance(done.output, list) else done.output.size
        content = await asyncio.to_thread(make) if floats > INLINE_FLOATS else make()
    headers = done.headers(time.perf_counter() - started, batcher.encoder.info.provider)
    return Response(content, media_type=media or "application/json", headers=headers)


async def embed_tei(request: Request) -> Response:
    return await _embed(request, parse_tei, tei=True)


async def embed_openai(request: Request) -> Response:
    return await _embed(request, parse_openai, tei=False)


async def health(request: Request) -> Response:
    request.app.state.lifecycle.batcher()  # 503 unless ready
    return JSONResponse({"status": "ready"})


async def live(request: Request) -> Response:
    phase = request.app.state.lifecycle.phase
    return JSONResponse({"status": phase}, status_code=503 if phase == "failed" else 200)


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
            "combines": ["concat", "sum", "mean"],
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_batch_requests": settings.max_batch_requests,
            "max_wait_ms": settings.max_wait_ms,
            "max_client_batch_size": settings.max_client_batch_size,
            "payload_limit": settings.payload_limit,
            "json_float_limit": pipeline.JSON_FLOAT_LIMIT,
            "auto_truncate": False,
            "api_key_required": settings.api_key is not None,
            "version": __version__,
        }
    )


async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


async def _request_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    routes = "POST /embed, POST /v1/embeddings, GET /health, GET /live, GET /info, GET /metrics"
    return error_response(RouteNotFound(f"no route {request.method} {request.url.path}; this server has {routes}"))


async def _not_allowed(request: Request, exc: Exception) -> Response:
    allow = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
    refusal = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use {allow}")
    return error_response(refusal, headers={"allow": allow})


def create_app(settings: Settings, loader: Loader) -> Starlette:
    """The ASGI app; ``loader`` builds the Encoder in the background once the app starts."""
    registry = Metrics()
    lifecycle = Lifecycle(settings, loader, registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        lifecycle.start()
        yield
        await lifecycle.stop()

    app = Starlette(
        routes=[
            Route("/embed", embed_tei, methods=["POST"]),
            Route("/v1/embeddings", embed_openai, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/live", live, methods=["GET"]),
            Route("/info", info, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        middleware=[Middleware(FrontDoor, metrics=registry, api_key=settings.api_key)],
        exception_handlers={RequestError: _request_error, LayerwiseError: _request_error, 404: _not_found, 405: _not_allowed},
        lifespan=lifespan,
    )
    app.state.settings, app.state.lifecycle, app.state.metrics = settings, lifecycle, registry
    return app


class Server(uvicorn.Server):
    """uvicorn's server, which also stops when the model fails to load and drains the app on shutdown."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle

    async def on_tick(self, counter: int) -> bool:
        return await super().on_tick(counter) or self.lifecycle.phase == "failed"

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.lifecycle.drain()  # /health turns 503 and new requests are refused while in-flight ones finish
        await super().shutdown(sockets)


def server_for(settings: Settings, loader: Loader, **uvicorn_options: object) -> Server:
    """A ready-to-run Server for ``settings``; ``serve`` and the tests both build it here."""
    app = create_app(settings, loader)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, timeout_graceful_shutdown=settings.graceful_timeout, lifespan="on", **uvicorn_options  # type: ignore[arg-type]
    )
    return Server(config, app.state.lifecycle)


def serve(args: argparse.Namespace) -> int:
    """``layerwise serve``: check the settings against the bundle, then serve until SIGTERM or SIGINT."""
    settings = settings_from_args(args)
    log.setLevel(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)  # the CLI may have raised the root level
    check_budget(settings, read_manifest(settings.bundle).max_length)  # a wrong path or budget fails before listening
    if not settings.loopback and settings.api_key is None:
        log.warning("listening on %s without --api-key: anyone who can reach this port can use the model", settings.host)
    loader = functools.partial(load, settings.bundle, variant=settings.variant, provider=settings.provider, threads=settings.threads)
    server = server_for(settings, loader)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the captured SIGINT once drained
        pass
    error = server.lifecycle.error
    if isinstance(error, LayerwiseError):
        raise error
    if error is not None:
        print(f"error: could not load the model: {error}", file=sys.stderr)
        return 1
    return 0
