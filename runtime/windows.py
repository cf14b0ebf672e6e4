"""Long texts as overlapping windows, and their merge back into one text.

A text longer than the limit is split by the tokenizer's own overflow mechanism (tokenizers'
truncation with a stride, as ``return_overflowing_tokens`` in transformers): windows of at most
``max_length`` tokens, each wrapped in the model's special tokens, consecutive windows sharing
``stride`` content tokens. Every window is one row of the usual length-sorted batches.

Merge rules (one place, documented in docs/embedding.md):
- tokens: one row per token of the whole text (the first window's leading special tokens,
  every content token once, the last window's closing special tokens); a token seen in
  several windows gets the mean of its rows. ``mean``/``max`` pool these rows as for a short text.
- cls: the windows' first-token vectors, averaged with weights equal to each window's count of
  content tokens not shared with the previous window (all of them for the first window).
This module does not handle pairs of texts (single sequences only, as ``embed`` takes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tokenizers import Encoding

from .errors import InputError, LayerwiseError
from .tokenize import TextTokenizer, Tokenized

DEFAULT_STRIDE = 128  # content tokens shared by consecutive windows, capped at half a window
STRIDE_DEFAULT_RULE = f"min({DEFAULT_STRIDE}, half a window)"  # how help texts and the OpenAPI document say it


def check_stride(stride: object, content: int) -> int:
    """``stride`` (None: the default) checked against a window of ``content`` tokens besides the special ones."""
    if stride is None:
        return min(DEFAULT_STRIDE, content // 2)
    if not isinstance(stride, int) or isinstance(stride, bool) or not 0 <= stride < content:
        negative = isinstance(stride, int) and stride < 0
        fix = "pass a {p:stride} of at least 0" if negative else "pass a smaller {p:stride} or a larger {p:max_length}"
        raise InputError(
            "{p:stride} must be an int from 0 to {limit} (windows hold {content} tokens besides the special ones, and "
            "consecutive windows must advance), got {value}; " + fix,
            parameter="stride",
            value=stride,
            limit=content - 1,
            content=content,
        )
    return stride


@dataclass(frozen=True)
class TokenAlignment:
    """Where each token row of a text comes from: character offsets [tokens, 2] (end exclusive,
    Python string offsets; (0, 0) for special tokens) and word indices [tokens] (-1 for special tokens)."""

    offsets: np.ndarray
    word_ids: np.ndarray

    @staticmethod
    def of(encoding: Encoding) -> TokenAlignment:
        offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        words = np.array([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
        return TokenAlignment(offsets, words)


@dataclass(frozen=True)
class Placement:
    """Where one window's rows go in its text's merged rows."""

    text: int
    source: np.ndarray  # row indices in the window
    target: np.ndarray  # row indices in the merged text
    fresh: int  # content tokens not shared with the previous window (the cls weight)


@dataclass(frozen=True)
class Windows:
    """Every text as one or more windows; ``tokenized`` holds one entry per window, a text's windows in order."""

    texts: list[str]
    tokenized: Tokenized
    placements: list[Placement]
    merged: list[Encoding]  # per text: the whole text with special tokens, the layout of the merged rows
    stride: int

    @property
    def split(self) -> list[int]:
        """Indices of the texts that needed more than one window."""
        counts = np.bincount([p.text for p in self.placements], minlength=len(self.merged))
        return [int(i) for i in np.flatnonzero(counts > 1)]

    def alignments(self) -> list[TokenAlignment]:
        return [TokenAlignment.of(e) for e in self.merged]

    @property
    def output_lengths(self) -> list[int]:
        """Rows per text once merged (what per-token output returns), special tokens included."""
        return [len(e.ids) for e in self.merged]

    @staticmethod
    def concat(parts: Sequence[Windows]) -> Windows:
        """One Windows holding ``parts`` in order, to run several requests' windows together."""
        texts: list[str] = []
        placements: list[Placement] = []
        for part in parts:
            placements += [replace(p, text=p.text + len(texts)) for p in part.placements]
            texts += part.texts
        merged = [e for part in parts for e in part.merged]
        return Windows(texts, Tokenized.concat([part.tokenized for part in parts]), placements, merged, parts[0].stride)


def split(tokenizer: TextTokenizer, texts: list[str], max_length: int | None, stride: object) -> Windows:
    """Every text as windows of at most ``max_length`` tokens (the model maximum by default) sharing ``stride`` tokens."""
    limit = tokenizer.check_limit(max_length)
    content = limit - tokenizer.special_tokens
    if content < 1:
        raise InputError(
            "{p:max_length} {value} leaves no room for text besides the {specials} special tokens",
            parameter="max_length",
            value=limit,
            specials=tokenizer.special_tokens,
        )
    stride = check_stride(stride, content)
    full, windowed = tokenizer.overflowing(texts, limit, stride)
    return build(texts, full, windowed, limit, stride)


