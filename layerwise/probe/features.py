"""Every text embedded once: one float32 array [texts, layers, hidden] holding every hidden state, pooled.

The array is filled CHUNK texts at a time (each chunk one ``Encoder.embed`` call, length-sorted
batches inside), so memory is the array itself plus one chunk's work; its size is said before
any model work (``feature_bytes``). Every probe row is cut from this one array: no text is
embedded twice. Not handled here: the probes (fit.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..runtime import EmbedOptions, Encoder
from ..runtime.errors import InputError

CHUNK = 1024  # texts per embed call: progress granularity, and the bound on per-call working memory


def feature_bytes(texts: int, num_layers: int, hidden: int) -> int:
    """Bytes of the [texts, num_layers + 1, hidden] float32 array ``embed_all`` fills."""
    return texts * (num_layers + 1) * hidden * 4


def human_bytes(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    raise AssertionError  # pragma: no cover


def embed_all(
    encoder: Encoder,
    texts: list[str],
    options: EmbedOptions,
    advance: Callable[[int], None] = lambda done: None,
) -> np.ndarray:
    """Pooled hidden states 0..L of every text: float32 [texts, L + 1, hidden]."""
    info = encoder.info
    out = np.empty((len(texts), info.num_layers + 1, info.hidden_size), dtype=np.float32)
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        try:
            out[start : start + len(chunk)] = encoder.embed(chunk, options=options)
        except InputError as e:
            raise e.at(start) from e
        advance(len(chunk))
    return out
