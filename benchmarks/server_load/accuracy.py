"""Pooled-vector accuracy of each contender against a PyTorch float32 reference.

The reference is the Hugging Face checkpoint in PyTorch (transformers ``AutoModel``, float32,
eager), the last hidden state mean-pooled over the attention mask and L2-normalised: what
sentence-transformers computes for all-MiniLM-L6-v2. It is neither contender's own graph. A
server's vectors come from POST /v1/embeddings in requests of ``batch`` texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

from ..common import torch_all_layers_mean
from .servers import MODEL_NAME

REFERENCE = "PyTorch float32 (transformers AutoModel on the checkpoint), last layer, mean pooling, L2-normalised"


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def torch_reference(checkpoint: Path, texts: Sequence[str]) -> np.ndarray:
    """[texts, hidden] float32 reference vectors (see the module docstring)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(checkpoint, attn_implementation="eager", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    return unit(torch_all_layers_mean(model, tokenizer, list(texts), batch_size=32, sort=False, last_only=True)[:, 0]).astype(np.float32)


def openai_vectors(url: str, texts: Sequence[str], batch: int = 32) -> np.ndarray:
    """The server's /v1/embeddings vectors for ``texts``, in order (by each item's ``index``)."""
    rows: list[list[float]] = []
    with httpx.Client(base_url=url, timeout=300) as client:
        for start in range(0, len(texts), batch):
            response = client.post("/v1/embeddings", json={"input": list(texts[start : start + batch]), "model": MODEL_NAME})
            response.raise_for_status()
            rows += [item["embedding"] for item in sorted(response.json()["data"], key=lambda item: item["index"])]
    return np.asarray(rows, dtype=np.float32)


def score(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Cosine of each row to its reference: mean and min.

    >>> score(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    {'cos_mean': 0.853553, 'cos_min': 0.707107}
    """
    if got.shape != want.shape:
        raise ValueError(f"{got.shape[0]} vectors of width {got.shape[-1]} against a reference of {want.shape}")
    cos = (unit(got) * unit(want)).sum(axis=-1)
    return {"cos_mean": round(float(cos.mean()), 6), "cos_min": round(float(cos.min()), 6)}
