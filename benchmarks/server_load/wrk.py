"""wrk, the C load generator, driven from Python: the requests file, the command, the figures.

Loopback only: ``run`` refuses any URL whose host is not 127.0.0.1, localhost or [::1]. wrk reads
its requests from a file that ``write_requests`` writes (one ``PATH BODY`` line per request;
rotate.lua sends them in turn and prints ``WRK_JSON {...}`` from its ``done`` hook); ``parse``
turns that line into requests, errors and latency percentiles in milliseconds. Not here: which
bodies to send (the harnesses choose) and any check of the answers (wrk reads only the status).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA = Path(__file__).with_name("rotate.lua")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MARK = "WRK_JSON "


def wrk_binary() -> str:
    """The wrk on PATH, or a SystemExit that says how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (Debian's package; `make bench-server` installs it)")
    return found


def openai_requests(texts: Sequence[str], per_request: int, model: str, count: int, stride: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """``count`` /v1/embeddings requests of ``per_request`` texts each, request i starting at text
    i * stride (wrapping around): ``{"input": "text"}`` for one text, a list for several.

    >>> openai_requests(["a", "b", "c"], 2, "m", 2)
    [('/v1/embeddings', {'input': ['a', 'b'], 'model': 'm'}), ('/v1/embeddings', {'input': ['b', 'c'], 'model': 'm'})]
    """
    out = []
    for i in range(count):
        chosen = [texts[(i * stride + j) % len(texts)] for j in range(per_request)]
        out.append(("/v1/embeddings", {"input": chosen[0] if per_request == 1 else chosen, "model": model}))
    return out


def request_texts(body: dict[str, Any]) -> list[str]:
    """The texts of an /embed (``inputs``) or /v1/embeddings (``input``) body, as a list."""
    texts = body["input"] if "input" in body else body["inputs"]
    return [texts] if isinstance(texts, str) else list(texts)


def write_requests(path: Path, requests: Iterable[tuple[str, dict[str, Any]]]) -> Path:
    """One ``PATH BODY`` line per request (compact JSON: no newline inside a body)."""
    lines = []
    for route, body in requests:
        if not route.startswith("/") or " " in route:
            raise ValueError(f"a route starts with / and holds no space, got {route!r}")
        lines.append(f"{route} {json.dumps(body, separators=(',', ':'), ensure_ascii=False)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def command(url: str, requests_file: Path, concurrency: int, seconds: int, threads: int = 1, timeout_s: int = 60) -> list[str]:
    """The wrk command line: ``threads`` threads (at most ``concurrency``), ``concurrency`` connections."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"load is generated on loopback only ({', '.join(LOOPBACK)}), got {url}")
    if concurrency < 1 or seconds < 1:
        raise ValueError(f"wrk needs at least 1 connection and 1 second, got {concurrency} and {seconds}")
    threads = max(1, min(threads, concurrency))
    return [
        *(wrk_binary(), f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={timeout_s}s"),
        *("-s", str(LUA), url, "--", str(requests_file)),
    ]


def parse(output: str) -> dict[str, Any]:
    """rotate.lua's ``WRK_JSON`` line as figures: answered and failed requests, requests/s, p50/p90/p99 ms.

    ``errors`` counts non-2xx/3xx answers (wrk's status errors) plus connect, read, write and
    timeout errors; ``ok`` is the answered requests less the status errors.
    """
    lines = [line for line in output.splitlines() if line.startswith(MARK)]
    if not lines:
        raise ValueError(f"no {MARK.strip()} line in wrk's output (did rotate.lua run?):\n{output[-2000:]}")
    raw = json.loads(lines[-1][len(MARK) :])
    errors, latency = raw["errors"], raw["latency_us"]
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - errors["status"]
    answered = raw["requests"] > 0
    return {
        "requests": ok,
        "errors": sum(errors.values()),
        "error_kinds": {k: v for k, v in errors.items() if v},
        "seconds": round(seconds, 3),
        "requests_per_s": round(ok / seconds, 2) if seconds > 0 else 0.0,
        "p50_ms": round(latency["p50"] / 1000, 2) if answered else None,
        "p90_ms": round(latency["p90"] / 1000, 2) if answered else None,
        "p99_ms": round(latency["p99"] / 1000, 2) if answered else None,
        "max_ms": round(latency["max"] / 1000, 2) if answered else None,
    }


def run(url: str, requests_file: Path, concurrency: int, seconds: int, threads: int = 1, timeout_s: int = 60) -> dict[str, Any]:
    """One wrk run; its parsed figures (``parse``). wrk's own failures (bad script, refused URL) raise."""
    argv = command(url, requests_file, concurrency, seconds, threads, timeout_s)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {' '.join(argv)}\n{done.stderr[-2000:]}{done.stdout[-2000:]}")
    return parse(done.stdout)
