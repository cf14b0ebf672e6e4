"""Character spans of a text -> the token rows they cover, and one vector per span
(``Encoder.embed_spans``); each token row's characters and word (``Encoder.token_offsets``).

Rows are those of the merged text (``windows.py``), so a span anywhere in a long document
works. A token belongs to a span when their character ranges overlap; special tokens belong
to none. Spans are Python string offsets, end exclusive, as ``text[start:end]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .combine import combine_layers, l2_normalize
from .errors import InputError, NonFiniteOutputError
from .options import EmbedOptions, preview
from .tokenize import TextTokenizer
from .windows import TokenAlignment, Windows, split

# [layers, rows, hidden] -> [layers, hidden]; "first" is the first sub-token, as the BERT paper's feature-based NER
SPAN_POOLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: x.mean(axis=1, dtype=np.float32),
    "max": lambda x: x.max(axis=1),
    "first": lambda x: x[:, 0],
}


def check_span_pool(pool: Any) -> str:
    if pool not in SPAN_POOLS:
        raise InputError(
            "{p:pool} for spans must be one of {allowed}, got {value}", parameter="pool", value=pool, allowed=", ".join(SPAN_POOLS)
        )
    return pool


def embed_spans(
    embed_tokens: Callable[..., list[np.ndarray]], tokenizer: TextTokenizer, texts: list[str], spans: Any, pool: str, options: EmbedOptions
) -> list[np.ndarray]:
    """Per text [spans, layers, hidden] (combined as ``options`` asks): ``embed_tokens`` (the Encoder's) over
    every text as windows, each span's rows pooled by ``pool``. Spans are checked before any model work."""
    pool = check_span_pool(pool)
    windows = split(tokenizer, texts, options.max_length, options.stride)
    rows = span_rows(windows, spans)
    per_text = embed_tokens(windows, options=replace(options, combine=None, normalize=False, weights=None, gamma=1.0))
    out = []
    for index, (states, text_rows) in enumerate(zip(per_text, rows)):
        values = combine_layers(pool_spans(states, text_rows, pool), options.combine, options.weights, options.gamma)
        values = l2_normalize(values) if options.normalize else np.ascontiguousarray(values)
        if not np.isfinite(values).all():
            raise NonFiniteOutputError(
                f"combining the layers of a span of text {index} {preview(texts[index])} gave NaN or Inf "
                f"(combine={options.combine!r}); nothing was returned. Combine fewer layers, or use combine='concat'"
            )
        out.append(values)
    return out


def token_offsets(tokenizer: TextTokenizer, texts: list[str], options: EmbedOptions) -> list[TokenAlignment]:
    """Each text's token rows as ``embed_tokens`` returns them with ``options``: character offsets and word indices."""
    if options.overflow == "chunk":
        return split(tokenizer, texts, options.max_length, options.stride).alignments()
    tokenizer.encode(texts, options.max_length, options.truncate)  # the same refusals as embed_tokens
    _, cut = tokenizer.overflowing(texts, tokenizer.check_limit(options.max_length), 0)
    return [TokenAlignment.of(encoding) for encoding in cut]


def span_rows(windows: Windows, spans: Any) -> list[list[np.ndarray]]:
    """For each text, for each (start, end) span, the merged rows it covers; a span covering no token is an InputError."""
    texts = windows.texts
    if not isinstance(spans, (list, tuple)) or len(spans) != len(texts):
        raise InputError(
            "{p:spans} must be a list with one list of (start, end) pairs per text ({count} text(s)), got {shown}",
            parameter="spans",
            count=len(texts),
            shown=preview(repr(spans)),
        )
    out = []
    for index, (text, text_spans, alignment) in enumerate(zip(texts, spans, windows.alignments())):
        if not isinstance(text_spans, (list, tuple)):
            raise InputError(
                "{p:spans}[{index}] must be a list of (start, end) pairs, got {kind}",
                parameter="spans",
                index=index,
                kind=type(text_spans).__name__,
            )
        content = alignment.word_ids >= 0
        starts, ends = alignment.offsets[:, 0], alignment.offsets[:, 1]
        rows = []
        for span in text_spans:
            if not (
                isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            ):
                raise InputError(
                    "span {shown} of {text} must be a (start, end) pair of ints", parameter="spans", index=index, shown=repr(span)
                )
            start, end = span
            covered = np.flatnonzero(content & (starts < end) & (ends > start))
            if start < 0 or end > len(text) or start >= end:
                raise InputError(
                    "span ({start}, {end}) of {text} {shown} is not within it: the text has {length} characters, and a span "
                    "needs 0 <= start < end <= {length}",
                    parameter="spans", index=index, start=start, end=end, shown=preview(text), length=len(text),
                )  # fmt: skip
            if not len(covered):
                raise InputError(
                    "span ({start}, {end}) of {text} {shown} covers no token: it holds only whitespace or characters the "
                    "tokenizer drops; widen it to a word",
                    parameter="spans", index=index, start=start, end=end, shown=preview(text),
                )  # fmt: skip
            rows.append(covered)
        out.append(rows)
    return out


def pool_spans(states: np.ndarray, rows: list[np.ndarray], pool: str) -> np.ndarray:
    """A text's merged rows [layers, tokens, hidden] -> [spans, layers, hidden]."""
    if not rows:
        return np.empty((0, states.shape[0], states.shape[-1]), dtype=np.float32)
    return np.stack([SPAN_POOLS[pool](states[:, r]) for r in rows])
