"""One Encoder shared by several threads gives each caller exactly its serial result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import layerwise
from layerwise.exporter.texts import corpus_sentences

REQUESTS = [
    {"texts": corpus_sentences(9, skip=1500 + 9 * i), "layers": layers, "pool": pool}
    for i, (layers, pool) in enumerate([("all", "mean"), (-1, "cls"), ([1, 2], "max"), (3, "mean"), ([0, -1], "max"), (2, "cls")] * 2)
]


def test_parallel_requests_match_serial_results(minilm_bundle):
    """Callers in 6 threads, each call split into batches of 2 that run side by side, and every
    cut session first built under that load; then the same requests one by one on an encoder
    with one thread, which runs its batches one after the other in the caller's thread."""
    encoder = layerwise.load(minilm_bundle, variant="int8", provider="cpu", threads=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda r: encoder.embed(**r, batch_size=2), REQUESTS))
    with layerwise.load(minilm_bundle, variant="int8", provider="cpu", threads=1) as one_thread:
        serial = [one_thread.embed(**r, batch_size=2) for r in REQUESTS]
    for want, got in zip(serial, parallel):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
