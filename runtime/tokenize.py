"""Tokenize once, then cut length-sorted batches padded only to their own longest text.

Sorting by length means a batch of short texts never pays for one long text's padding;
``Batch.indices`` says where each row goes back in the caller's order.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
from tokenizers import Encoding, Tokenizer

from .errors import InputError
from .manifest import GraphInput

CACHED_LIMITS = 4  # tokenizers kept for distinct max_length values


@dataclass(frozen=True)
class Tokenized:
    """Token ids of every text, in the caller's order, cut to ``limit`` tokens.

    ``TextTokenizer.encode`` makes one; ``Encoder.embed`` accepts it in place of texts, so a
    caller that must check lengths first (the HTTP server) tokenizes only once.
    """

    texts: list[str]
    ids: list[list[int]]
    type_ids: list[list[int]]
    full_lengths: list[int]  # tokens before truncation, special tokens included
    limit: int
    warn_truncated: bool = True  # False when the caller asked for truncation (truncate=True): no warning

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))

    @property
    def truncated(self) -> list[int]:
        """Indices of the texts that were cut to ``limit``."""
        return [i for i, n in enumerate(self.full_lengths) if n > self.limit]

    @staticmethod
    def concat(parts: Sequence[Tokenized]) -> Tokenized:
        """One Tokenized holding ``parts`` in order (all cut to the same limit)."""
        limits = {part.limit for part in parts}
        if len(limits) != 1:
            raise InputError(f"cannot join tokenized texts cut to different limits {sorted(limits)}")
        return Tokenized(
            texts=[t for part in parts for t in part.texts],
            ids=[i for part in parts for i in part.ids],
            type_ids=[t for part in parts for t in part.type_ids],
            full_lengths=[n for part in parts for n in part.full_lengths],
            limit=limits.pop(),
            warn_truncated=any(part.warn_truncated for part in parts),
        )


@dataclass(frozen=True)
class Batch:
    """Model inputs for some texts, right-padded to the longest of them."""

    indices: np.ndarray  # positions of these rows in the caller's order
    input_ids: np.ndarray  # int64 [batch, sequence]
    attention_mask: np.ndarray  # int64 [batch, sequence]
    token_type_ids: np.ndarray  # int64 [batch, sequence]

    def feeds(self, inputs: Sequence[GraphInput]) -> dict[str, np.ndarray]:
        """The arrays a graph with ``inputs`` (the manifest's) takes, by input name."""
        by_role = {"ids": self.input_ids, "mask": self.attention_mask, "type_ids": self.token_type_ids}
        return {i.name: by_role[i.role] for i in inputs}


class TextTokenizer:
    """The bundle's fast tokenizer, no padding: one untruncated pass, then cut per max_length.

    Tokenizing without special tokens and then post-processing with truncation gives exactly
    what tokenizers' own truncating ``encode`` gives, plus every text's full length for free
    (length checks and usage counts need it).
    """

    def __init__(self, tokenizer_json: str, model_max_length: int, pad_id: int) -> None:
        self._json = tokenizer_json
        self.model_max_length = model_max_length
        self.pad_id = pad_id
        self._raw = Tokenizer.from_str(tokenizer_json)
        self._raw.no_padding()
        self._raw.no_truncation()
        self._specials = self._raw.num_special_tokens_to_add(False)
        self._by_length: dict[tuple[int, int], Tokenizer] = {}
        self._lock = threading.Lock()
        self._truncating(model_max_length)  # fail at load, not at first request

    def _truncating(self, max_length: int, stride: int = 0) -> Tokenizer:
        key = (max_length, stride)
        with self._lock:
            if key not in self._by_length:
                if len(self._by_length) >= CACHED_LIMITS:  # keep the model maximum; drop the oldest other
                    oldest = next(k for k in self._by_length if k != (self.model_max_length, 0))
                    del self._by_length[oldest]
                tokenizer = Tokenizer.from_str(self._json)
                tokenizer.no_padding()
                tokenizer.enable_truncation(max_length, stride=stride)
                self._by_length[key] = tokenizer
            return self._by_length[key]

    def check_limit(self, max_length: int | None) -> int:
        """The token limit asked (None: the model maximum), checked."""
        limit = self.model_max_length if max_length is None else max_length
        if not isinstance(limit, int) or isinstance(limit, bool) or not 2 <= limit <= self.model_max_length:
            raise InputError(f"max_length must be an int from 2 to the model maximum {self.model_max_length}, got {max_length!r}")
        return limit

    @property
    def special_tokens(self) -> int:
        """Special tokens the model wraps around one text (2 for BERT's [CLS] ... [SEP])."""
        return self._specials

    def encode(self, texts: Sequence[str], max_length: int | None = None, truncate: bool | None = None) -> Tokenized:
        """Tokenize ``texts``; longer than ``max_length`` is cut (truncate None or True), or an InputError
        (truncate=False)."""
        limit = self.check_limit(max_length)
        texts = list(texts)
        raw = self._raw.encode_batch(texts, add_special_tokens=False)
        full = [len(e.ids) + self._specials for e in raw]
        too_long = [i for i, n in enumerate(full) if n > limit]
        if too_long and truncate is False:
            first = too_long[0]
            raise InputError(
                f"text {first} has {full[first]} tokens, more than max_length {limit} "
                f"({len(too_long)} text(s) too long); pass truncate=True to cut them, or shorten the text"
            )
        cut = self._truncating(limit)
        encodings = [cut.post_process(e) for e in raw]
        return Tokenized(texts, [e.ids for e in encodings], [e.type_ids for e in encodings], full, limit, truncate is None)

    def overflowing(self, texts: Sequence[str], limit: int, stride: int) -> tuple[list[Encoding], list[Encoding]]:
        """Each text whole with special tokens, and cut into windows of ``limit`` tokens sharing
        ``stride`` (the first window, the others in its ``.overflowing``)."""
        raw = self._raw.encode_batch(list(texts), add_special_tokens=False)
        cut = self._truncating(limit, stride)
        return [self._raw.post_process(e) for e in raw], [cut.post_process(e) for e in raw]

    def tokens(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[Encoding]:
        """Every text's whole encoding (ids, tokens, offsets, special mask), never truncated: for inspection."""
        return self._raw.encode_batch(list(texts), add_special_tokens=add_special_tokens)

    @property
    def vocab_size(self) -> int:
        return self._raw.get_vocab_size(with_added_tokens=True)

    def decode(self, ids: Sequence[Sequence[int]], skip_special_tokens: bool = True) -> list[str]:
        """Texts for token ids; an InputError names the first id outside the vocabulary."""
        size = self.vocab_size
        for row, seq in enumerate(ids):
            unknown = next((i for i in seq if not 0 <= i < size), None)
            if unknown is not None:
                raise InputError(f"token id {unknown} (sequence {row}) is not in the vocabulary of {size} tokens (ids 0..{size - 1})")
        return self._raw.decode_batch([list(seq) for seq in ids], skip_special_tokens=skip_special_tokens)


def length_sorted_batches(tokenized: Tokenized, batch_size: int, pad_id: int, max_tokens: int | None = None) -> Iterator[Batch]:
    """Yield batches longest-first, each padded to its own longest text and holding at most
    ``batch_size`` texts and (when given) ``max_tokens`` padded tokens, one text at least.

    Example: lengths [3, 9, 4], batch_size 2 -> rows [1, 2] padded to 9, then row [0] at 3;
    with max_tokens 10 -> [1] at 9, then [2, 0] at 4.
    """
    lengths = tokenized.lengths
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
            ids[r, :n] = tokenized.ids[row]
            types[r, :n] = tokenized.type_ids[row]
            mask[r, :n] = 1
        yield Batch(indices=rows, input_ids=ids, attention_mask=mask, token_type_ids=types)
