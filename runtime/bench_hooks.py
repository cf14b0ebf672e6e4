"""The one supported way below ``Encoder.embed``, for benchmarks and tests: exact batches through the engine.

Tokenization, length sorting and result assembly are left out, so shapes are exactly what
a measurement asks for. Everything else inside an Encoder is private and may change.

Example:
    >>> enc = open_encoder("bundles/minilm", variant="int8", provider="cpu", threads=2)
    >>> run_batch(enc, synthetic_batch(32, 128, vocab_size(enc)), layers=[6])[6].shape
    (32, 384)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .batching import Batching
from .encoder import Encoder
from .loader import open_encoder
from .manifest import Manifest
from .tokenize import Batch

__all__ = [
    "batching",
    "batching_settings",
    "graph_outputs",
    "hidden_states",
    "manifest",
    "open_encoder",
    "run_batch",
    "session_options",
    "synthetic_batch",
    "vocab_size",
]


def synthetic_batch(batch_size: int, seq_len: int, vocab: int, seed: int = 0) -> Batch:
    """Random ordinary-token ids (the first tenth of the vocabulary, where special tokens live, is skipped)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(max(5, vocab // 10), vocab, size=(batch_size, seq_len), dtype=np.int64)
    ones = np.ones_like(ids)
    return Batch(indices=np.arange(batch_size), input_ids=ids, attention_mask=ones, token_type_ids=np.zeros_like(ids))


def manifest(encoder: Encoder) -> Manifest:
    """The manifest of the bundle the encoder was loaded from."""
    return encoder._engine.manifest


def session_options(encoder: Encoder) -> Any:
    """The ONNX Runtime SessionOptions the encoder's sessions are made with (threads, the variant's
    session config entries), for a benchmark that builds its own session, e.g. to profile it."""
    return encoder._engine.config.session_options()


def vocab_size(encoder: Encoder) -> int:
    return manifest(encoder).model.vocab_size


def run_batch(encoder: Encoder, batch: Batch, layers: list[int], pool: str = "mean") -> dict[int, np.ndarray]:
    """What ``embed`` runs per batch: the graph cut after max(layers), intra-op threads, pooled on the
    provider (or per token with pool="none"), copied to numpy: {layer: [rows, hidden]}."""
    return encoder._engine.run(batch, layers, pool)


def hidden_states(encoder: Encoder, batch: Batch, copy_back: bool) -> list[Any]:
    """Every hidden state of the full graph, left on the provider's device (OrtValues), or copied to numpy."""
    states = encoder._engine.hidden_states(batch, list(range(encoder.info.num_layers + 1)))
    return [state.numpy() for state in states] if copy_back else states


def graph_outputs(encoder: Encoder, deepest: int) -> list[str]:
    """The outputs of the graph ``embed`` runs when layer ``deepest`` is the deepest asked for."""
    return [output.name for output in encoder._engine.session(deepest).get_outputs()]


def batching_settings(encoder: Encoder) -> tuple[int | None, int]:
    """(padded tokens a batch holds at most or None, batches run at once): what ``embed`` uses now."""
    return encoder._engine.batching.max_tokens, encoder._engine.batching.side_by_side


@contextmanager
def batching(encoder: Encoder, batch_tokens: int | None, side_by_side: bool, spread: bool = True) -> Iterator[Encoder]:
    """Within the block, ``embed`` caps batches at ``batch_tokens`` padded tokens (None: no cap) and
    runs batches side by side on one thread each (False: one at a time on intra-op threads).
    For measuring the defaults (runtime/engine.py) on a machine; not thread-safe (``Engine.tuned``)."""
    engine = encoder._engine
    spread_from = engine.batching.spread_from if side_by_side and spread else None
    with engine.tuned(Batching(batch_tokens, engine.config.threads if side_by_side else 1, spread_from)):
        yield encoder
