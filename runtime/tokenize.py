"""Tokenize once, then cut length-sorted batches padded only to their own longest text.

Sorting by length means a batch of short texts never pays for one long text's padding;
``Batch.indices`` says where each row goes back in the caller's order.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from .errors import InputError

CACHED_LIMITS = 4  # tokenizers kept for distinct max_length values


@dataclass(frozen=True)
class Encoded:
    """Token ids of every text, in the caller's order."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    truncated: list[int]  # indices of texts cut to max_length

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass(frozen=True)
class Batch:
    """Model inputs for some texts, right-padded to the longest of them."""

    indices: np.ndarray  # positions of these rows in the caller's order
    input_ids: np.ndarray  # int64 [batch, sequence]
    attention_mask: np.ndarray  # int64 [batch, sequence]
    token_type_ids: np.ndarray  # int64 [batch, sequence]

    def feeds(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "token_type_ids": self.token_type_ids}


class TextTokenizer:
    """The bundle's fast tokenizer, with truncation set per max_length and no padding."""

    def __init__(self, tokenizer_json: str, model_max_length: int, pad_id: int) -> None:
        self._json = tokenizer_json
        self.model_max_length = model_max_length
        self.pad_id = pad_id
        self._by_length: dict[int | None, Tokenizer] = {}
        self._lock = threading.Lock()
        self._tokenizer(model_max_length)  # fail at load, not at first request

    def _tokenizer(self, max_length: int | None) -> Tokenizer:
        with self._lock:
            if max_length not in self._by_length:
                if len(self._by_length) >= CACHED_LIMITS:  # keep the model maximum and "none"; drop the oldest other
                    oldest = next(k for k in self._by_length if k not in (None, self.model_max_length))
                    del self._by_length[oldest]
                tokenizer = Tokenizer.from_str(self._json)
                tokenizer.no_padding()
                if max_length is None:
                    tokenizer.no_truncation()
                else:
                    tokenizer.enable_truncation(max_length)
                self._by_length[max_length] = tokenizer
            return self._by_length[max_length]

    def encode(self, texts: Sequence[str], max_length: int | None = None, truncate: bool = True) -> Encoded:
        """Tokenize ``texts``; longer than ``max_length`` is cut, or an InputError if truncate=False."""
        limit = self.model_max_length if max_length is None else max_length
        if not isinstance(limit, int) or isinstance(limit, bool) or not 2 <= limit <= self.model_max_length:
            raise InputError(f"max_length must be an int from 2 to the model maximum {self.model_max_length}, got {max_length!r}")
        encodings = self._tokenizer(limit).encode_batch(list(texts))
        truncated = [i for i, e in enumerate(encodings) if e.overflowing]
        if truncated and not truncate:
            first = truncated[0]
            full = len(self._tokenizer(None).encode(texts[first]).ids)
            raise InputError(
                f"text {first} has {full} tokens, more than max_length {limit} "
                f"({len(truncated)} text(s) too long); pass truncate=True to cut them, or shorten the text"
            )
        return Encoded(ids=[e.ids for e in encodings], type_ids=[e.type_ids for e in encodings], truncated=truncated)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without truncation (for limits and usage reports)."""
        return [len(e.ids) for e in self._tokenizer(None).encode_batch(list(texts))]


def length_sorted_batches(encoded: Encoded, batch_size: int, pad_id: int, max_tokens: int | None = None) -> Iterator[Batch]:
    """Yield batches longest-first, each padded to its own longest text and holding at most
    ``batch_size`` texts and (when given) ``max_tokens`` padded tokens, one text at least.

    Example: lengths [3, 9, 4], batch_size 2 -> rows [1, 2] padded to 9, then row [0] at 3;
    with max_tokens 10 -> [1] at 9, then [2, 0] at 4.
    """
    lengths = encoded.lengths
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        width = int(lengths[order[start]])  # the longest of this batch: order is longest-first
        count = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // max(width, 1)))
        rows = order[start : start + count]
        start += len(rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            n = lengths[row]
            ids[r, :n] = encoded.ids[row]
            types[r, :n] = encoded.type_ids[row]
            mask[r, :n] = 1
        yield Batch(indices=rows, input_ids=ids, attention_mask=mask, token_type_ids=types)
