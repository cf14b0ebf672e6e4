"""Harness for tests of ``layerwise serve`` as the process users start (it holds no tests).

``serve_process(bundle, *flags)`` runs the installed ``layerwise serve`` console script in its
own process on a free loopback port, with the event loop production installs (uvloop, from
``uvicorn[standard]``), yields once /health answers 200, and stops it after with SIGTERM,
checking it exits as uvicorn does. Its stdout and stderr are kept for the test to read.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LAYERWISE = Path(sys.executable).parent / "layerwise"  # the console script pip installed beside this Python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        """The process runs and answers /live."""
        if self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.url}/live", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str) -> float:
        """One unlabelled value from /metrics."""
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


@contextlib.contextmanager
def serve_process(bundle: Path | str, *flags: str, ready: bool = True, timeout: float = 90) -> Iterator[ServerProcess]:
    """``layerwise serve BUNDLE --port P FLAGS...`` for the length of the ``with`` block."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="layerwise-serve-") as logs:
        out, err = Path(logs) / "stdout", Path(logs) / "stderr"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                [str(LAYERWISE), "serve", str(bundle), "--port", str(port), *flags], stdout=stdout, stderr=stderr, cwd=ROOT
            )
        running = ServerProcess(f"http://127.0.0.1:{port}", port, process, out, err)
        try:
            deadline = time.monotonic() + timeout
            while not _answers(running.url, "/health" if ready else "/live"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"`layerwise serve` did not become ready (exit {process.poll()}):\n{running.stderr[-3000:]}")
                time.sleep(0.05)
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _answers(url: str, path: str) -> bool:
    try:
        return httpx.get(url + path, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
