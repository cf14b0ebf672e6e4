"""The ``.npz`` layout shared by ``layerwise embed --output x.npz`` and the server's application/x-npz.

Pooled output: ``embeddings`` [texts, ...] and ``layers``. Per-token output: every text's
tokens concatenated, one ``layer_K`` array per layer ([all tokens, hidden]; or one
``combined`` array when layers were combined), ``lengths`` (tokens per text) and ``layers``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def npz_arrays(result: np.ndarray | list[np.ndarray], layers: Sequence[int], combined: bool) -> dict[str, np.ndarray]:
    """The arrays to pass to ``np.savez`` for one embed result."""
    layer_ids = np.array(layers, dtype=np.int64)
    if isinstance(result, np.ndarray):
        return {"embeddings": result, "layers": layer_ids}
    lengths = np.array([t.shape[-2] for t in result], dtype=np.int64)
    if combined:  # each text [tokens, combined width]
        arrays = {"combined": _concat(result)}
    else:  # each text [layers, tokens, hidden]
        arrays = {f"layer_{k}": _concat([t[j] for t in result]) for j, k in enumerate(layers)}
    return {"lengths": lengths, "layers": layer_ids, **arrays}
