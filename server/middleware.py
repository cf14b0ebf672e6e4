"""Every HTTP request passes here: the API-key check, then counts and latency by route and status.

Route labels are the known paths or "other", so arbitrary URLs cannot grow the metrics.
The key is compared in constant time and never logged; reads of health, metrics and the API
description stay open (``OPEN_ROUTES``, GET and HEAD only: ``POST /`` embeds and needs the key).
An exception no handler took becomes the JSON 500 here, with ``connection: close``, instead of
uvicorn dropping the connection under a client that expects it kept alive.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .dialect import Dialect
from .errors import Unauthorized, error_response
from .metrics import Metrics
from .openapi import DOC_PATHS, DOCS_PATH

log = logging.getLogger("layerwise.server")
OPEN_ROUTES = ("/health", "/live", "/metrics", "/", "/ping", *DOC_PATHS)
OPEN_METHODS = ("GET", "HEAD")


def bearer_matches(scope: Scope, key: bytes) -> bool:
    """True when the request carries ``Authorization: Bearer <key>``."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)
    return False


class FrontDoor:
    """ASGI middleware: 401 without the key (when one is set), and request metrics for every answer."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, api_key: str | None, paths: tuple[str, ...], dialect_of: Callable[[str], Dialect]
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._paths = paths
        self._dialect_of = dialect_of
        self._key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in self._paths else "other"
        status, started_response = 500, False

        async def send_noting_status(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
            await send(message)

        try:
            is_open = (route in OPEN_ROUTES or scope["path"].startswith(DOCS_PATH + "/")) and scope["method"] in OPEN_METHODS
            if self._key is not None and not is_open and not bearer_matches(scope, self._key):
                refusal = Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <key>'")
                await error_response(refusal, self._dialect_of(scope["path"]))(scope, receive, send_noting_status)
            else:
                await self.app(scope, receive, send_noting_status)
        except Exception as e:  # noqa: BLE001 - a bug: answer a JSON 500, keep the details in the log
            if started_response:
                raise  # uvicorn closes the connection: the answer cannot be completed
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await error_response(e, self._dialect_of(scope["path"]))(scope, receive, send_noting_status)
        finally:
            self._metrics.inc("layerwise_requests_total", route=route, status=str(status))
            self._metrics.observe("layerwise_request_duration_seconds", time.perf_counter() - started, route=route)
