"""The servers under load, started as their users start them, on loopback; and facts read from /proc.

``layerwise_serve``: the console script beside this Python (``layerwise serve BUNDLE --port P``,
default settings). ``infinity_serve``: ``infinity_emb v2`` from benchmarks/.venv-infinity (made by
benchmarks/infinity_setup.sh), started in the model folder with ``--model-id .``, engine optimum,
CPU, mean pooling, ``--url-prefix /v1`` (so its embedding route is the OpenAI client's, POST
/v1/embeddings, as layerwise's is; its /health stays unprefixed), hub offline and telemetry off.
Each yields a ``Running`` once the server answers and stops it with SIGTERM after (SIGKILL if it
has not exited 30 s later). Their logs go to files, kept for the report. ``rss_mb``, ``open_fds`` and ``loop_and_parser`` read /proc/<pid>.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
INFINITY_VENV = ROOT / "benchmarks" / ".venv-infinity"
INFINITY_MODEL = ROOT / "benchmarks" / ".cache" / "infinity" / "all-MiniLM-L6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"  # the "model" of every OpenAI body; layerwise ignores it, Infinity serves under it


@dataclass
class Running:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    health: str  # the route that answers 200 once the model is ready

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def answers(self) -> bool:
        """The process runs and its health route answers 200."""
        if self.process.poll() is not None:
            return False
        try:
            return httpx.get(self.url + self.health, timeout=10).status_code == 200
        except httpx.HTTPError:
            return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def started(name: str, argv: list[str], url: str, ready_path: str, log: Path, timeout_s: float, **popen: object) -> Iterator[Running]:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **popen)  # type: ignore[call-overload]
    running = Running(name, url, process, log, ready_path)
    try:
        deadline = time.monotonic() + timeout_s
        while not running.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not answer {ready_path} within {timeout_s:.0f} s (exit {process.poll()}):\n{running.log_tail()}"
                )
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def layerwise_serve(bundle: str | Path, logs: Path, *flags: str, timeout_s: float = 180) -> contextlib.AbstractContextManager[Running]:
    """``layerwise serve BUNDLE --port P [FLAGS]``: the console script users run, default settings."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "layerwise"), "serve", str(bundle), "--port", str(port), *flags]
    return started("layerwise serve", argv, f"http://127.0.0.1:{port}", "/health", logs / "layerwise-serve.log", timeout_s, cwd=ROOT)


def infinity_command(venv: Path, port: int) -> list[str]:
    return [
        *(str(venv / "bin" / "infinity_emb"), "v2", "--model-id", ".", "--served-model-name", MODEL_NAME, "--url-prefix", "/v1"),
        *("--engine", "optimum", "--device", "cpu", "--pooling-method", "mean", "--host", "127.0.0.1", "--port", str(port)),
    ]


def infinity_serve(
    logs: Path, venv: Path = INFINITY_VENV, model: Path = INFINITY_MODEL, timeout_s: float = 300
) -> contextlib.AbstractContextManager[Running]:
    """Infinity as a Python user runs it on the optimum-made int8 model (benchmarks/infinity_setup.sh)."""
    if not (venv / "bin" / "infinity_emb").exists() or not (model / "model_quantized.onnx").exists():
        raise SystemExit(f"Infinity is not set up ({venv}, {model}): run `bash benchmarks/infinity_setup.sh`")
    port = free_port()
    env = {
        **os.environ,
        "HF_HOME": str(model.parent / "hf-home"),  # Infinity caches its optimized graph here, not in ~/.cache
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    }
    return started(
        "Infinity",
        infinity_command(venv, port),
        f"http://127.0.0.1:{port}",
        "/health",
        logs / "infinity.log",
        timeout_s,
        cwd=model,
        env=env,
    )


def infinity_notes(running: Running, venv: Path = INFINITY_VENV, model: Path = INFINITY_MODEL) -> str:
    """What the results say about Infinity: versions, the quantization config, and from its log the
    ONNX file it serves and whether its start-up graph optimization ran."""
    facts_file = model / "infinity-model.json"
    facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    pins = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout or "[]")}
    names = ("infinity-emb", "optimum", "optimum-onnx", "onnxruntime", "torch", "transformers", "numpy")
    log = " ".join(running.log_tail(10**7).split())  # its rich log wraps lines
    served = re.search(r"(\S+\.onnx) as the model", log)
    optimized = (
        "start-up graph optimization failed, unoptimized graph served"
        if "Optimization failed" in log
        else "start-up graph optimization ran"
    )
    loop = loop_and_parser(running.pid)
    return (
        f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(infinity_command(venv, 0)[:-2]))}` in the model folder "
        f"({', '.join(f'{n} {pins[n]}' for n in names if n in pins)}); {served.group(1) if served else 'ONNX file unknown'} made by "
        f"optimum's ORTQuantizer, {facts.get('quantization', 'config unknown')}; {optimized}; other settings default; "
        f"event loop {loop['event_loop']}, HTTP parser {loop['http_parser']}"
    )


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS), MB."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) / 1024 if match else float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, timeout_s: float = 60.0, quiet_s: float = 0.3) -> float:
    """Block until ``pid`` uses under 5% of a core for ``quiet_s`` (a server still working through
    requests whose clients left would otherwise slow the next contender down); the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout_s:
        time.sleep(quiet_s)
        now = cpu_seconds(pid)
        if now - before < 0.05 * quiet_s:
            break
        before = now
    return round(time.monotonic() - started, 2)


def loop_and_parser(pid: int) -> dict[str, str]:
    """The event loop and HTTP parser a uvicorn server process runs, from the extension modules mapped
    into it: uvicorn's ``auto`` settings use uvloop and httptools when they import, asyncio and h11 else."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {
        "event_loop": "uvloop" if re.search(r"/uvloop/loop\.", maps) else "asyncio",
        "http_parser": "httptools" if re.search(r"/httptools/parser/parser\.", maps) else "h11",
    }
