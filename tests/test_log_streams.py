"""Long-running commands outlive their log streams: ``layerwise serve`` keeps serving and
``layerwise extract`` finishes when stdout and stderr are closed (EPIPE) or on a full disk
(ENOSPC, /dev/full); a short command whose reader left ends quietly with status 141, as a
shell reports a pipe's writer ended by SIGPIPE.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pyarrow.dataset as ds
import pytest

from .server_process import LAYERWISE, ROOT, free_port


@contextmanager
def _serving(bundle: Path, stdout: Any, stderr: Any, close: bool = False) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``layerwise serve`` writing to ``stdout`` and ``stderr``; with ``close``, pipes whose reading ends close at once."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(LAYERWISE), "serve", str(bundle), "--port", str(port), "--threads", "1"]
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
    if close:
        process.stdout.close()
        process.stderr.close()
    try:
        deadline = time.monotonic() + 90
        while not _ready(url):
            assert process.poll() is None and time.monotonic() < deadline, f"`layerwise serve` exited with {process.poll()}"
            time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        assert process.wait(timeout=60) == -signal.SIGTERM


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _answers_everything(url: str) -> None:
    """Requests that log: answers (access log, stdout), a 404 and a 422 (stderr, where warnings go)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(5):
            assert client.post("/embed", json={"inputs": "nobody reads the log"}).status_code == 200
        assert client.get("/v2/nothing").status_code == 404
        assert client.post("/embed", content=b"{").status_code == 422


@pytest.mark.parametrize("streams", ["closed", "full"])
def test_serve_answers_when_its_log_streams_are_closed_or_full(tiny_bundle, streams):
    """The access log goes to stdout and the rest to stderr: with both readers gone from the start,
    or both on a full disk, every log write fails, and requests are still answered."""
    if streams == "closed":
        with _serving(tiny_bundle, subprocess.PIPE, subprocess.PIPE, close=True) as (url, process):
            _answers_everything(url)
            assert process.poll() is None
        return
    with open("/dev/full", "wb") as full, _serving(tiny_bundle, full, full) as (url, process):
        _answers_everything(url)
        assert process.poll() is None


def test_serve_answers_while_its_log_reader_stalls(tiny_bundle):
    padding = "x" * 4000  # an access-log line of 4 kB per request: the 64 kB pipe is full after 16
    with _serving(tiny_bundle, subprocess.PIPE, subprocess.DEVNULL) as (url, process):
        stalled: IO[bytes] = process.stdout  # never read
        try:
            with httpx.Client(base_url=url, timeout=5) as client:
                for _ in range(40):
                    assert client.get(f"/live?pad={padding}").status_code == 200
                assert client.post("/embed", json={"inputs": "still serving"}).status_code == 200
        finally:
            stalled.close()  # the blocked write fails (EPIPE) and the server can act on SIGTERM again


def _extract(bundle: Path, tmp_path: Path, stdout: Any, stderr: Any, close: bool) -> tuple[int, Path]:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"text number {i}\n" for i in range(50)))
    out = tmp_path / "out"
    command = [str(LAYERWISE), "extract", str(bundle), "--input", str(texts), "--output", str(out), "--threads", "1"]
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT)
    if close:
        process.stdout.close()
        process.stderr.close()
    return process.wait(timeout=300), out


@pytest.mark.parametrize("streams", ["closed", "full"])
def test_extract_finishes_when_its_log_streams_are_closed_or_full(tiny_bundle, tmp_path, streams):
    if streams == "closed":
        status, out = _extract(tiny_bundle, tmp_path, subprocess.PIPE, subprocess.PIPE, close=True)
    else:
        with open("/dev/full", "wb") as full:
            status, out = _extract(tiny_bundle, tmp_path, full, full, close=False)
    assert status == 0
    assert ds.dataset(out, format="parquet").count_rows() == 50


def test_a_short_command_whose_reader_left_ends_quietly_with_141(tiny_bundle):
    """`layerwise inspect B | head`: the reader has what it wanted; no traceback, the status a shell shows."""
    process = subprocess.Popen([str(LAYERWISE), "inspect", str(tiny_bundle)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    process.stdout.close()
    assert (process.wait(timeout=60), process.stderr.read()) == (141, b"")