def build(texts: list[str], full: list[Encoding], windowed: list[Encoding], limit: int, stride: int) -> Windows:
    """Windows from each text's untruncated encoding with special tokens (``full``) and its
    stride-truncated one (``windowed``, later windows in ``.overflowing``)."""
    placements: list[Placement] = []
    parts_in_order: list[Encoding] = []
    for index, (whole, first) in enumerate(zip(full, windowed)):
        parts = [first, *first.overflowing]
        lead, content = _layout(whole)
        start = 0  # where this window's content starts among the text's content tokens
        for k, part in enumerate(parts):
            mask = np.array(part.special_tokens_mask, dtype=bool)
            rows = np.flatnonzero(~mask)
            if len(parts) == 1:  # the whole text: every row, in place
                rows, target = np.arange(len(mask)), np.arange(len(mask))
            else:
                target = lead + start + np.arange(len(rows))
                if k == 0:  # the leading special tokens come from the first window
                    rows, target = np.concatenate([np.arange(rows[0]), rows]), np.concatenate([np.arange(lead), target])
                if k == len(parts) - 1:  # the closing ones from the last
                    tail = np.arange(rows[-1] + 1, len(mask))
                    rows, target = np.concatenate([rows, tail]), np.concatenate([target, lead + content + np.arange(len(tail))])
            if len(target) != len(rows) or not np.array_equal(np.asarray(part.ids)[rows], np.asarray(whole.ids)[target]):
                raise LayerwiseError(f"window {k} of text {index} does not line up with the whole text; please report this")
            placements.append(Placement(index, rows, target, int((~mask).sum()) - (stride if k else 0)))
            parts_in_order.append(part)
            start += int((~mask).sum()) - stride
    tokenized = Tokenized(
        texts=[texts[p.text] for p in placements],
        ids=[p.ids for p in parts_in_order],
        type_ids=[p.type_ids for p in parts_in_order],
        full_lengths=[len(p.ids) for p in parts_in_order],
        limit=limit,
        warn_truncated=False,
    )
    return Windows(texts, tokenized, placements, full, stride)


def _layout(whole: Encoding) -> tuple[int, int]:
    """(leading special tokens, content tokens) of a whole text's encoding."""
    mask = whole.special_tokens_mask
    content = len(mask) - sum(mask)
    lead = next((i for i, m in enumerate(mask) if not m), len(mask))
    return lead, content


def _rows(index: np.ndarray) -> slice | np.ndarray:
    """``index`` as a slice when it is a run of consecutive rows (always, for [CLS] ... [SEP] layouts):
    slicing adds in place, where an index array copies."""
    if len(index) and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _row_counts(windows: Windows) -> list[np.ndarray]:
    """Per text, how many windows hold each merged row."""
    counts = [np.zeros(n, dtype=np.float32) for n in windows.output_lengths]
    for place in windows.placements:
        counts[place.text][_rows(place.target)] += 1
    return counts


def merge_tokens(windows: Windows, per_window: list[np.ndarray]) -> list[np.ndarray]:
    """Per-window [layers, rows, hidden] -> per text [layers, merged rows, hidden], overlaps averaged."""
    layers, hidden = per_window[0].shape[0], per_window[0].shape[-1]
    sums = [np.zeros((layers, n, hidden), dtype=np.float32) for n in windows.output_lengths]
    for place, states in zip(windows.placements, per_window):
        sums[place.text][:, _rows(place.target)] += states[:, _rows(place.source)]
    for total, count in zip(sums, _row_counts(windows)):
        total /= count[None, :, None]
    return sums


def merge_mean(windows: Windows, per_window: list[np.ndarray]) -> np.ndarray:
    """Per-window [layers, rows, hidden] -> per text [layers, hidden]: the mean over the merged rows,
    computed without them (each window's rows weighted by 1 / the windows holding that row)."""
    counts = _row_counts(windows)
    out = np.zeros((len(windows.merged), per_window[0].shape[0], per_window[0].shape[-1]), dtype=np.float32)
    for place, states in zip(windows.placements, per_window):
        weights = 1 / counts[place.text][_rows(place.target)]
        out[place.text] += np.matmul(weights, states[:, _rows(place.source)])
    return out / np.array(windows.output_lengths, dtype=np.float32)[:, None, None]


def merge_cls(windows: Windows, per_window: np.ndarray) -> np.ndarray:
    """Per-window first-token vectors [windows, layers, hidden] -> per text, weighted by fresh tokens."""
    owners = np.array([p.text for p in windows.placements])
    weights = np.array([p.fresh for p in windows.placements], dtype=np.float64)
    out = np.empty((len(windows.merged), *per_window.shape[1:]), dtype=np.float32)
    for text in range(len(windows.merged)):
        rows = np.flatnonzero(owners == text)
        if len(rows) == 1:
            out[text] = per_window[rows[0]]
        else:
            w = weights[rows] / weights[rows].sum()
            out[text] = np.tensordot(w, per_window[rows].astype(np.float64), axes=1)
    return out


def run_pool(windows: Windows, pool: str) -> str:
    """What the batches must return for ``pool``: per-token rows when a split text needs them merged first."""
    return pool if pool in ("none", "cls") or not windows.split else "none"


def merge(windows: Windows, per_window: Any, pool: str) -> Any:
    """Batch results per window (as ``run_pool`` asked) -> per text: [texts, layers, hidden] pooled, or a list for "none"."""
    if not windows.split:  # one window per text, in order
        return per_window
    if pool == "cls":
        return merge_cls(windows, per_window)
    if pool == "mean":
        return merge_mean(windows, per_window)
    tokens = merge_tokens(windows, per_window)
    return tokens if pool == "none" else np.stack([t.max(axis=1) for t in tokens])
