"""Harness for the server tests (it holds no tests): a real server on 127.0.0.1, and a rigged Encoder.

``serving(bundle, **settings)`` runs the app under uvicorn in a background thread on a
free port, yields once /health answers 200 (or once it listens, with ``ready=False``)
and stops it after. ``Rigged`` wraps an Encoder so a test can hold runs at a gate, slow
them down, or make one text come out as NaN, fail as the runtime does, or hit a bug.
Tests of the process users start (signals, logging, exit codes, the event loop) use
tests/server_process.py instead, rigged through tests/rigged_serve.py.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tokenizers import Tokenizer

import layerwise
from layerwise.runtime import Tokenized
from layerwise.runtime.errors import NonFiniteOutputError
from layerwise.server.app import Server, server_for
from layerwise.server.settings import Settings

from .rigged_serve import BUG_TEXT, FAIL_TEXT, NAN_TEXT

__all__ = ["BUG_TEXT", "FAIL_TEXT", "NAN_TEXT", "Rigged", "Running", "cpu_loader", "serving", "untruncated_tokens"]


class Rigged:
    """An Encoder stand-in: runs wait for ``gate``, sleep ``delay`` s, and rig NAN_TEXT, FAIL_TEXT and BUG_TEXT."""

    def __init__(self, encoder: Any, delay: float = 0.0) -> None:
        self._encoder = encoder
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.runs: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def embed(self, inputs: Any, **options: Any) -> Any:
        return self._rigged(self._encoder.embed, inputs, options)

    def embed_tokens(self, inputs: Any, **options: Any) -> Any:
        return self._rigged(self._encoder.embed_tokens, inputs, options)

    def _rigged(self, embed: Any, inputs: Any, options: dict[str, Any]) -> Any:
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        time.sleep(self.delay)
        texts = inputs.texts if isinstance(inputs, Tokenized) else list(inputs)
        self.runs.append(texts)
        if FAIL_TEXT in texts:
            raise NonFiniteOutputError(f"variant 'fp32' produced NaN or Inf at layer 1 for text {texts.index(FAIL_TEXT)}")
        if BUG_TEXT in texts:
            raise RuntimeError("internal detail that must stay in the log")
        output = embed(inputs, **options)
        for row, text in enumerate(texts):
            if text == NAN_TEXT:
                output[row][...] = np.nan
        return output


@dataclass
class Running:
    url: str
    server: Server

    @property
    def metrics(self) -> Any:
        return self.server.config.app.state.metrics

    def wait_for(self, metric: str, value: float, timeout: float = 10.0) -> None:
        """Block until the gauge ``metric`` reaches ``value``."""
        deadline = time.monotonic() + timeout
        while self.metrics.value(metric) != value:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{metric} stayed at {self.metrics.value(metric)}, expected {value}")
            time.sleep(0.005)


def untruncated_tokens(bundle: Any, texts: list[str]) -> list[int]:
    """Token counts from the bundle's tokenizer.json by tokenizers itself: the reference for limits and usage."""
    tokenizer = Tokenizer.from_file(str(Path(bundle) / "tokenizer.json"))
    return [len(e.ids) for e in tokenizer.encode_batch(texts)]


def cpu_loader(bundle: Any) -> Any:
    return functools.partial(layerwise.load, bundle, provider="cpu", threads=1)


@contextlib.contextmanager
def serving(bundle: Any, loader: Any = None, ready: bool = True, **settings: Any) -> Iterator[Running]:
    """A server for ``bundle`` on a free loopback port, for the length of the ``with`` block."""
    server = server_for(Settings(bundle=str(bundle), port=0, **settings), loader or cpu_loader(bundle), log_config=None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started or (ready and httpx.get(f"{url}/health").status_code != 200):
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"the test server did not become {'ready' if ready else 'live'}")
            time.sleep(0.02)
        yield Running(url, server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
