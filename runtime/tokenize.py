"""Tokenize once, then cut length-sorted batches padded only to their own longest text.

Sorting by length means a batch of short texts never pays for one long text's padding;
``Batch.indices`` says where each row goes back in the caller's order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

from .errors import InputError, TooLongError, UntokenizableText
from .manifest import GraphInput

CACHED_LIMITS = 4  # tokenizers kept for distinct max_length values
PREFIX_CHARS = 1 << 15  # ``count_at_least`` tokenizes prefixes of this many characters, doubling


def encode_batch(tokenizer: Tokenizer, texts: list[str], add_special_tokens: bool) -> list[Encoding]:
    """``tokenizer.encode_batch``, with a refusal (tokenizers' bare TypeError for a lone surrogate)
    turned into an UntokenizableText naming the first text it refuses."""
    try:
        return tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
    except Exception as e:  # noqa: BLE001 - tokenizers raises TypeError or its own exceptions
        for index, text in enumerate(texts):
            reason = _refusal(tokenizer, text)
            if reason:
                raise UntokenizableText(index, reason) from e
        raise


def not_unicode(text: str) -> str | None:
    """Why ``text`` is not valid Unicode (a lone surrogate, which no tokenizer takes), or None if it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"holds the lone surrogate {text[e.start]!r} at character {e.start}, which is not valid Unicode and cannot be "
            "tokenized: remove it, or decode the source bytes with errors='replace'"
        )
    return None


