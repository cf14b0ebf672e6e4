"""Every HTTP request passes here: the API-key check, then counts and latency by route and status.

Route labels are the known paths or "other", so arbitrary URLs cannot grow the metrics.
The key is compared in constant time and never logged; reads of health, metrics and the API
description stay open (``OPEN_ROUTES``, GET and HEAD only: ``POST /`` embeds and needs the key).
"""

from __future__ import annotations

import hmac
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import Unauthorized, error_response
from .metrics import Metrics
from .openapi import OPENAPI_PATH

OPEN_ROUTES = ("/health", "/live", "/metrics", "/", "/ping", "/docs", OPENAPI_PATH)
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

    def __init__(self, app: ASGIApp, metrics: Metrics, api_key: str | None, paths: tuple[str, ...]) -> None:
        self.app = app
        self._metrics = metrics
        self._paths = paths
        self._key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in self._paths else "other"
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            is_open = route in OPEN_ROUTES and scope["method"] in OPEN_METHODS
            if self._key is not None and not is_open and not bearer_matches(scope, self._key):
                refusal = Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <key>'")
                await error_response(refusal, scope["path"])(scope, receive, send_noting_status)
            else:
                await self.app(scope, receive, send_noting_status)
        finally:
            self._metrics.inc("layerwise_requests_total", route=route, status=str(status))
            self._metrics.observe("layerwise_request_duration_seconds", time.perf_counter() - started, route=route)
