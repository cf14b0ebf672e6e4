"""Server load test, loopback only: ``layerwise serve`` against Infinity and in-process ``Encoder.embed``.

Usage: python -m benchmarks.server_load.load_test BUNDLE [--seconds 5] [--repeats 2] [--concurrency 1,2,4,8,16,32,64]
       [--contenders layerwise,infinity,inprocess] [--texts 1,32] [--results-dir DIR] [--format markdown|json]
Writes benchmarks/results/<date>-<host>-<cpu family>-server.{json,md} and prints the table (or the JSON).

Contenders, all in one run: (a) ``layerwise serve BUNDLE --port P``, the console script with default
settings (int8 on the CPU); (b) Infinity (infinity-emb 0.0.78, engine optimum, CPU, ``--pooling-method
mean``) on all-MiniLM-L6-v2 made int8 by optimum's ORTQuantizer, from benchmarks/.venv-infinity
(``bash benchmarks/infinity_setup.sh``); (c) ``Encoder.embed`` in this process (the same bundle and
variant), one thread per concurrent client. The servers get POST /v1/embeddings with OpenAI bodies
from wrk (benchmarks/server_load/wrk.py), closed loop, one connection per concurrent client; requests
hold 1 or 32 held-out real sentences (benchmarks/common.py ``real_sentences``), rotated per request.
Each cell (texts per request, concurrency) warms every contender for ``--warmup`` s, then times each
``--repeats`` times for ``--seconds`` s (once per 512 texts in flight: ``cell_seconds``),
alternating (the order rotates per repeat); after a server's run the next waits until that server is
idle (requests wrk abandoned may still run there); the table holds the medians. Before the load, each
contender's pooled vectors for 256 held-out sentences are scored against a PyTorch float32 reference
(benchmarks/server_load/accuracy.py). The default run is about 13 minutes (2 request sizes x 7
concurrencies x 3 contenders x (2 x 5 s + 1 s), concurrency 32 and 64 of 32 texts 2 and 4 times
as long, plus start-up and the servers' idle waits). wrk runs on the same machine: on few cores its
CPU competes with the server (one wrk thread by default).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import layerwise

from ..common import machine, minilm_dir, real_sentences
from . import accuracy, servers, wrk
from .report import CONTENDERS, markdown, median_figures, targets, write_results

REQUEST_POOL = 512  # held-out sentences the requests rotate through; the first ACCURACY_TEXTS are scored
ACCURACY_TEXTS = 256
TEXTS_PER_PERIOD = 512  # a cell runs --seconds per this many texts in flight (cell_seconds)
Cell = Callable[[int, int, int], dict[str, Any]]  # (texts per request, concurrency, seconds) -> figures


def request_bodies(sentences: Sequence[str], per_request: int) -> list[tuple[str, dict[str, Any]]]:
    """The rotation for one request size: every sentence once for single texts; for larger requests,
    windows of ``per_request`` consecutive sentences starting every ``per_request // 4`` sentences."""
    stride = max(1, per_request // 4)
    count = len(sentences) if per_request == 1 else len(sentences) // stride
    return wrk.openai_requests(sentences, per_request, servers.MODEL_NAME, count, stride)


def cpuinfo_flags(text: str) -> list[str]:
    """The int8-relevant flags of /proc/cpuinfo, as ``grep -o 'amx_int8\\|avx512_vnni\\|avx2' | sort -u``.

    >>> cpuinfo_flags("flags : fpu avx2 avx512_vnni\\nflags : fpu avx2 avx512_vnni")
    ['avx2', 'avx512_vnni']
    """
    return sorted(set(re.findall(r"amx_int8|avx512_vnni|avx2", text)))


def inprocess_cell(embed: Callable[[list[str]], Any], calls: Sequence[list[str]], concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` threads calling ``embed`` in a closed loop for ``seconds``, the calls rotating;
    the same figures as ``wrk.parse``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    issued = iter(range(1 << 62))
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        mine = []
        while time.perf_counter() < deadline:
            with lock:
                i = next(issued)
            started = time.perf_counter()
            try:
                embed(calls[i % len(calls)])
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            if (finished := time.perf_counter()) <= deadline:  # as wrk: calls still running at the deadline are not counted
                mine.append(finished - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = seconds
    ms = np.array(latencies) * 1000
    answered = len(latencies) > 0
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "error_kinds": {"exception": errors[0]} if errors[0] else {},
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2) if answered else None for q in (50, 90, 99)},
        "max_ms": round(float(ms.max()), 2) if answered else None,
    }


def cell_seconds(seconds: int, texts_per_request: int, concurrency: int) -> int:
    """A run's length: ``seconds`` per 512 texts in flight. With thousands in flight a request waits
    seconds in the queue, and a short run would see the queue filling up rather than its steady state.

    >>> cell_seconds(6, 1, 64), cell_seconds(6, 32, 16), cell_seconds(6, 32, 32), cell_seconds(6, 32, 64)
    (6, 6, 12, 24)
    """
    return seconds * max(1, texts_per_request * concurrency // TEXTS_PER_PERIOD)


def measure(
    contenders: dict[str, Cell], sizes: Sequence[int], concurrencies: Sequence[int], seconds: int, repeats: int, warmup: int
) -> list[dict]:
    """Every cell, contenders alternating within it (order rotated per repeat); medians over repeats."""
    cells = []
    names = list(contenders)
    for size in sizes:
        for concurrency in concurrencies:
            duration = cell_seconds(seconds, size, concurrency)
            if warmup:
                for name in names:
                    contenders[name](size, concurrency, warmup)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for repeat in range(repeats):
                for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                    runs[name].append(contenders[name](size, concurrency, duration))
            for name in names:
                cell = {"texts_per_request": size, "concurrency": concurrency, "contender": name, "seconds_per_run": duration}
                cells.append({**cell, **median_figures(runs[name], size)})
            print(
                f"  {size:>2} texts/request, concurrency {concurrency:>2}: "
                + ", ".join(f"{n} {cells[-len(names) + i]['requests_per_s']} req/s" for i, n in enumerate(names)),
                flush=True,
            )
    return cells


def server_cell(server: servers.Running, files: dict[int, Path], threads: int) -> Cell:
    """One wrk run against ``server``, then a wait until the server is idle (requests wrk abandoned at
    the end of its run may still be running there); the wait is kept as ``settle_s``."""

    def cell(size: int, concurrency: int, seconds: int) -> dict[str, Any]:
        figures = wrk.run(server.url, files[size], concurrency, seconds, threads)
        return {**figures, "settle_s": servers.wait_idle(server.pid)}

    return cell


def log_problems(text: str) -> str:
    counts = {word: len(re.findall(word, text)) for word in ("Traceback", "ERROR", "Exception in ASGI")}
    return ", ".join(f"{n} x {w!r}" for w, n in counts.items() if n) or "no tracebacks or ERROR lines in its log"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per timed run (wrk takes whole seconds)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per contender and cell; the table holds medians")
    parser.add_argument("--warmup", type=int, default=1, help="untimed seconds per contender and cell (0: none)")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    parser.add_argument("--texts", default="1,32", help="texts per request")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"any of {','.join(CONTENDERS)}")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint of the PyTorch reference (default: the bundled MiniLM's)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the accuracy column (and PyTorch)")
    parser.add_argument("--results-dir", type=Path, help="write the results here instead of benchmarks/results")
    parser.add_argument("--format", choices=["markdown", "json"], default="markdown")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.contenders.split(",") if name.strip()]
    if not chosen or set(chosen) - set(CONTENDERS):
        parser.error(f"--contenders takes names from {','.join(CONTENDERS)}, got {args.contenders!r}")
    sizes = [int(n) for n in args.texts.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    if "layerwise" in chosen or "infinity" in chosen:
        wrk.wrk_binary()

    sentences = real_sentences(REQUEST_POOL)
    scored = sentences[:ACCURACY_TEXTS]
    encoder = layerwise.load(args.bundle, provider="cpu")
    pooling = encoder.info.default_pooling
    options = {"layers": -1, "pool": pooling.get("pool", "mean"), "normalize": bool(pooling.get("normalize", True))}
    cpu = machine()
    report: dict[str, Any] = {
        "date": date.today().isoformat(),
        "host": socket.gethostname(),
        "bundle": args.bundle,
        "contenders": chosen,
        "model": {k: getattr(encoder.info, k) for k in ("variant", "provider", "threads", "max_length")},
        "machine": cpu,
        "cpuinfo_flags": cpuinfo_flags(Path("/proc/cpuinfo").read_text()),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "accuracy_texts": ACCURACY_TEXTS,
        "contender_notes": {},
        "accuracy": {},
        "cells": [],
        "targets": [],
        "after": {},
    }
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
        if "layerwise" in chosen or "infinity" in chosen
        else ""
    )
    report["setup"] = {
        "load": f"Servers: {wrk_version}, {args.wrk_threads} thread, `--timeout 60s`, POST /v1/embeddings, closed loop, "
        "one connection per client. "
        f"In-process: one thread per client. {args.seconds} s per run (once per {TEXTS_PER_PERIOD} texts in flight), "
        f"median of {args.repeats} (contenders alternate within each cell, "
        f"order rotated per repeat), {args.warmup} s warm-up per contender and cell; held-out sentences rotated per request; "
        "after each server run, the next waits until that server is idle (it may still work on requests wrk abandoned); "
        "load generator on the same machine."
    }
    reference = None if args.no_accuracy else accuracy.torch_reference(args.checkpoint or minilm_dir(), scored)
    if reference is not None and "inprocess" in chosen:
        report["accuracy"]["inprocess"] = accuracy.score(encoder.embed(scored, **options)[:, -1], reference)  # [texts, 1, hidden]

    contenders: dict[str, Cell] = {}
    with tempfile.TemporaryDirectory(prefix="load-test-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        files = {size: wrk.write_requests(work / f"requests-{size}.txt", request_bodies(sentences, size)) for size in sizes}
        calls = {size: [wrk.request_texts(body) for _, body in request_bodies(sentences, size)] for size in sizes}
        running: dict[str, servers.Running] = {}
        if "layerwise" in chosen:
            running["layerwise"] = stack.enter_context(servers.layerwise_serve(args.bundle, work))
            info = httpx.get(running["layerwise"].url + "/info").json()
            loop = servers.loop_and_parser(running["layerwise"].pid)
            report["contender_notes"]["layerwise"] = (
                f"`layerwise serve BUNDLE --port P` (console script, default settings; variant {info.get('variant', '?')}, "
                f"layerwise {info.get('version', '?')}); event loop {loop['event_loop']}, HTTP parser {loop['http_parser']} "
                "(from /proc/<pid>/maps)"
            )
            report["server_runtime"] = loop
        if "infinity" in chosen:
            running["infinity"] = stack.enter_context(servers.infinity_serve(work))
            report["contender_notes"]["infinity"] = servers.infinity_notes(running["infinity"])
        if "inprocess" in chosen:
            report["contender_notes"]["inprocess"] = (
                f"`layerwise.load(BUNDLE, provider='cpu').embed(texts, layers=-1, pool={options['pool']!r}, "
                f"normalize={options['normalize']})`, one call per request"
            )
        for name, server in running.items():
            if reference is not None:
                report["accuracy"][name] = accuracy.score(accuracy.openai_vectors(server.url, scored), reference)
        report["accuracy"] = {n: report["accuracy"][n] for n in chosen if n in report["accuracy"]}
        for name in chosen:
            if name in running:
                contenders[name] = server_cell(running[name], files, args.wrk_threads)
            else:
                contenders[name] = lambda size, concurrency, seconds: inprocess_cell(
                    lambda texts: encoder.embed(texts, **options), calls[size], concurrency, seconds
                )
        rss_before = {name: servers.rss_mb(server.pid) for name, server in running.items()}
        report["cells"] = measure(contenders, sizes, concurrencies, args.seconds, args.repeats, args.warmup)
        for name, server in running.items():
            alive = f"still answering {server.health}" if server.answers() else f"NOT answering (exit {server.process.poll()})"
            rss_after = servers.rss_mb(server.pid) if server.process.poll() is None else float("nan")
            report["after"][name] = (
                f"{alive}; RSS {rss_before[name]:.0f} MB before the load, {rss_after:.0f} MB after; {log_problems(server.log_tail(10**7))}"
            )
    report["targets"] = targets(report["cells"])
    json_path, md_path = write_results(report, args.results_dir)
    print(json.dumps(report, indent=2) if args.format == "json" else markdown(report))
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
