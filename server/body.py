"""Reading a request and noticing its client leave: the pieces every route with a body shares.

``read_body`` refuses a body past --payload-limit with 413 before any parsing and one not complete
--body-timeout seconds after its head with 408; a client that leaves mid-body is ClientGone (499,
answered to nobody). ``unless_disconnected`` cancels work whose client has gone. Fields a route
does not know are named in ``x-ignored-fields`` (``ignored_header``). Not handled here: parsing
(parse.py) and the read deadlines before a body (connection.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect, Request

from .errors import ClientGone, RequestTimeout, TooLarge
from .settings import Settings

INLINE_BYTES = 1 << 16  # larger bodies are parsed in a thread, off the event loop
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


def _too_large(size: str, limit: int) -> str:
    return f"request body is {size}, more than the limit of {limit} bytes (--payload-limit): send fewer or shorter inputs per request"


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


def ignored_header(ignored: tuple[str, ...], most: int = 16) -> dict[str, str]:
    """``x-ignored-fields``: the request's fields this route does not know (ignored, as TEI does), each
    escaped to printable ASCII (a header cannot carry the rest) and cut to 64 characters, at most ``most``."""
    if not ignored:
        return {}
    names = [ascii(name)[1:-1][:64] for name in ignored[:most]]
    return {"x-ignored-fields": ", ".join(names) + (f", ... ({len(ignored)} in all)" if len(ignored) > most else "")}
