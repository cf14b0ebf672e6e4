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
import pytest
from tokenizers import Tokenizer

import layerwise
from layerwise.server.app import Server, server_for
from layerwise.server.settings import Settings

from .rigged_serve import BUG_TEXT, FAIL_TEXT, GATE_WAIT_S, NAN_TEXT, Rig

__all__ = [
    "BUG_TEXT", "FAIL_TEXT", "NAN_TEXT", "Rigged", "Running", "cpu_loader", "encoder", "running", "serving", "untruncated_tokens", "url",
]


class Rigged(Rig):
    """rigged_serve's Rig in this process: runs are kept in ``runs`` and wait while ``gate`` is clear."""

    def __init__(self, encoder: Any, delay: float = 0.0) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.runs: list[list[str]] = []
        super().__init__(encoder, delay, wait=self._wait, record=self.runs.append)

    def _wait(self) -> None:
        if not self.gate.wait(timeout=GATE_WAIT_S):
            raise TimeoutError("the test never opened the gate")


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


@pytest.fixture(scope="module")
def encoder(tiny_bundle: Path) -> Any:
    """The tiny bundle's Encoder, the tests' reference (a test module imports the fixture to use it)."""
    return layerwise.load(tiny_bundle, provider="cpu", threads=1)


@pytest.fixture(scope="module")
def running(tiny_bundle: Path) -> Iterator[Running]:
    """A server for the tiny bundle with the default settings, one per test module that imports the fixture."""
    with serving(tiny_bundle, threads=1) as server:
        yield server


@pytest.fixture(scope="module")
def url(running: Running) -> str:
    return running.url


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
