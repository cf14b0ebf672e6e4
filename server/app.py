"""Assembly and running: the Starlette app, uvicorn with graceful shutdown, and ``layerwise serve``.

The port listens at once while the model loads in the background (see lifecycle.py). On
SIGTERM or SIGINT uvicorn stops accepting connections, the app drains (/health turns 503,
new requests are refused) and in-flight requests get ``--graceful-timeout`` seconds to
finish; after a SIGTERM the process then exits by that signal, as uvicorn does.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from ..io.streams import BackgroundStreamHandler
from ..runtime import load
from ..runtime.errors import LayerwiseError
from ..runtime.manifest import read_manifest
from . import openai, openapi, scores, status, tei
from .connection import protocol_with_deadlines
from .dialect import Dialect
from .errors import EXCEPTION_HANDLERS
from .lifecycle import Lifecycle, Loader
from .metrics import Metrics
from .middleware import FrontDoor
from .settings import Settings, check_budget

log = logging.getLogger("layerwise.server")


def create_app(settings: Settings, loader: Loader) -> Starlette:
    """The ASGI app; ``loader`` builds the Encoder in the background once the app starts."""
    registry = Metrics()
    lifecycle = Lifecycle(settings, loader, registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        lifecycle.start()
        yield
        await lifecycle.stop()

    every_route = tei.ROUTES + scores.ROUTES + openai.ROUTES + status.ROUTES + openapi.ROUTES
    paths = tuple(route.path for route in every_route)
    dialect_of = dialects(tei.DIALECT, (tei.DIALECT, tei.ROUTES), (openai.DIALECT, openai.ROUTES))
    app = Starlette(
        routes=every_route,
        middleware=[Middleware(FrontDoor, metrics=registry, api_key=settings.api_key, paths=paths, dialect_of=dialect_of)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # POST /embed/ is a 404 naming the routes, not a 307 that drops the body
    app.state.settings, app.state.lifecycle, app.state.metrics = settings, lifecycle, registry
    app.state.dialect_of = dialect_of
    return app


def dialects(default: Dialect, *spoken: tuple[Dialect, list[Any]]) -> Callable[[str], Dialect]:
    """Which dialect answers on a path (errors included): the one its route module speaks, else ``default``."""
    by_path = {route.path: dialect for dialect, routes in spoken for route in routes}
    return lambda path: by_path.get(path, default)


# uvicorn drains on SIGINT and SIGTERM; SIGHUP (the terminal or ssh session that started the server
# closing) would otherwise end the process at once, losing the requests in flight.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


class Server(uvicorn.Server):
    """uvicorn's server, which also stops when the model fails to load, drains the app on shutdown,
    and drains on SIGHUP as on SIGTERM."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle

    async def on_tick(self, counter: int) -> bool:
        return await super().on_tick(counter) or self.lifecycle.phase == "failed"

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.lifecycle.drain()  # /health turns 503 and new requests are refused while in-flight ones finish
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's own, over STOP_SIGNALS: each one drains, then is raised again once the server stopped."""
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        flush_logs()  # SIGTERM and SIGHUP raised again end the process at once
        for captured in reversed(self._captured_signals):
            signal.raise_signal(captured)


def server_for(settings: Settings, loader: Loader, **uvicorn_options: Any) -> Server:
    """A ready-to-run Server for ``settings``; ``serve`` and the tests both build it here."""
    app = create_app(settings, loader)
    # floats: uvicorn's annotations say int, its waits take any number
    seconds: Any = (settings.graceful_timeout, settings.keep_alive_timeout)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=seconds[0],
        timeout_keep_alive=seconds[1],
        http=protocol_with_deadlines(settings.header_timeout),
        lifespan="on",
        **uvicorn_options,
    )
    return Server(config, app.state.lifecycle)


def flush_logs() -> None:
    """Write what the log handlers still hold (they write on threads of their own; a stalled stream waits a moment only)."""
    for name in (None, "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.flush()


def log_config(quiet: bool) -> dict[str, Any]:
    """uvicorn's logging set-up, and ours on the root logger (plain messages on stderr), all through
    handlers that write on a thread of their own and drop records when their stream is closed or
    stalls (io/streams.py): a log reader that went away or stopped reading costs no request."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    handler_class = f"{BackgroundStreamHandler.__module__}.{BackgroundStreamHandler.__qualname__}"
    for handler in config["handlers"].values():
        handler["class"] = handler_class
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["plain"] = {"class": handler_class, "formatter": "plain", "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["plain"], "level": "WARNING" if quiet else "INFO"}
    return config


def serve(settings: Settings, quiet: bool = False) -> int:
    """``layerwise serve``: check the settings against the bundle, then serve until SIGTERM or SIGINT;
    ``quiet`` logs warnings and errors only (no access log)."""
    log.setLevel(logging.WARNING if quiet else logging.INFO)  # our own level: the CLI may have raised the root's
    check_budget(settings, read_manifest(settings.bundle).model.max_length)  # a wrong path or budget fails before listening
    if not settings.loopback and settings.api_key is None:
        log.warning("listening on %s without --api-key: anyone who can reach this port can use the model", settings.host)
    loader = functools.partial(load, settings.bundle, variant=settings.variant, provider=settings.provider, threads=settings.threads)
    server = server_for(settings, loader, access_log=not quiet, log_level="warning" if quiet else "info", log_config=log_config(quiet))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the captured SIGINT once drained
        pass
    finally:
        flush_logs()  # the log's last lines before the error line below
    error = server.lifecycle.error
    if isinstance(error, LayerwiseError):
        raise error
    if error is not None:
        print(f"error: could not load the model: {error}", file=sys.stderr)
        return 1
    return 0
