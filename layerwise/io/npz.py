"""The ``.npz`` layout shared by ``layerwise embed --output x.npz`` and the server's application/x-npz.

Pooled output: ``embeddings`` [texts, ...] and ``layers``. Per-token output: every text's
tokens concatenated, one ``layer_K`` array per layer ([all tokens, hidden]; or one
``combined`` array when layers were combined), ``lengths`` (tokens per text) and ``layers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import numpy as np


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def save_npz(file: str | IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of ``arrays`` (numpy's stubs type its keyword arrays as its own options)."""
    np.savez(file, **arrays)  # type: ignore[arg-type]


def npz_pooled(embeddings: np.ndarray, layers: Sequence[int]) -> dict[str, np.ndarray]:
    """The arrays to pass to ``np.savez`` for an ``embed`` result."""
    return {"embeddings": embeddings, "layers": np.array(layers, dtype=np.int64)}


def npz_tokens(per_text: list[np.ndarray], layers: Sequence[int], combined: bool) -> dict[str, np.ndarray]:
    """The arrays to pass to ``np.savez`` for an ``embed_tokens`` result."""
    lengths = np.array([t.shape[-2] for t in per_text], dtype=np.int64)
    if combined:  # each text [tokens, combined width]
        arrays = {"combined": _concat(per_text)}
    else:  # each text [layers, tokens, hidden]
        arrays = {f"layer_{k}": _concat([t[j] for t in per_text]) for j, k in enumerate(layers)}
    return {"lengths": lengths, "layers": np.array(layers, dtype=np.int64), **arrays}
