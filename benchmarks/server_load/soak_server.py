"""Soak of ``layerwise serve`` as a process: mixed wrk load, clients that drop connections, memory and files.

Usage: python -m benchmarks.server_load.soak_server BUNDLE [--minutes 10] [--connections 16] [--results-dir DIR]
Writes benchmarks/results/<date>-<host>-<cpu family>-soak.{md,json}; exits 1 when a check fails.

Starts ``layerwise serve BUNDLE --port P`` (the console script, default settings) on loopback, then
for ``--minutes``, all at once: wrk (``--connections`` connections, in runs of ``--wrk-seconds``;
every run's end drops its connections mid-response) posting single-text and 32-text requests to
/embed and /v1/embeddings, held-out sentences rotated per request; a client that drops connections at
the worst moments (benchmarks/server_load/hostile.py, every few hundred ms, on several routes); a
checker posting one of the same requests every ``--check-every`` s and keeping the vectors; and a
sampler reading the server's RSS and open file descriptors from /proc/<pid> every ``--sample-every`` s.
Checks at the end: the process is alive and /health answers; RSS and descriptors are flat (median of
the last minute against the first: RSS within 5% or 32 MB, descriptors within 8; windows are a third
of the run when it is shorter than 3 minutes); every checked vector equals ``layerwise.load(BUNDLE)
.embed`` with the server's defaults (last layer, the model's pooling, normalised): cosine >= 0.99999
or max abs difference <= 1e-5; no traceback in the server's log; after SIGTERM the process drains and ends by that signal. One
request of each shape warms the server up before the clock starts. ``--minutes 0.5`` is the short mode.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import layerwise
from layerwise.io.atomic import write_text_atomic

from ..common import machine, real_sentences, results_stem
from . import hostile, servers, wrk

COSINE_BAR, ABS_BAR = 0.99999, 1e-5
RSS_SLACK, RSS_SLACK_MB, FD_SLACK = 0.05, 32.0, 8


def mixed_requests(sentences: list[str], count: int = 256) -> list[tuple[str, dict[str, Any]]]:
    """/embed and /v1/embeddings, 1 and 32 texts, in turn; texts rotate through ``sentences``.

    >>> [(route, len(wrk.request_texts(body))) for route, body in mixed_requests(["a", "b"], 4)]
    [('/embed', 1), ('/v1/embeddings', 1), ('/embed', 32), ('/v1/embeddings', 32)]
    """
    out = []
    for i in range(count):
        route, size = [("/embed", 1), ("/v1/embeddings", 1), ("/embed", 32), ("/v1/embeddings", 32)][i % 4]
        texts = [sentences[(i * 7 + j) % len(sentences)] for j in range(size)]
        chosen: Any = texts[0] if size == 1 else texts
        out.append((route, {"inputs": chosen, "truncate": True} if route == "/embed" else {"input": chosen, "model": servers.MODEL_NAME}))
    return out


def vectors_of(route: str, answer: Any) -> list[list[float]]:
    """The pooled vectors of an /embed (list of lists) or /v1/embeddings (``data[].embedding``) answer."""
    if route == "/v1/embeddings":
        return [item["embedding"] for item in sorted(answer["data"], key=lambda item: item["index"])]
    return answer


def flatness(samples: list[dict[str, float]], seconds: float) -> dict[str, Any]:
    """First window against last window (a minute, or a third of a shorter run): medians of RSS and
    open descriptors, and whether each stays within its slack.

    >>> flat = flatness([{"t": t, "rss_mb": 100.0 + t / 100, "fds": 20} for t in range(0, 600, 5)], 600)
    >>> flat["rss_mb"], flat["fds"], flat["flat"]
    ([100.3, 105.68], [20, 20], True)
    """
    window = min(60.0, seconds / 3)
    first = [s for s in samples if s["t"] <= window]
    last = [s for s in samples if s["t"] >= seconds - window] or samples[-1:]
    rss = [round(statistics.median(s["rss_mb"] for s in part), 2) for part in (first, last)]
    fds = [int(statistics.median(s["fds"] for s in part)) for part in (first, last)]
    rss_flat = rss[1] - rss[0] <= max(RSS_SLACK * rss[0], RSS_SLACK_MB)
    fds_flat = fds[1] - fds[0] <= FD_SLACK
    return {
        "window_s": round(window, 1),
        "rss_mb": rss,
        "fds": fds,
        "rss_flat": rss_flat,
        "fds_flat": fds_flat,
        "flat": rss_flat and fds_flat,
    }


def compare(checked: list[tuple[str, list[str], list[list[float]]]], reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each checked vector against the Python API's for its text: worst cosine, worst max abs, failures."""
    worst_cos, worst_abs, failures = 1.0, 0.0, 0
    for _, texts, vectors in checked:
        for text, vector in zip(texts, vectors):
            got, want = np.asarray(vector, dtype=np.float64), reference[text].astype(np.float64)
            cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
            gap = float(np.abs(got - want).max())
            worst_cos, worst_abs = min(worst_cos, cos), max(worst_abs, gap)
            failures += not (cos >= COSINE_BAR or gap <= ABS_BAR)
    return {
        "requests": len(checked),
        "vectors": sum(len(v) for _, _, v in checked),
        "worst_cosine": worst_cos,
        "worst_max_abs": worst_abs,
        "failures": failures,
    }


