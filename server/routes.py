"""The routes: POST /embed and /embed_all (TEI), POST /v1/embeddings (OpenAI), GET /health, /live, /info, /metrics.

TEI's aliases, /tokenize and /decode are in tei.py; /docs in openapi.py.

Order per embedding request: readiness (503), body size (413, before parsing) and body
deadline (408), then the concurrency cap (429 at once: a slow body holds no slot), parsing
(422/400/413), token lengths (413), batched run, NaN check (424), body. A client that
disconnects while its request waits is dropped (``unless_disconnected``): its job leaves the
queue before it runs. /health is readiness (200 only when loaded, warmed and not draining);
/live is liveness. Statuses come from errors.ERRORS only.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._version import __version__
from ..runtime.combine import COMBINERS
from ..runtime.errors import LayerwiseError
from ..runtime.options import POOLS
from . import pipeline
from .errors import ClientGone, MethodNotAllowed, RequestError, RequestTimeout, RouteNotFound, TooLarge, error_response
from .metrics import CONTENT_TYPE
from .render import binary_body, binary_media, check_acceptable, check_finite, openai_body, tei_body
from .schema import EmbedRequest, parse_openai, parse_tei, parse_tei_all
from .settings import Settings, max_request_tokens

INLINE_BYTES = 1 << 16  # larger bodies are parsed in a thread, off the event loop
INLINE_FLOATS = 1 << 16  # larger outputs are checked and serialised in a thread
T = TypeVar("T")


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, refused with 413 as soon as it is known to pass --payload-limit bytes (before any
    parsing), or with 408 when it is not complete --body-timeout seconds after its head."""
    limit = settings.payload_limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(_too_large(f"{declared} bytes", limit))

    async def chunks() -> bytes:
        parts, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(_too_large(f"at least {size} bytes", limit))
            parts.append(chunk)
        return b"".join(parts)

    try:
        return await asyncio.wait_for(chunks(), settings.body_timeout)
    except ClientDisconnect:  # it reset, closed or half-closed before its body was whole: nobody reads an answer
        raise ClientGone("the client closed the connection before its request body was whole") from None
    except asyncio.TimeoutError:
        raise RequestTimeout(
            f"request body not complete {settings.body_timeout:g} s after its headers (--body-timeout); send the body at once"
        ) from None


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result; if the client disconnects first, ``work`` is cancelled (a queued job then
    leaves the queue unrun) and ClientGone is raised. Call only once the body is read."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not task.done():
        task.cancel()
        raise ClientGone("the client closed the connection before its answer was ready")
    return task.result()


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _too_large(size: str, limit: int) -> str:
    return f"request body is {size}, more than the limit of {limit} bytes (--payload-limit): send fewer or shorter inputs per request"


async def _embed(request: Request, parse: Callable[..., EmbedRequest], tei: bool) -> Response:
    started = time.perf_counter()
    settings: Settings = request.app.state.settings
    batcher = request.app.state.lifecycle.batcher()
    body = await read_body(request, settings)
    with batcher.admit() as admission:
        parse_body = functools.partial(parse, body, batcher.encoder.info, settings.max_client_batch_size, settings.auto_truncate)
        parsed = await asyncio.to_thread(parse_body) if len(body) > INLINE_BYTES else parse_body()
        media = binary_media(request.headers.get("accept")) if tei else None
        check_acceptable(parsed, media)
        max_tokens = max_request_tokens(settings, batcher.encoder.info.max_length)
        json_floats = media is None and parsed.encoding == "float"
        done = await unless_disconnected(request, pipeline.embed(batcher, admission, parsed, json_floats, max_tokens))
        floats = sum(a.size for a in done.output)
        finish = _body_maker(parsed, done, media, tei, settings.model_id)
        content = await asyncio.to_thread(finish) if floats > INLINE_FLOATS else finish()
    headers = done.headers(time.perf_counter() - started, batcher.encoder.info.provider) | ignored_header(parsed.ignored)
    return Response(content, media_type=media or "application/json", headers=headers)


def ignored_header(ignored: tuple[str, ...], most: int = 16) -> dict[str, str]:
    """``x-ignored-fields``: the request's fields this route does not know (ignored, as TEI does), each
    escaped to printable ASCII (a header cannot carry the rest) and cut to 64 characters, at most ``most``."""
    if not ignored:
        return {}
    names = [ascii(name)[1:-1][:64] for name in ignored[:most]]
    return {"x-ignored-fields": ", ".join(names) + (f", ... ({len(ignored)} in all)" if len(ignored) > most else "")}


def _body_maker(parsed: EmbedRequest, done: pipeline.Embedded, media: str | None, tei: bool, model: str) -> Callable[[], bytes]:
    """The body in the asked format, made only after NaN and Inf are ruled out (else a 500)."""
    if media is not None:
        render = functools.partial(binary_body, parsed, done.output, media)
    elif tei:
        render = functools.partial(tei_body, parsed, done.output)
    else:
        render = functools.partial(openai_body, parsed, done.output, model, done.tokens)

    def checked() -> bytes:
        check_finite(parsed, done.output)
        return render()

    return checked


async def embed_tei(request: Request) -> Response:
    return await _embed(request, parse_tei, tei=True)


async def embed_all(request: Request) -> Response:
    return await _embed(request, parse_tei_all, tei=True)


async def embed_openai(request: Request) -> Response:
    return await _embed(request, parse_openai, tei=False)


def by_method(**handlers: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint for a path several handlers share (``GET /`` and ``POST /``), so the 405's
    ``allow`` header names all their methods; the description still documents each handler."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    endpoint.by_method = handlers  # type: ignore[attr-defined]
    return endpoint


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
            "combines": [name for name in COMBINERS if name],
            "max_concurrent_requests": settings.max_concurrent_requests,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_batch_requests": settings.max_batch_requests,
            "max_wait_ms": settings.max_wait_ms,
            "max_client_batch_size": settings.max_client_batch_size,
            "max_request_tokens": max_request_tokens(settings, model.max_length),
            "payload_limit": settings.payload_limit,
            "json_float_limit": pipeline.JSON_FLOAT_LIMIT,
            "auto_truncate": settings.auto_truncate,
            "keep_alive_timeout": settings.keep_alive_timeout,
            "header_timeout": settings.header_timeout,
            "body_timeout": settings.body_timeout,
            "api_key_required": settings.api_key is not None,
            "version": __version__,
        }
    )


async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


ROUTES = [
    Route("/embed", embed_tei, methods=["POST"]),
    Route("/embed_all", embed_all, methods=["POST"]),
    Route("/v1/embeddings", embed_openai, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
    Route("/live", live, methods=["GET"]),
    Route("/info", info, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


async def _request_error(request: Request, exc: Exception) -> Response:
    return error_response(exc, request.url.path)


async def _not_found(request: Request, exc: Exception) -> Response:
    routes = ", ".join(f"{min(route.methods or ())} {route.path}" for route in request.app.routes if isinstance(route, Route))
    return error_response(RouteNotFound(f"no route {request.method} {request.url.path}; this server has {routes}"), request.url.path)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    allow = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
    allow = ", ".join(sorted(allow.split(", ")))
    refusal = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}; use {allow}")
    return error_response(refusal, request.url.path, headers={"allow": allow})


EXCEPTION_HANDLERS = {  # anything else is middleware.FrontDoor's 500
    RequestError: _request_error,
    LayerwiseError: _request_error,
    404: _not_found,
    405: _not_allowed,
}
