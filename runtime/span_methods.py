"""``Encoder.embed_spans`` and ``Encoder.token_offsets``: vectors for character spans, and each token row's characters and word.

A mixin so encoder.py stays one concern; it relies on the Encoder's ``_tokenizer``, ``_run``,
and ``_finish``, declared (typed) below and checked against the Encoder by mypy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .combine import COMBINERS
from .options import BATCH_SIZE, check_combine, check_texts
from .spans import check_span_pool, pool_spans, span_rows
from .tokenize import TextTokenizer
from .windows import TokenAlignment, check_overflow, split


class RunOutput(NamedTuple):
    """What ``Encoder._run`` gives every entry point."""

    values: Any  # per text, over ``needed``: pooled [texts, needed, hidden], or a list of [needed, tokens, hidden]
    texts: list[str]  # the texts, to name one in an error
    positions: list[int]  # the caller's layers, in the caller's order, as positions into ``needed``
    needed: list[int]  # each asked layer once, sorted


class SpanMethods:
    """Span and alignment methods of ``Encoder``."""

    if TYPE_CHECKING:  # what the mixin uses of the Encoder
        _tokenizer: TextTokenizer

        def _run(
            self, texts: Any, layers: Any, pool: str, batch_size: int, max_length: int | None, truncate: bool | None,
            overflow: str | None, stride: int | None,
        ) -> RunOutput: ...

        def _finish(
            self,
            values: np.ndarray,
            normalize: bool,
            row: int,
            states: np.ndarray,
            needed: list[int],
            names: list[str],
            combine: str | None,
        ) -> np.ndarray: ...

    def embed_spans(
        self,
        texts: str | list[str],
        spans: list[list[tuple[int, int]]],
        layers: Any = "all",
        pool: str = "mean",
        combine: str | None = None,
        normalize: bool = False,
        batch_size: int = BATCH_SIZE,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> list[np.ndarray]:
        """One vector per character span (``text[start:end]``) per layer, pooled ("mean", "max" or
        "first" sub-token) over the tokens overlapping it: per text float32 [spans, layers, hidden]
        ([spans, layers*hidden] / [spans, hidden] when combined). Texts are never cut: long ones
        run as windows (overflow="chunk" with ``stride``), so spans anywhere work.

        Example:
            >>> [v.shape for v in enc.embed_spans(["New York is big"], [[(0, 8), (12, 15)]], layers=-1)]
            [(2, 1, 384)]
        """
        pool = check_span_pool(pool)
        combiner = COMBINERS[check_combine(combine)]
        windows = split(self._tokenizer, check_texts(texts), max_length, stride)
        rows = span_rows(windows, spans)  # checked before any model work
        per_text, names, positions, needed = self._run(windows, layers, "none", batch_size, None, None, None, None)
        return [
            self._finish(combiner(pool_spans(states, text_rows, pool)[:, positions]), normalize, index, states, needed, names, combine)
            for index, (states, text_rows) in enumerate(zip(per_text, rows))
        ]

    def token_offsets(
        self, texts: str | list[str], max_length: int | None = None, overflow: str | None = None, stride: int | None = None
    ) -> list[TokenAlignment]:
        """Each text's token rows as ``embed_tokens`` returns them for the same arguments: character
        offsets [tokens, 2] and word indices [tokens] (-1 for special tokens), to align word pieces with words."""
        texts = check_texts(texts)
        if overflow == "chunk":
            return split(self._tokenizer, texts, max_length, stride).alignments()
        self._tokenizer.encode(texts, max_length, check_overflow(overflow, None, stride))  # the same checks as embed_tokens
        _, cut = self._tokenizer.overflowing(texts, self._tokenizer.check_limit(max_length), 0)
        return [TokenAlignment.of(encoding) for encoding in cut]