def log_findings(log: str) -> dict[str, int]:
    r"""Each traceback in a server log as "<the line before it> -> <its exception line>", counted.

    >>> log_findings("INFO ok\nunexpected error on POST /embed\nTraceback (most recent call last):\n  File x\nKeyError: 1\nINFO ok")
    {'unexpected error on POST /embed -> KeyError: 1': 1}
    """
    lines, found = log.splitlines(), Counter[str]()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith((" ", "\t"))), None)
            found[f"{lines[i - 1] if i else ''} -> {lines[end] if end is not None else '?'}"] += 1
    return dict(found)


def warm_up(url: str, requests: list[tuple[str, dict[str, Any]]], large: tuple[str, bytes]) -> None:
    """One request of each shape before the clock starts, so the first minute's memory is the
    steady state's and not the first allocations of each batch shape."""
    with httpx.Client(base_url=url, timeout=300) as client:
        for route, body in requests:
            client.post(route, json=body).raise_for_status()
        client.post(large[0], content=large[1], headers={"Content-Type": "application/json"}).raise_for_status()


@dataclass
class Collected:
    """What the soak saw while it ran."""

    samples: list[dict[str, float]] = field(default_factory=list)  # t, rss_mb, fds
    checked: list[tuple[str, list[str], list[list[float]]]] = field(default_factory=list)  # route, texts, vectors
    check_errors: Counter = field(default_factory=Counter)
    wrk_runs: list[dict[str, Any]] = field(default_factory=list)
    hostile: Counter = field(default_factory=Counter)


def drive(
    server: servers.Running, requests_file: Path, requests: list, long_texts: list[str], seconds: float, args: argparse.Namespace
) -> Collected:
    """The load, the hostile clients, the checker and the sampler, each in a thread, for ``seconds``."""
    got = Collected()
    started = time.monotonic()
    deadline = started + seconds

    def sample() -> None:
        while time.monotonic() < deadline + args.sample_every / 2:
            t = round(time.monotonic() - started, 2)
            got.samples.append({"t": t, "rss_mb": round(servers.rss_mb(server.pid), 2), "fds": servers.open_fds(server.pid)})
            time.sleep(args.sample_every)

    def load() -> None:
        while (left := deadline - time.monotonic()) >= 1:
            got.wrk_runs.append(wrk.run(server.url, requests_file, args.connections, int(min(args.wrk_seconds, left))))

    def check() -> None:
        rng = random.Random(0)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            while time.monotonic() < deadline:
                route, body = rng.choice(requests)
                try:
                    answer = client.post(route, json=body)
                    if answer.status_code == 200:
                        got.checked.append((route, wrk.request_texts(body), vectors_of(route, answer.json())))
                    else:
                        got.check_errors[str(answer.status_code)] += 1
                except httpx.HTTPError as error:
                    got.check_errors[type(error).__name__] += 1
                time.sleep(args.check_every)

    def attack() -> None:
        port = int(server.url.rsplit(":", 1)[1])
        got.hostile.update(hostile.hostile_loop(port, requests, long_texts, deadline, args.hostile_pause))

    workers = [threading.Thread(target=f, daemon=True) for f in (sample, load, check, attack)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 300)
    return got


