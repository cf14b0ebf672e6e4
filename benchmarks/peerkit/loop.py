"""Build, warm up and time the contenders: each built once (build time reported, not timed),
warmed up once on the texts (that pass's output is kept and scored), then timed for ``repeats``
full passes, round-robin so every contender sees the same machine noise. A contender that fails
at any step lands in ``errors`` with the reason; the others go on.

Each timed pass starts after a pause of SETTLE_S: the engines here keep their worker threads
spinning after a run (Intel OpenMP under CTranslate2 and PyTorch for 200 ms by default, ONNX
Runtime and OpenVINO briefly), and without the pause they would hold the cores of whoever runs next.
"""

from __future__ import annotations

import statistics
import sys
import time
import traceback
from typing import Any

import numpy as np

from .base import Context, Peer, Spec, as_output

SETTLE_S = 0.5


def log(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def error_text(exc: BaseException) -> str:
    """One-line reason for peers.json; the full traceback goes to stderr."""
    traceback.print_exception(exc, file=sys.stderr)
    return f"{type(exc).__name__}: {exc}".strip()[:2000]


def build_all(specs: dict[str, Spec], ctx: Context, errors: dict[str, str]) -> tuple[dict[str, Peer], dict[str, float]]:
    """Build each contender once, timing the build; failures go to `errors`."""
    peers: dict[str, Peer] = {}
    build_s: dict[str, float] = {}
    for name, spec in specs.items():
        log(f"building {name}")
        start = time.perf_counter()
        try:
            peers[name] = spec.build(ctx)
        except Exception as exc:  # noqa: BLE001 - a broken peer is reported, not fatal
            errors[name] = f"build failed: {error_text(exc)}"
            continue
        build_s[name] = time.perf_counter() - start
    return peers, build_s


def warm_up(peers: dict[str, Peer], texts: list[str], job: str, errors: dict[str, str]) -> dict[str, np.ndarray]:
    """One untimed pass per peer; its output is checked and kept as that peer's embeddings."""
    outputs: dict[str, np.ndarray] = {}
    for name in list(peers):
        log(f"warming up {name}")
        try:
            outputs[name] = as_output(peers[name].embed(texts), len(texts), job)
        except Exception as exc:  # noqa: BLE001
            errors[name] = f"warm-up failed: {error_text(exc)}"
            del peers[name]
    return outputs


def time_rounds(peers: dict[str, Peer], texts: list[str], repeats: int, errors: dict[str, str]) -> dict[str, list[float]]:
    """`repeats` rounds; in each round every peer embeds all texts once, in turn."""
    seconds: dict[str, list[float]] = {name: [] for name in peers}
    for round_no in range(1, repeats + 1):
        for name in list(peers):
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            try:
                peers[name].embed(texts)
            except Exception as exc:  # noqa: BLE001
                errors[name] = f"timed pass {round_no} failed: {error_text(exc)}"
                del peers[name], seconds[name]
                continue
            seconds[name].append(time.perf_counter() - start)
        log(f"round {round_no}/{repeats}: " + ", ".join(f"{n}={s[-1]:.3f}s" for n, s in seconds.items()))
    return seconds


def summarize(peer: Peer, times: list[float], build_s: float, n_texts: int) -> dict[str, Any]:
    """The peers.json entry for one peer."""
    median = statistics.median(times)
    return {
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "repeats": len(times),
        "texts_per_s": n_texts / median,
        "build_s": build_s,
        "threads_controlled": peer.threads_controlled,
        "notes": peer.notes,
        "versions": peer.versions,
    }
