"""Combine several layers' vectors into one, L2-normalise, compare by cosine: pure numpy on small arrays.

``layers`` is always the axis right before the last (hidden) one, so the same
functions serve pooled output [texts, layers, hidden] and token output [layers, tokens, hidden]
once moved to [tokens, layers, hidden].
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Combiner = Callable[[np.ndarray], np.ndarray]


def _concat(x: np.ndarray) -> np.ndarray:
    """[..., layers, hidden] -> [..., layers * hidden], layers in the order asked."""
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


COMBINERS: dict[str | None, Combiner] = {
    None: lambda x: x,
    "concat": _concat,
    "sum": lambda x: x.sum(axis=-2, dtype=np.float32),
    "mean": lambda x: x.mean(axis=-2, dtype=np.float32),
}
SCALAR_MIX = "scalar_mix"  # weighted by learned weights: see ``scalar_mix``
COMBINES = (*(name for name in COMBINERS if name), SCALAR_MIX)  # every ``combine`` besides None


def scalar_mix(x: np.ndarray, weights: tuple[float, ...], gamma: float) -> np.ndarray:
    """AllenNLP's ScalarMix: ``gamma * sum_k softmax(weights)_k * x[..., k, :]``, [..., layers, hidden] -> [..., hidden].

    Example: weights (0, 0) and gamma 2 over two layers -> their sum (each weighted 0.5, times 2).
    """
    w = np.asarray(weights, dtype=np.float64)
    w = np.exp(w - w.max())
    w = (gamma * w / w.sum()).astype(np.float32)
    return np.tensordot(x, w, axes=([-2], [0])).astype(np.float32, copy=False)


def combine_layers(x: np.ndarray, combine: str | None, weights: tuple[float, ...] | None = None, gamma: float = 1.0) -> np.ndarray:
    """[..., layers, hidden] combined as ``combine`` asks (runtime/options.py checked the arguments)."""
    if combine == SCALAR_MIX:
        assert weights is not None  # EmbedOptions refuses scalar_mix without weights
        return scalar_mix(x, weights, gamma)
    return COMBINERS[combine](x)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching vectors (the last axis), in float64; 0 where either is all zeros."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=-1) * np.linalg.norm(b64, axis=-1)
    return (a64 * b64).sum(axis=-1) / np.maximum(norms, 1e-30)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Scale every vector (the last axis) to unit length; zero vectors stay zero."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
