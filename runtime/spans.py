"""Character spans of a text -> the token rows they cover, and one vector per span.

Rows are those of the merged text (``windows.py``), so a span anywhere in a long document
works. A token belongs to a span when their character ranges overlap; special tokens belong
to none. Spans are Python string offsets, end exclusive, as ``text[start:end]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputError
from .options import preview
from .windows import Windows

# [layers, rows, hidden] -> [layers, hidden]; "first" is the first sub-token, as the BERT paper's feature-based NER
SPAN_POOLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: x.mean(axis=1, dtype=np.float32),
    "max": lambda x: x.max(axis=1),
    "first": lambda x: x[:, 0],
}


def check_span_pool(pool: Any) -> str:
    if pool not in SPAN_POOLS:
        raise InputError(f"pool for spans must be one of {', '.join(SPAN_POOLS)}, got {pool!r}")
    return pool


def span_rows(windows: Windows, spans: Any) -> list[list[np.ndarray]]:
    """For each text, for each (start, end) span, the merged rows it covers; a span covering no token is an InputError."""
    texts = windows.texts
    if not isinstance(spans, (list, tuple)) or len(spans) != len(texts):
        raise InputError(
            f"spans must be a list with one list of (start, end) pairs per text ({len(texts)} text(s)), got {preview(repr(spans))}"
        )
    out = []
    for index, (text, text_spans, alignment) in enumerate(zip(texts, spans, windows.alignments())):
        if not isinstance(text_spans, (list, tuple)):
            raise InputError(f"spans[{index}] must be a list of (start, end) pairs, got {type(text_spans).__name__}")
        content = alignment.word_ids >= 0
        starts, ends = alignment.offsets[:, 0], alignment.offsets[:, 1]
        rows = []
        for span in text_spans:
            if not (
                isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            ):
                raise InputError(f"span {span!r} of text {index} must be a (start, end) pair of ints")
            start, end = span
            covered = np.flatnonzero(content & (starts < end) & (ends > start))
            if start < 0 or end > len(text) or start >= end or not len(covered):
                raise InputError(
                    f"span ({start}, {end}) of text {index} {preview(text)} covers no token (the text has {len(text)} "
                    "characters; a span must be start < end within it and hold more than whitespace)"
                )
            rows.append(covered)
        out.append(rows)
    return out


def pool_spans(states: np.ndarray, rows: list[np.ndarray], pool: str) -> np.ndarray:
    """A text's merged rows [layers, tokens, hidden] -> [spans, layers, hidden]."""
    if not rows:
        return np.empty((0, states.shape[0], states.shape[-1]), dtype=np.float32)
    return np.stack([SPAN_POOLS[pool](states[:, r]) for r in rows])
