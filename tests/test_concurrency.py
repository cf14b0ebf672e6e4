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
    encoder = layerwise.load(minilm_bundle, variant="int8", provider="cpu", threads=1)
    serial = [encoder.embed(**r) for r in REQUESTS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda r: encoder.embed(**r), REQUESTS))
    for want, got in zip(serial, parallel):
        np.testing.assert_array_equal(got, want)