def _refusal(tokenizer: Tokenizer, text: str) -> str | None:
    """Why the tokenizer refuses ``text``, or None if it does not."""
    surrogate = not_unicode(text)
    if surrogate:
        return surrogate
    try:
        tokenizer.encode(text, add_special_tokens=False)
    except Exception as e:  # noqa: BLE001
        return f"cannot be tokenized ({type(e).__name__}: {e}); remove or replace the characters the tokenizer refuses"
    return None


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

    def rows(self, part: slice) -> Tokenized:
        """The texts in ``part`` (a slice of rows), with everything that belongs to them."""
        return Tokenized(self.texts[part], self.ids[part], self.type_ids[part], self.full_lengths[part], self.limit, self.warn_truncated)

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

    @staticmethod
    def synthetic(batch_size: int, seq_len: int, vocab: int, seed: int = 0) -> Batch:
        """Random ordinary-token ids of an exact shape, for measuring (the first tenth of the vocabulary,
        where special tokens live, is skipped)."""
        rng = np.random.default_rng(seed)
        ids = rng.integers(max(5, vocab // 10), vocab, size=(batch_size, seq_len), dtype=np.int64)
        return Batch(indices=np.arange(batch_size), input_ids=ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids))

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
            raise InputError(
                "{p:max_length} must be an int from 2 to the model maximum {limit}, got {value}",
                parameter="max_length",
                value=max_length,
                limit=self.model_max_length,
            )
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
        raw = encode_batch(self._raw, texts, add_special_tokens=False)
        full = [len(e.ids) + self._specials for e in raw]
        if truncate is False:
            refuse_too_long(full, limit)
        cut = self._truncating(limit)
        encodings = [cut.post_process(e) for e in raw]
        return Tokenized(texts, [e.ids for e in encodings], [e.type_ids for e in encodings], full, limit, truncate is None)

    def overflowing(self, texts: Sequence[str], limit: int, stride: int) -> tuple[list[Encoding], list[Encoding]]:
        """Each text whole with special tokens, and cut into windows of ``limit`` tokens sharing
        ``stride`` (the first window, the others in its ``.overflowing``)."""
        raw = encode_batch(self._raw, list(texts), add_special_tokens=False)
        cut = self._truncating(limit, stride)
        return [self._raw.post_process(e) for e in raw], [cut.post_process(e) for e in raw]

    def tokens(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[Encoding]:
        """Every text's whole encoding (ids, tokens, offsets, special mask), never truncated: for inspection."""
        return encode_batch(self._raw, list(texts), add_special_tokens)

    def count_at_least(self, text: str, cap: int) -> int:
        """The text's tokens besides the special ones, or, once a prefix cut at a space shows more than
        ``cap``, that prefix's count: a lower bound found without tokenizing a huge text whole.

        Prefixes double from PREFIX_CHARS characters, so the work is about twice the prefix
        that passes ``cap``. A prefix cut before whitespace tokenizes as the start of the whole.
        """
        size = PREFIX_CHARS
        while size < len(text):
            cut = max(text.rfind(" ", 0, size), text.rfind("\n", 0, size))
            if cut > 0:
                counted = len(encode_batch(self._raw, [text[:cut]], False)[0].ids)
                if counted > cap:
                    return counted
            size *= 2
        return len(encode_batch(self._raw, [text], False)[0].ids)

    def encode_ids(self, ids: Sequence[Sequence[int]], max_length: int | None = None, truncate: bool | None = None) -> Tokenized:
        """Token ids as given (special tokens included, as text-embeddings-inference runs them), checked
        against the vocabulary and cut to ``max_length`` like ``encode``; ``texts`` holds their decoding."""
        limit = self.check_limit(max_length)
        rows = [list(seq) for seq in ids]
        self._check_vocabulary(rows)
        for row, seq in enumerate(rows):
            if not seq:
                raise InputError("{text} holds no token ids; send at least one", index=row)
        full = [len(seq) for seq in rows]
        if truncate is False:
            refuse_too_long(
                full,
                limit,
                "sequence {index} has {value} token ids, more than {p:max_length} {limit} ({count} sequence(s) too long); "
                "pass truncate=True to cut them, or send fewer ids",
            )
        cut = [seq[:limit] for seq in rows]
        texts = self._raw.decode_batch(cut, skip_special_tokens=False)
        return Tokenized(texts, cut, [[0] * len(seq) for seq in cut], full, limit, truncate is None)

    @property
    def vocab_size(self) -> int:
        return self._raw.get_vocab_size(with_added_tokens=True)

    def _check_vocabulary(self, ids: Sequence[Sequence[int]]) -> None:
        """An InputError naming the first id that is not an int in 0..vocab_size-1."""
        size = self.vocab_size
        for row, seq in enumerate(ids):
            unknown = next((i for i in seq if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < size), None)
            if unknown is not None:
                raise InputError(
                    "token id {value} (sequence {index}) is not in the vocabulary of {limit} tokens (ids 0..{last})",
                    index=row,
                    value=unknown,
                    limit=size,
                    last=size - 1,
                )

    def decode(self, ids: Sequence[Sequence[int]], skip_special_tokens: bool = True) -> list[str]:
        """Texts for token ids; an InputError names the first id outside the vocabulary."""
        self._check_vocabulary(ids)
        return self._raw.decode_batch([list(seq) for seq in ids], skip_special_tokens=skip_special_tokens)


def length_sorted_batches(
    tokenized: Tokenized, batch_size: int, pad_id: int, max_tokens: int | None = None, spread: int = 1
) -> Iterator[Batch]:
    """Yield batches longest-first, each padded to its own longest text and holding at most
    ``batch_size`` texts and (when given) ``max_tokens`` padded tokens, one text at least.
    With ``spread`` > 1 the batches run side by side on that many threads: the call is cut into a
    multiple of ``spread`` batches of about equal tokens within the same caps (or one batch per
    text, when it has fewer), so the threads finish together.

    Example: lengths [3, 9, 4], batch_size 2 -> rows [1, 2] padded to 9, then row [0] at 3;
    with max_tokens 10 -> [1] at 9, then [2, 0] at 4; with batch_size 32 and spread 2 -> [1] at 9, then [2, 0] at 4.
    """
    lengths = tokenized.lengths
    order = np.argsort(-lengths, kind="stable")
    groups = _capped_groups(order, lengths, batch_size, max_tokens)
    if spread > 1:
        groups = _balanced_groups(order, lengths, groups, spread, batch_size, max_tokens)
    for rows in groups:
        width = int(lengths[rows[0]])  # the longest of this batch: order is longest-first
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            n = lengths[row]
            ids[r, :n] = tokenized.ids[row]
            types[r, :n] = tokenized.type_ids[row]
            mask[r, :n] = 1
        yield Batch(indices=rows, input_ids=ids, attention_mask=mask, token_type_ids=types)


def _capped_groups(order: np.ndarray, lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[np.ndarray]:
    """Consecutive runs of ``order`` (longest first) of at most ``batch_size`` rows and ``max_tokens`` padded tokens."""
    groups, start = [], 0
    while start < len(order):
        width = int(lengths[order[start]])
        count = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // max(width, 1)))
        groups.append(order[start : start + count])
        start += count
    return groups


BALANCE_TRIES = 4  # batch counts _balanced_groups tries: each costs a pass over the call's lengths


def _balanced_groups(
    order: np.ndarray, lengths: np.ndarray, groups: list[np.ndarray], spread: int, batch_size: int, max_tokens: int | None
) -> list[np.ndarray]:
    """``groups`` re-cut into a multiple of ``spread`` runs of about equal tokens that keep both caps.

    Capped groups alone leave threads idle: 12 sentences under a 512-token cap make batches of 11
    texts and of 1. BALANCE_TRIES counts are tried, ``spread`` apart from the fewest; ``groups``
    stays when none fits the caps (a large call, where one idle batch matters little).
    """

    def fits(group: np.ndarray) -> bool:
        return len(group) <= batch_size and (max_tokens is None or len(group) == 1 or len(group) * int(lengths[group[0]]) <= max_tokens)

    fewest = -(-len(groups) // spread) * spread
    for parts in dict.fromkeys(min(fewest + i * spread, len(order)) for i in range(BALANCE_TRIES)):
        even = _even_groups(order, lengths, parts)
        if all(fits(group) for group in even):
            return even
    return groups


def _even_groups(order: np.ndarray, lengths: np.ndarray, parts: int) -> list[np.ndarray]:
    """``order`` cut into ``parts`` consecutive runs of about equal tokens, one row each at least.
    Example: lengths by order [9, 4, 3, 2], 2 parts -> [9], [4, 3, 2]."""
    cumulative = np.cumsum(lengths[order])
    targets = cumulative[-1] * np.arange(1, parts) / parts
    cuts = np.searchsorted(cumulative, targets, side="left") + 1  # each part ends with the row that reaches its share
    cuts = np.clip(cuts, np.arange(1, parts), len(order) - parts + np.arange(1, parts))  # non-empty parts
    cuts = np.maximum.accumulate(cuts)
    return [part for part in np.split(order, cuts) if len(part)]


TOO_LONG = (
    "{text} has {value} tokens, more than {p:max_length} {limit} ({count} of {total} {item}(s) too long); "
    "pass {s:overflow=truncate} to cut them, {s:overflow=chunk} to embed them whole as windows, or shorten them"
)


def refuse_too_long(full: Sequence[int], limit: int, template: str = TOO_LONG) -> None:
    """A TooLongError naming the first of ``full`` (lengths, specials included) over ``limit``, if any."""
    too_long = [i for i, n in enumerate(full) if n > limit]
    if too_long:
        first = too_long[0]
        raise TooLongError(
            template, parameter="max_length", index=first, value=full[first], limit=limit, count=len(too_long), total=len(full)
        )
