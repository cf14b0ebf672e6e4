"""Independent measurements for tests: PyTorch hidden states and ONNX outputs on real text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


def torch_states(
    model: torch.nn.Module, tokenizer, texts: list[str], max_length: int = 512
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """transformers' hidden_states for one padded batch, and the batch's inputs."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    feeds = {k: np.asarray(batch[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
    feeds["token_type_ids"] = np.asarray(batch.get("token_type_ids", np.zeros_like(feeds["input_ids"])), dtype=np.int64)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, output_hidden_states=True)
    return [h.numpy() for h in out.hidden_states], feeds


def onnx_states(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def mean_pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    return (states * m).sum(1) / m.sum(1)


def per_layer(got: list[np.ndarray], want: list[np.ndarray], mask: np.ndarray) -> list[dict[str, float]]:
    """max abs diff and min token / pooled cosines over real tokens, per hidden state."""
    real = mask.astype(bool)
    rows = []
    for g, w in zip(got, want):
        pooled = cosine(mean_pool(g, mask), mean_pool(w, mask))
        rows.append(
            {
                "max_abs": float(np.abs(g[real] - w[real]).max()),
                "token_cos_min": float(cosine(g[real], w[real]).min()),
                "pooled_cos_min": float(pooled.min()),
                "pooled_cos_mean": float(pooled.mean()),
                "finite": bool(np.isfinite(g).all()),
            }
        )
    return rows
