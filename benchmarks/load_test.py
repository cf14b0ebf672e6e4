"""Load test of ``layerwise serve`` on loopback, next to calling the runtime in-process.

Usage: python -m benchmarks.load_test BUNDLE [--seconds 4] [--concurrency 1,8,32] [--format markdown|json]
Writes benchmarks/results/<date>-<host>-<cpu family>-server.{json,md} and prints the table (or the JSON).

Starts ``layerwise -q serve BUNDLE`` on 127.0.0.1 (a free port, default batching flags),
then for short (one sentence) and long (cut to the model maximum) texts and each
concurrency, alternates two contenders: closed-loop HTTP clients posting one text per
request to /embed, and as many threads calling ``Encoder.embed`` on one text each. Each
cell stops after ``--seconds`` or ``--max-requests``, whichever comes first; in-flight
requests finish. Reports requests/s, p50/p99 latency, and for the server the mean number
of requests merged per run (from /metrics). The default run takes about a minute (12 cells of
4 s plus start-up). The client runs on the same machine: on few cores its CPU competes with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import httpx
import numpy as np

import layerwise
from layerwise.io.atomic import write_text_atomic

from .common import machine, real_sentences, results_stem

WARMUP = 3  # untimed requests per contender and text kind


def texts_by_kind() -> dict[str, list[str]]:
    sentences = real_sentences(512)
    long = [" ".join(sentences[i : i + 48]) for i in range(0, 512 - 48, 16)]  # well over 512 tokens each
    return {"short": sentences[:256], "long": long}


def start_server(bundle: str, variant: str | None, threads: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "layerwise.cli",
        "-q",
        "serve",
        bundle,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--provider",
        "cpu",
    ]
    command += ["--variant", variant] if variant else []
    command += ["--threads", str(threads)] if threads else []
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not become ready: {server.communicate()[1][-2000:]}")


def runs_so_far(url: str) -> tuple[float, float]:
    """(requests, runs) merged so far, from the batch-size histogram in /metrics."""
    text = httpx.get(f"{url}/metrics").text
    total = float(re.search(r"^layerwise_batch_requests_sum (\S+)$", text, re.M).group(1))
    count = float(re.search(r"^layerwise_batch_requests_count (\S+)$", text, re.M).group(1))
    return total, count


async def _http_cell(url: str, texts: list[str], concurrency: int, seconds: float, max_requests: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    issued = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and (i := next(issued)) < max_requests:
                started = time.perf_counter()
                response = await client.post("/embed", json={"inputs": texts[i % len(texts)], "truncate": True})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def http_cell(url: str, texts: list[str], concurrency: int, seconds: float, max_requests: int) -> dict[str, Any]:
    asyncio.run(_http_cell(url, texts, WARMUP, 60, WARMUP))
    before = runs_so_far(url)
    started = time.perf_counter()
    latencies, errors = asyncio.run(_http_cell(url, texts, concurrency, seconds, max_requests))
    elapsed = time.perf_counter() - started
    after = runs_so_far(url)
    merged = (after[0] - before[0]) / max(after[1] - before[1], 1)
    return {**figures(latencies, elapsed), "errors": errors, "requests_per_run": round(merged, 2)}


def inprocess_cell(embed: Callable[[str], Any], texts: list[str], concurrency: int, seconds: float, max_requests: int) -> dict[str, Any]:
    for text in texts[:WARMUP]:
        embed(text)
    issued = itertools.count()
    deadline = time.perf_counter() + seconds

    def worker() -> list[float]:
        latencies = []
        while time.perf_counter() < deadline and (i := next(issued)) < max_requests:
            started = time.perf_counter()
            embed(texts[i % len(texts)])
            latencies.append(time.perf_counter() - started)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = [t for part in pool.map(lambda _: worker(), range(concurrency)) for t in part]
    return {**figures(latencies, time.perf_counter() - started), "errors": 0, "requests_per_run": 1.0}


def figures(latencies: list[float], elapsed: float) -> dict[str, Any]:
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def markdown(report: dict[str, Any]) -> str:
    info, cpu = report["model"], report["machine"]
    lines = [
        f"## layerwise serve load test: {report['bundle']} ({info['variant']}, {info['provider']}, {info['threads']} threads)",
        "",
        f"{cpu['cpu']} ({cpu['cpu_family_title']}: {' '.join(cpu['cpu_flags'])}), {cpu['cpu_count']} logical cores; one text per request, "
        f"default pooling; {report['seconds']} s or {report['max_requests']} requests per cell; client on the same machine.",
        "",
        "| texts | concurrency | contender | requests | errors | req/s | p50 ms | p99 ms | requests per run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report["cells"]:
        lines.append(
            f"| {c['texts']} | {c['concurrency']} | {c['contender']} | {c['requests']} | {c['errors']} | {c['requests_per_s']} "
            f"| {c['p50_ms']} | {c['p99_ms']} | {c['requests_per_run']} |"
        )
    ceiling = ", ".join(f"{kind} {value} texts/s" for kind, value in report["ceiling_texts_per_s"].items())
    lines += ["", f"Ceiling, in-process, all texts in one `embed` call: {ceiling}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=float, default=4.0, help="time budget per cell")
    parser.add_argument("--max-requests", type=int, default=2000, help="request budget per cell")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--variant")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--format", choices=["markdown", "json"], default="markdown")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", layerwise.runtime.TruncationWarning)  # long texts are cut on purpose

    encoder = layerwise.load(args.bundle, variant=args.variant, provider="cpu", threads=args.threads)
    pooling = encoder.info.default_pooling
    options = {"layers": -1, "pool": pooling.get("pool", "mean"), "normalize": bool(pooling.get("normalize", True))}
    server, url = start_server(args.bundle, encoder.info.variant, args.threads)
    report: dict[str, Any] = {
        "bundle": args.bundle,
        "model": {k: getattr(encoder.info, k) for k in ("variant", "provider", "threads", "max_length")},
    }
    report.update(
        {"machine": machine(), "seconds": args.seconds, "max_requests": args.max_requests, "cells": [], "ceiling_texts_per_s": {}}
    )
    try:
        for kind, texts in texts_by_kind().items():
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                cell = {"texts": kind, "concurrency": concurrency}
                served = http_cell(url, texts, concurrency, args.seconds, args.max_requests)
                local = inprocess_cell(lambda t: encoder.embed([t], **options), texts, concurrency, args.seconds, args.max_requests)
                report["cells"] += [{**cell, "contender": "server /embed", **served}, {**cell, "contender": "in-process embed", **local}]
            started = time.perf_counter()
            encoder.embed(texts, **options)
            report["ceiling_texts_per_s"][kind] = round(len(texts) / (time.perf_counter() - started), 1)
    finally:
        server.terminate()
        server.wait(timeout=60)
    stem = results_stem(date.today().isoformat(), socket.gethostname(), report["machine"]["cpu_family"], "-server")
    write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(report, indent=2) + "\n")  # a host name may hold dots
    write_text_atomic(stem.with_name(stem.name + ".md"), markdown(report) + "\n")
    print(json.dumps(report, indent=2) if args.format == "json" else markdown(report))


if __name__ == "__main__":
    main()
