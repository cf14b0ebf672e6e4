"""Latency of an Encoder on synthetic token batches: p50/p90/p99, sequences/s and tokens/s.

Measures the engine path of ``embed`` for one batch (``Encoder.engine.run``: graph with
intra-op threads, pooling, copy-out) on exact batch x sequence shapes; tokenization is left
out so that shapes are what was asked. Warm-up runs are excluded; each cell repeats until
its time budget is spent or its median is stable (first and second half of the runs within 2%).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..runtime.encoder import Encoder
from ..runtime.options import EmbedOptions, unique_sorted
from ..runtime.tokenize import Batch

WARMUP = 2
MIN_REPEATS = 5
STABLE = 0.02


@dataclass(frozen=True)
class Cell:
    batch_size: int
    seq_len: int
    repeats: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    sequences_per_s: float
    tokens_per_s: float


def _stable(times: list[float]) -> bool:
    if len(times) < 2 * MIN_REPEATS:
        return False
    half = len(times) // 2
    first, second = np.median(times[:half]), np.median(times[half:])
    return abs(first - second) <= STABLE * min(first, second)


def measure(encoder: Encoder, batch_size: int, seq_len: int, layers: Any = "all", pool: str = "mean", seconds: float = 3.0) -> Cell:
    """Time one batch x sequence cell."""
    if seq_len > encoder.info.max_length:
        raise ValueError(f"seq_len {seq_len} exceeds the model maximum {encoder.info.max_length}")
    options = EmbedOptions(layers=tuple(layers) if isinstance(layers, list) else layers, pool=pool)
    needed = unique_sorted(options.layer_indices(encoder.info.num_layers))
    batch = Batch.synthetic(batch_size, seq_len, encoder.engine.manifest.model.vocab_size)
    for _ in range(WARMUP):
        encoder.engine.run(batch, needed, pool)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < MIN_REPEATS or (time.perf_counter() < deadline and not _stable(times)):
        started = time.perf_counter()
        encoder.engine.run(batch, needed, pool)
        times.append(time.perf_counter() - started)
    p50, p90, p99 = (float(np.percentile(times, q)) for q in (50, 90, 99))
    return Cell(batch_size, seq_len, len(times), p50 * 1e3, p90 * 1e3, p99 * 1e3, batch_size / p50, batch_size * seq_len / p50)


def measure_grid(
    encoder: Encoder, batch_sizes: list[int], seq_lens: list[int], layers: Any = "all", pool: str = "mean", seconds: float = 3.0
) -> list[dict[str, Any]]:
    """Every cell of batch_sizes x seq_lens, as dicts."""
    return [asdict(measure(encoder, b, s, layers, pool, seconds)) for b in batch_sizes for s in seq_lens if s <= encoder.info.max_length]