def run_soak(bundle: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, warm it up, drive it for ``args.minutes``, stop it; the figures (see the module docstring)."""
    seconds = args.minutes * 60
    sentences = real_sentences(512)
    requests = mixed_requests(sentences)
    long_texts = [" ".join(sentences[i : i + 24]) for i in range(0, 480, 24)]
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        with servers.layerwise_serve(bundle, Path(tmp)) as server:
            runtime = servers.loop_and_parser(server.pid)
            warm_up(server.url, requests[:4], hostile.large_response_body(long_texts))
            got = drive(server, wrk.write_requests(Path(tmp) / "requests.txt", requests), requests, long_texts, seconds, args)
            alive, exit_code = server.answers(), server.process.poll()
        log = server.log_tail(10**8)  # read after the server stopped: its shutdown lines too
    encoder = layerwise.load(bundle)
    pooling = encoder.info.default_pooling
    options = {"layers": -1, "pool": pooling.get("pool", "mean"), "normalize": bool(pooling.get("normalize", True))}
    texts = sorted({text for _, batch, _ in got.checked for text in batch})
    reference = dict(zip(texts, encoder.embed(texts, **options)[:, -1])) if texts else {}
    runs = got.wrk_runs
    return {
        "bundle": bundle, "minutes": args.minutes, "connections": args.connections, "wrk_seconds": args.wrk_seconds,
        "variant": encoder.info.variant, "server_runtime": runtime, "alive": alive, "exit_code": exit_code,
        "exit_after_sigterm": server.process.returncode, "tracebacks": log_findings(log),
        "wrk": {"runs": len(runs), "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs),
                "error_kinds": dict(sum((Counter(r["error_kinds"]) for r in runs), Counter())),
                "p99_ms_worst_run": max((r["p99_ms"] or 0 for r in runs), default=None)},
        "hostile": dict(sorted(got.hostile.items())), "check_errors": dict(got.check_errors),
        "vectors": compare(got.checked, reference), "flatness": flatness(got.samples, seconds), "samples": got.samples,
    }  # fmt: skip


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    return {
        "server alive and /health answering": bool(report["alive"]),
        "RSS flat": report["flatness"]["rss_flat"],
        "open descriptors flat": report["flatness"]["fds_flat"],
        "every checked vector equals the Python API's": report["vectors"]["failures"] == 0 and report["vectors"]["requests"] > 0,
        "no traceback in the server's log": not report["tracebacks"],
        "drained and ended by SIGTERM (as uvicorn re-raises it)": report["exit_after_sigterm"] == -signal.SIGTERM,
    }


def markdown(report: dict[str, Any]) -> str:
    cpu, flat, vec, load = report["machine"], report["flatness"], report["vectors"], report["wrk"]
    lines = [
        f"## Soak of `layerwise serve`: {report['bundle']} ({report['variant']}), {report['minutes']} min",
        "",
        f"{cpu['cpu']} ({cpu['cpu_family_title']}), {cpu['cpu_count']} logical cores; server on {report['server_runtime']['event_loop']} "
        f"+ {report['server_runtime']['http_parser']}. wrk: {report['connections']} connections in {load['runs']} runs of "
        f"{report['wrk_seconds']} s, {load['requests']} answered, {load['errors']} errors {dict(load['error_kinds']) or ''}, "
        f"worst run p99 {load['p99_ms_worst_run']} ms.",
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in report["verdicts"].items()]
    lines += [
        "",
        f"RSS (median of the first / last {flat['window_s']} s): {flat['rss_mb'][0]} / {flat['rss_mb'][1]} MB; "
        f"open descriptors: {flat['fds'][0]} / {flat['fds'][1]}.",
        f"Vectors: {vec['vectors']} in {vec['requests']} checked requests; worst cosine {vec['worst_cosine']:.7f}, worst max abs "
        f"{vec['worst_max_abs']:.2e}; {vec['failures']} outside the bar (cosine >= {COSINE_BAR} or max abs <= {ABS_BAR}). "
        f"Checker errors: {report['check_errors'] or 'none'}.",
        "",
        "| hostile client: outcome | count |",
        "|---|---|",
    ]
    lines += [f"| {name} | {count} |" for name, count in report["hostile"].items()]
    if report["tracebacks"]:
        lines += ["", "| traceback in the server's log: message -> exception | count |", "|---|---|"]
        lines += [f"| {finding} | {count} |" for finding, count in report["tracebacks"].items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-seconds", type=int, default=30, help="length of each wrk run (its end drops every connection)")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between RSS / descriptor samples")
    parser.add_argument("--check-every", type=float, default=0.5, help="seconds between checked requests")
    parser.add_argument("--hostile-pause", type=float, default=0.2, help="seconds between hostile connections")
    parser.add_argument("--results-dir", type=Path, help="write the results here instead of benchmarks/results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.wrk_binary()
    report = run_soak(args.bundle, args)
    report.update({"date": date.today().isoformat(), "host": socket.gethostname(), "machine": machine()})
    report["verdicts"] = verdicts(report)
    stem = results_stem(report["date"], report["host"], report["machine"]["cpu_family"], "-soak")
    if args.results_dir is not None:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / stem.name
    write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(report, indent=2) + "\n")
    write_text_atomic(stem.with_name(stem.name + ".md"), markdown(report) + "\n")
    print(markdown(report))
    print(f"\nwrote {stem.with_name(stem.name + '.md')}")
    return 0 if all(report["verdicts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
