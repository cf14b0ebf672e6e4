"""Dynamic batching: concurrent requests with equal options share one ``Encoder`` run.

Bounded by construction: ``admit`` refuses past ``max_concurrent_requests`` (429, at once),
so the queue never holds more jobs than that. A run takes the oldest job and, in arrival
order, every queued job with the same options while their tokens fit ``max_batch_tokens``
and their count ``max_batch_requests`` (a job is never split, so a run holds at least one).
It starts when full, when the oldest job has waited ``max_wait``, or at once when no
admitted request is still on its way to the queue: a lone client never waits. One run at a
time, in a worker thread, off the event loop, SLICE_TOKENS at a time. A job whose request was
cancelled (its client left) is dropped before it runs, and a run whose clients all left stops
after its current slice. Tokenizing is offloaded by size (``offload``): short
requests on the event loop, long ones in the default thread pool, very long ones
(> LARGE_CHARS) one at a time in their own thread, so a flood of huge texts cannot hold up
the others. Not handled here: HTTP, parsing, limits on texts (callers check lengths and
pass tokenized texts in).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from ..runtime import Encoder, Tokenized
from ..runtime.options import EmbedOptions
from ..runtime.windows import Windows, split
from .errors import Overloaded, Unavailable
from .metrics import Metrics

log = logging.getLogger("layerwise.server")
INLINE_CHARS = 4096  # requests this short are tokenized on the event loop: ~20 us, less than a thread hop
LARGE_CHARS = 1 << 17  # requests this long (~4x 32 full 512-token inputs) queue for their own thread
SLICE_TOKENS = 2048  # a run goes to ONNX Runtime this many tokens at a time (texts whole), so it can stop between slices
T = TypeVar("T")


@dataclass(frozen=True)
class BatchLimits:
    max_batch_tokens: int
    max_batch_requests: int
    max_wait_s: float
    max_concurrent_requests: int


@dataclass(frozen=True)
class RunResult:
    """One request's share of a run, with the figures of that run."""

    output: list[np.ndarray]  # one array per input: pooled [layers, hidden] (or combined), or per token
    queue_s: float
    inference_s: float
    batch_requests: int


@dataclass(frozen=True)
class Run:
    """What a run computes, the key jobs share a run by: the request's options without the ones that
    apply when tokenizing (``EmbedOptions.for_tokenized``), and whether its inputs are windows."""

    options: EmbedOptions
    windows: bool

    @staticmethod
    def of(inputs: Tokenized | Windows, options: EmbedOptions) -> Run:
        return Run(_for_tokenized(options), isinstance(inputs, Windows))


@functools.lru_cache(maxsize=256)  # a few option sets recur: each made once
def _for_tokenized(options: EmbedOptions) -> EmbedOptions:
    return options.for_tokenized()


@dataclass
class _Job:
    inputs: Tokenized | Windows
    run: Run
    tokens: int  # after truncation: what the run pays for
    future: asyncio.Future[RunResult]
    arrived: float = field(default_factory=time.monotonic)


class Admission:
    """An admitted request: it counts as on its way to the queue until ``embed`` (or ``alone``) is called."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher
        self.submitted = False

    async def embed(self, inputs: Tokenized | Windows, options: EmbedOptions) -> RunResult:
        """Queue the tokenized texts (or their windows) and wait for their share of a run with ``options``."""
        self.submitted = True
        return await self._batcher._submit(inputs, options)

    async def alone(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a score: it embeds by itself) on the worker the runs use, between them, never beside one."""
        self.submitted = True
        return await self._batcher._alone(work)


