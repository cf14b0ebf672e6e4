"""The model's life in the server: load and warm up in the background, serve, drain, stop.

Phases: "loading" -> "ready" -> "draining", or "loading" -> "failed". The port answers from
the start, so liveness (``/live``: the process serves HTTP) and readiness (``/health``: 200
only when "ready") differ. Requests admitted before draining still finish. Not handled
here: routes and uvicorn (see app.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..runtime import Encoder
from .batcher import Batcher, BatchLimits
from .errors import Unavailable
from .fields import Limits
from .metrics import Metrics
from .settings import Settings, check_budget

log = logging.getLogger("layerwise.server")
Loader = Callable[[], Encoder]
T = TypeVar("T")
NOT_READY = {
    "loading": "the model is still loading; retry when GET /health answers 200",
    "draining": "the server is shutting down and takes no new requests; retry on another instance",
    "failed": "the model failed to load; see the server log",
}


def in_daemon_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """``work()`` in a thread of its own that the interpreter does not wait for at exit: a load hung on a
    slow filesystem must not keep Ctrl-C from stopping the server (asyncio.to_thread's pool is joined at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(), None
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, e
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=run, name="layerwise-load", daemon=True).start()
    return future


def warm_up(encoder: Encoder) -> None:
    """One short and one (about) full-length input, so the first request pays no start-up cost."""
    texts = ["warm up", " ".join(["warm"] * (encoder.info.max_length - 2))]  # one token each, plus [CLS] and [SEP]
    encoder.embed(texts, layers=-1, pool=encoder.info.default_pooling.get("pool", "mean"))


class Lifecycle:
    """Holds the phase and, once ready, the Batcher; ``batcher()`` is the only way to it."""

    def __init__(self, settings: Settings, load: Loader, metrics: Metrics) -> None:
        self.phase = "loading"
        self.error: BaseException | None = None
        self.limits = Limits(settings.max_client_batch_size)  # the model's own once it is loaded
        self._settings = settings
        self._load = load
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerwise-run")
        self._batcher: Batcher | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin loading in the background; the server listens meanwhile."""
        self._task = asyncio.get_running_loop().create_task(self._start(), name="layerwise-load")

    async def _start(self) -> None:
        try:
            encoder = await in_daemon_thread(self._load)
            check_budget(self._settings, encoder.info.max_length)
            await asyncio.get_running_loop().run_in_executor(self._executor, warm_up, encoder)
        except Exception as e:  # noqa: BLE001 - reported by serve() and /live, and stops the server
            log.error("could not load the model: %s", e)
            self.error, self.phase = e, "failed"
            return
        s = self._settings
        limits = BatchLimits(s.max_batch_tokens, s.max_batch_requests, s.max_wait_ms / 1000, s.max_concurrent_requests)
        self._batcher = Batcher(encoder, limits, self._metrics, self._executor)
        self.limits = Limits.of(s.max_client_batch_size, encoder)
        if self.phase == "loading":
            self.phase = "ready"
            self._metrics.set("layerwise_ready", 1)
            info = encoder.info
            log.info(
                "ready: %s (%s, %d layers, hidden %d, max length %d) on %s with %d threads",
                s.model_id, info.variant, info.num_layers, info.hidden_size, info.max_length, info.provider, info.threads,
            )

    def batcher(self) -> Batcher:
        """The Batcher when ready; otherwise Unavailable (503) saying why."""
        if self.phase != "ready" or self._batcher is None:
            raise Unavailable(NOT_READY.get(self.phase, self.phase))
        return self._batcher

    def drain(self) -> None:
        """Refuse new requests from now on; those already admitted go on."""
        if self.phase in ("loading", "ready"):
            self.phase = "draining"
            self._metrics.set("layerwise_ready", 0)

    async def stop(self) -> None:
        self.drain()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._batcher is not None:
            await self._batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
