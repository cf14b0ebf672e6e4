"""Batch x sequence grid on synthetic tokens, p50/p90/p99 latency and throughput per variant."""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.commands.latency import measure_grid
from layerwise.runtime.manifest import read_manifest

BATCH_SIZES = [1, 8, 32]
SEQ_LENS = [16, 128, 512]


def run(bundle: str, threads: int, seconds: float = 2.0) -> dict[str, Any]:
    """Every variant of the bundle built for the CPU."""
    results = {}
    for variant in read_manifest(bundle).variants_built_for("cpu"):
        encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=threads)
        results[variant] = measure_grid(encoder, BATCH_SIZES, SEQ_LENS, layers="all", pool="mean", seconds=seconds)
    return {"threads": threads, "layers": "all", "pool": "mean", "variants": results}