class Batcher:
    """Merges admitted requests into runs of one shared Encoder."""

    def __init__(self, encoder: Encoder, limits: BatchLimits, metrics: Metrics, executor: ThreadPoolExecutor) -> None:
        self.encoder = encoder
        self._limits = limits
        self._metrics = metrics
        self._executor = executor
        self._large = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerwise-large")
        self._queue: list[_Job] = []
        self._running: list[_Job] = []
        self._in_flight = 0
        self._arriving = 0
        self._wake = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="layerwise-batcher")

    @contextlib.contextmanager
    def admit(self) -> Iterator[Admission]:
        """Admit one request for its whole life (body, parsing, run, response), or raise Overloaded."""
        cap = self._limits.max_concurrent_requests
        if self._in_flight >= cap:
            raise Overloaded(f"the server is at its limit of {cap} concurrent requests (--max-concurrent-requests); retry shortly")
        self._in_flight += 1
        self._arriving += 1
        self._metrics.set("layerwise_requests_in_flight", self._in_flight)
        admission = Admission(self)
        try:
            yield admission
        finally:
            self._in_flight -= 1
            self._metrics.set("layerwise_requests_in_flight", self._in_flight)
            if not admission.submitted:
                self._arriving -= 1
                self._wake.set()  # one fewer request to wait for

    async def _submit(self, inputs: Tokenized | Windows, options: EmbedOptions) -> RunResult:
        tokenized = inputs.tokenized if isinstance(inputs, Windows) else inputs
        job = _Job(inputs, Run.of(inputs, options), int(tokenized.lengths.sum()), asyncio.get_running_loop().create_future())
        self._arriving -= 1
        self._queue.append(job)
        self._metrics.set("layerwise_queue_depth", len(self._queue))
        self._wake.set()
        return await job.future

    async def _alone(self, work: Callable[[], T]) -> T:
        self._arriving -= 1
        self._wake.set()  # one fewer request on its way to the queue
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def offload(self, work: Callable[[], T], chars: int) -> T:
        """``work()`` (tokenizing ``chars`` characters) where its size belongs: see the module docstring."""
        if chars <= INLINE_CHARS:
            return work()
        if chars <= LARGE_CHARS:
            return await asyncio.to_thread(work)
        return await asyncio.get_running_loop().run_in_executor(self._large, work)

    async def tokenize(self, texts: list[str]) -> Tokenized:
        """Tokenize once, cut to the model maximum without a warning (callers check ``full_lengths``
        against the request's truncate)."""
        cut = functools.partial(self.encoder.tokenizer.encode, texts, None, True)  # the model maximum, no warning
        return await self.offload(cut, sum(map(len, texts)))

    async def split(self, texts: list[str], stride: int | None) -> Windows:
        """Every text as windows of the model maximum sharing ``stride`` tokens."""
        return await self.offload(functools.partial(split, self.encoder.tokenizer, texts, None, stride), sum(map(len, texts)))

    # -- the worker ---------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            jobs = self._take()
            if jobs:
                self._running = jobs
                try:
                    await self._run(jobs)
                except Exception as e:  # noqa: BLE001 - a bug here must fail these requests, not stop the worker
                    log.exception("batch run failed")
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(e)
                self._running = []
                continue
            self._wake.clear()
            wait = self._limits.max_wait_s - (time.monotonic() - self._queue[0].arrived) if self._queue else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), None if wait is None else max(wait, 0.0))

    def _take(self) -> list[_Job]:
        """The next run's jobs, removed from the queue; [] to wait for more."""
        self._queue = [job for job in self._queue if not job.future.done()]  # drop abandoned requests
        if not self._queue:
            return []
        head, limits = self._queue[0], self._limits
        jobs: list[_Job] = []
        tokens, full = 0, False
        for job in self._queue:
            if job.run != head.run:
                continue
            if jobs and (tokens + job.tokens > limits.max_batch_tokens or len(jobs) >= limits.max_batch_requests):
                full = True
                break
            jobs.append(job)
            tokens += job.tokens
        full = full or len(jobs) >= limits.max_batch_requests
        waited = time.monotonic() - head.arrived
        if not full and self._arriving > 0 and waited < limits.max_wait_s:
            return []
        taken = {id(job) for job in jobs}
        self._queue = [job for job in self._queue if id(job) not in taken]
        self._metrics.set("layerwise_queue_depth", len(self._queue))
        return jobs

    async def _run(self, jobs: list[_Job]) -> None:
        """Run the jobs' texts in one embed call; on failure, run each job alone so only the culprit fails."""
        started = time.monotonic()
        parts = [job.inputs for job in jobs]  # one Run: all Windows or all Tokenized
        inputs = Windows.concat(parts) if jobs[0].run.windows else Tokenized.concat(parts)  # type: ignore[arg-type]
        try:
            output = await self._slices(jobs, inputs)
        except Exception as e:  # noqa: BLE001 - handed to the request, which maps it to a status
            if len(jobs) > 1:
                for job in jobs:
                    await self._run([job])
                return
            if not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return
        if output is None:
            return  # every client left
        inference = time.monotonic() - started
        self._record(jobs, len(inputs.texts), started, inference)
        offset = 0
        for job in jobs:
            share = output[offset : offset + len(job.inputs.texts)]
            offset += len(job.inputs.texts)
            if not job.future.done():
                job.future.set_result(RunResult(share, started - job.arrived, inference, len(jobs)))

    async def _slices(self, jobs: list[_Job], inputs: Tokenized | Windows) -> list[np.ndarray] | None:
        """The run's output, computed SLICE_TOKENS at a time (texts whole, windows of chunked texts in
        one piece), so a run whose clients all left stops after the current slice; None then."""
        loop = asyncio.get_running_loop()

        def run(part: Tokenized | Windows, options: EmbedOptions) -> asyncio.Future[list[np.ndarray]]:
            return loop.run_in_executor(self._executor, self._embed, part, options)

        options = jobs[0].run.options
        if isinstance(inputs, Windows) or int(inputs.lengths.sum()) <= SLICE_TOKENS:
            return await run(inputs, options)
        output: list[np.ndarray] = []
        for rows in _slice_rows(inputs.lengths.tolist(), SLICE_TOKENS):
            if all(job.future.done() for job in jobs):
                return None
            output += await run(inputs.rows(slice(rows.start, rows.stop)), options)
        return output

    def _embed(self, inputs: Tokenized | Windows, options: EmbedOptions) -> list[np.ndarray]:
        """One array per text: pooled through ``embed``, or per token through ``embed_tokens`` (windows merged per text)."""
        if options.pool == "none":
            return self.encoder.embed_tokens(inputs, options=options)
        return list(self.encoder.embed(inputs, options=options))

    def _record(self, jobs: list[_Job], texts: int, started: float, inference: float) -> None:
        tokens = sum(job.tokens for job in jobs)
        for job in jobs:
            self._metrics.observe("layerwise_queue_duration_seconds", started - job.arrived)
        self._metrics.observe("layerwise_inference_duration_seconds", inference)
        self._metrics.observe("layerwise_batch_requests", len(jobs))
        self._metrics.observe("layerwise_batch_texts", texts)
        self._metrics.observe("layerwise_batch_tokens", tokens)
        self._metrics.inc("layerwise_tokens_total", tokens)

    async def close(self) -> None:
        """Stop the worker; requests still queued or running get a 503."""
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        for job in self._queue + self._running:
            if not job.future.done():
                job.future.set_exception(Unavailable("the server shut down before this request ran; retry on another instance"))
        self._queue = []
        self._large.shutdown(wait=False, cancel_futures=True)


def _slice_rows(lengths: list[int], budget: int) -> Iterator[range]:
    """Consecutive rows holding at most ``budget`` tokens each (one row at least). Example: [3, 4, 2, 5], 7 -> 0..1, 2..3."""
    start, tokens = 0, 0
    for row, length in enumerate(lengths):
        if row > start and tokens + length > budget:
            yield range(start, row)
            start, tokens = row, 0
        tokens += length
    yield range(start, len(lengths))

