"""Harness for tests of ``layerwise serve`` as the process users start (it holds no tests).

``serve_process(bundle, *flags)`` runs the installed ``layerwise serve`` console script in its
own process on a free loopback port, with the event loop production installs (uvloop, from
``uvicorn[standard]``), yields once /health answers 200, and stops it after with SIGTERM,
checking it exits as uvicorn does. ``rig={...}`` runs the same command line through
tests/rigged_serve.py instead, with a rigged model (a gate file, delays, NaN, bugs, patched
constants). Its stdout and stderr are kept for the test to read; in-process state is read as
a client would, from /metrics.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAYERWISE = Path(sys.executable).parent / "layerwise"  # the console script pip installed beside this Python
CHECK_TEXT = "a normal request after all that"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    logs: Path
    rig: dict[str, Any] = field(default_factory=dict)

    @property
    def stdout(self) -> str:
        return (self.logs / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.logs / "stderr").read_text(errors="replace")

    def alive(self) -> bool:
        """The process runs and answers /live."""
        if self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.url}/live", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict[str, float]:
        """Every series of /metrics, keyed by name and labels as written (``name{labels}``)."""
        values = {}
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value.replace("+Inf", "inf"))
        return values

    def metric(self, name: str) -> float:
        """One unlabelled value from /metrics."""
        return self.metrics()[name]

    def wait_for(self, metric: str, value: float, timeout: float = 30.0) -> None:
        """Block until the unlabelled ``metric`` reads ``value``."""
        deadline = time.monotonic() + timeout
        while (now := self.metric(metric)) != value:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{metric} stayed at {now}, expected {value}")
            time.sleep(0.01)

    def runs(self) -> list[list[str]]:
        """The texts of every run so far, in order (a rig with ``runs``)."""
        path = Path(self.rig["runs"])
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def open_gate(self) -> None:
        Path(self.rig["gate"]).touch()

    def close_gate(self) -> None:
        Path(self.rig["gate"]).unlink(missing_ok=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and give back the exit status."""
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def log_mark(self) -> int:
        """Where stderr ends now: ``assert_serves_correctly(since=...)`` reads only what comes after."""
        return (self.logs / "stderr").stat().st_size

    def assert_serves_correctly(self, bundle: Path | str, since: int = 0, gauges_settle_s: float = 10) -> None:
        """Alive, a normal request answered with the Python API's vector, no traceback in the log
        (from byte ``since`` on), and no request left counted as in flight or queued."""
        assert self.alive(), f"`layerwise serve` died (exit {self.process.poll()}):\n{self.stderr[-3000:]}"
        answer = httpx.post(f"{self.url}/embed", json={"inputs": [CHECK_TEXT]}, timeout=60)
        assert answer.status_code == 200, answer.text
        np.testing.assert_array_equal(np.array(answer.json(), dtype=np.float32), python_api_vector(bundle))
        deadline = time.monotonic() + gauges_settle_s
        while (gauges := self._gauges()) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gauges == (0, 0), f"in flight, queued: {gauges}"
        log = (self.logs / "stderr").read_bytes()[since:].decode(errors="replace")
        assert "Traceback" not in log, log[-5000:]

    def _gauges(self) -> tuple[float, float]:
        values = self.metrics()
        return values["layerwise_requests_in_flight"], values["layerwise_queue_depth"]


_VECTORS: dict[str, np.ndarray] = {}


def python_api_vector(bundle: Path | str) -> np.ndarray:
    """CHECK_TEXT as /embed answers it by default (last layer, pooled, normalised), from the Python API."""
    if str(bundle) not in _VECTORS:
        import layerwise

        with layerwise.load(bundle, provider="cpu", threads=1) as encoder:
            pool = encoder.info.default_pooling.get("pool", "mean")
            _VECTORS[str(bundle)] = encoder.embed([CHECK_TEXT], layers=-1, pool=pool, normalize=True)[:, 0]
    return _VECTORS[str(bundle)]


def serve_command(bundle: Path | str, port: int, flags: tuple[str, ...], rig: dict[str, Any] | None) -> list[str]:
    serve = ["serve", str(bundle), "--port", str(port), *flags]
    if rig is None:
        return [str(LAYERWISE), *serve]
    return [sys.executable, "-m", "tests.rigged_serve", json.dumps(rig), *serve]


@contextlib.contextmanager
def serve_process(
    bundle: Path | str,
    *flags: str,
    rig: dict[str, Any] | None = None,
    ready: bool = True,
    timeout: float = 90,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[ServerProcess]:
    """``layerwise serve BUNDLE --port P FLAGS...`` for the length of the ``with`` block.

    ``rig``: as tests/rigged_serve.py takes it; the paths ``gate`` (created open), ``load_gate``
    (created closed) and ``runs`` are filled in when given as ``True``. ``ready=False`` yields once
    /live answers. ``preexec_fn`` runs in the child before the command (e.g. to set a resource limit)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="layerwise-serve-") as tmp:
        logs = Path(tmp)
        rig = _rig_paths(rig, logs)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # `--ray` starts its own cluster
        with open(logs / "stdout", "wb") as stdout, open(logs / "stderr", "wb") as stderr:
            command = serve_command(bundle, port, flags, rig)
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT, env=env, preexec_fn=preexec_fn)
        running = ServerProcess(f"http://127.0.0.1:{port}", port, process, logs, rig or {})
        try:
            deadline = time.monotonic() + timeout
            while not _answers(running.url, "/health" if ready else "/live"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"`layerwise serve` did not become ready (exit {process.poll()}):\n{running.stderr[-3000:]}")
                time.sleep(0.05)
            yield running
        finally:
            if running.rig.get("gate"):
                running.open_gate()  # nothing left waiting
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def run_serve(bundle: Path | str, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``layerwise serve`` run to its end (for settings refused at start): exit status, stdout, stderr."""
    command = [str(LAYERWISE), "serve", str(bundle), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _rig_paths(rig: dict[str, Any] | None, folder: Path) -> dict[str, Any] | None:
    if rig is None:
        return None
    rig = dict(rig)
    for key, name in (("gate", "gate"), ("load_gate", "load-gate"), ("runs", "runs.jsonl")):
        if rig.get(key) is True:
            rig[key] = str(folder / name)
    if rig.get("gate"):
        Path(rig["gate"]).touch()
    return rig


def _answers(url: str, path: str) -> bool:
    try:
        return httpx.get(url + path, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
