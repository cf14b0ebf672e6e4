"""The cost of asking for layer k of L (a graph cut after layer k) against the full graph.

Each timed run follows one untimed run of the same graph: the steady cost of asking for
layer k. Without it, a graph timed right after another one pays for the other's worker
threads still spinning and its evicted caches (measured: int8 layer 1 at 0.32 of the full
graph instead of 0.18, a fixed ~50 ms at batch 32 x 128 on 2 cores).
"""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.manifest import read_manifest
from layerwise.runtime.tokenize import Batch

from ..common import alternate

BATCH, SEQ = 32, 128


def run(bundle: str, threads: int, repeats: int = 5) -> dict[str, Any]:
    """Every variant built for the CPU except the plain fp32 graph (fused is the same arithmetic, faster)."""
    results = {}
    for variant in [v for v in read_manifest(bundle).variants_built_for("cpu") if v != "fp32"]:
        encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=threads)
        layers = encoder.info.num_layers
        batch = Batch.synthetic(BATCH, SEQ, 30000)
        contenders = {k: (lambda k=k, encoder=encoder, batch=batch: encoder.engine.run(batch, [k], "mean")) for k in range(layers + 1)}
        timings = alternate(contenders, repeats, settle=1)
        full = timings[layers]["median_s"]
        results[variant] = [
            {"layer": k, "median_s": t["median_s"], "fraction_of_full": t["median_s"] / full, "target": k / layers + 0.1}
            for k, t in timings.items()
        ]
    return {"batch_size": BATCH, "seq_len": SEQ, "threads": threads, "variants": results}
