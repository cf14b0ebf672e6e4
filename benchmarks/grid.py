"""Job 3: batch x sequence grid on synthetic tokens, p50/p90/p99 latency and throughput per variant."""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.latency import measure_grid

BATCH_SIZES = [1, 8, 32]
SEQ_LENS = [16, 128, 512]


def run(bundle: str, threads: int, variants: tuple[str, ...] = ("fp32", "fused", "int8"), seconds: float = 2.0) -> dict[str, Any]:
    results = {}
    for variant in variants:
        encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=threads)
        results[variant] = measure_grid(encoder, BATCH_SIZES, SEQ_LENS, layers="all", pool="mean", seconds=seconds)
    return {"threads": threads, "layers": "all", "pool": "mean", "variants": results}
