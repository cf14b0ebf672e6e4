"""The bundle's own accuracy check: PyTorch reference vectors and per-variant bars.

``verification.npz`` holds a small set of real texts and PyTorch's mean-pooled hidden
states for them (every layer, float32; about 570 KB for MiniLM). ``layerwise verify`` and
``Encoder.verify`` embed those texts on the machine they run on and apply the bars the
export used, translated to pooled vectors: a token-level bound holds for their means too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.manifest import INPUT_ROLES, VERIFICATION_NAME, GraphInput
from .parity import ParityBars
from .reference import CALIBRATION_SENTENCES, EVALUATION_SENTENCES, hidden_states, short_texts, tokenize
from .texts import PARITY_TEXTS, corpus_sentences

SENTENCES = 24


def verification_texts() -> list[str]:
    """Held-out sentences, one-to-four-word prefixes of them, and the parity texts (empty to over-long)."""
    sentences = corpus_sentences(SENTENCES, skip=CALIBRATION_SENTENCES + EVALUATION_SENTENCES)
    return [*sentences, *short_texts(sentences[:16]), *PARITY_TEXTS]


def pooled_bars(thresholds: ParityBars) -> dict[str, float]:
    """The export bars for mean-pooled vectors: |token diff| <= b bounds the pooled diff; min token cosine bounds pooled cosine."""
    bars = {
        "pooled_max_abs": thresholds.max_abs,
        "pooled_cos_mean": thresholds.pooled_cos_mean,
        "pooled_cos_min": thresholds.pooled_cos_min if thresholds.pooled_cos_min is not None else thresholds.token_cos_min,
    }
    return {k: v for k, v in bars.items() if v is not None}


def write_reference(model: Any, tokenizer: Any, max_length: int, inputs: Sequence[GraphInput], bundle: Path) -> Path:
    """Write ``verification.npz`` (texts, PyTorch's mean-pooled states [texts, states, hidden]) into the bundle."""
    texts = verification_texts()
    pooled = []
    for start in range(0, len(texts), 16):
        feeds = tokenize(tokenizer, texts[start : start + 16], max_length, inputs)
        mask = feeds[INPUT_ROLES["mask"]][..., None].astype(np.float64)
        states = hidden_states(model, feeds)
        pooled.append(np.stack([(h * mask).sum(1) / np.maximum(mask.sum(1), 1.0) for h in states], axis=1))
    buffer = io.BytesIO()
    utf8 = np.frombuffer(json.dumps(texts).encode("utf-8"), dtype=np.uint8)  # a fixed-width str array would pad every text to the longest
    np.savez(buffer, texts_json=utf8, reference=np.concatenate(pooled).astype(np.float32))
    path = bundle / VERIFICATION_NAME
    path.write_bytes(buffer.getvalue())
    return path
