"""What BERTScore and MaxSim need of an Encoder, and texts tokenized once into flat arrays.

The scoring modules use only the Encoder's public surface (``info``, ``tokenizer``, ``tokenize``,
``embed_tokens``), typed here as a Protocol so they never import encoder.py (which will import them).
A ``TokenTable`` keeps a corpus's token ids as two flat arrays instead of a list per text, so 100,000
pairs cost a few megabytes before any vector exists; ``tokenized(rows)`` hands a slice of it to
``embed_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import TruncationWarning
from .tokenize import TextTokenizer, Tokenized

TOKENIZE_TEXTS = 4096  # texts per tokenizer call: bounds the Python lists a call builds


class TokenEncoder(Protocol):
    """The part of ``Encoder`` the scoring functions call."""

    info: Any  # EncoderInfo: num_layers, hidden_size, max_length, model_type, variant, bundle

    @property
    def tokenizer(self) -> TextTokenizer: ...

    def tokenize(self, texts: Any, *args: Any, **kwargs: Any) -> Tokenized: ...

    def embed_tokens(self, texts: Any, *args: Any, **kwargs: Any) -> list[np.ndarray]: ...


class ScoreTruncationWarning(TruncationWarning):
    """Some texts of a score request were longer than the model maximum and were cut (as bert-score cuts them)."""


@dataclass(frozen=True)
class TokenTable:
    """Token ids of texts, flat: text t holds ``ids[offsets[t]:offsets[t + 1]]`` (special tokens included, cut to
    ``limit``), and ``full_lengths[t]`` tokens before the cut."""

    texts: list[str]
    ids: np.ndarray  # int64 [all tokens]
    type_ids: np.ndarray  # int8 [all tokens]
    offsets: np.ndarray  # int64 [texts + 1]
    full_lengths: np.ndarray  # int64 [texts]
    limit: int

    @staticmethod
    def build(encoder: TokenEncoder, texts: Sequence[str]) -> TokenTable:
        """Tokenize ``texts`` with the encoder's tokenizer (cut at the model maximum, no warning), TOKENIZE_TEXTS at a time."""
        texts = list(texts)
        ids: list[np.ndarray] = []
        types: list[np.ndarray] = []
        full: list[int] = []
        limit = encoder.info.max_length
        for start in range(0, len(texts), TOKENIZE_TEXTS):
            part = encoder.tokenize(texts[start : start + TOKENIZE_TEXTS], overflow="truncate")
            ids += [np.asarray(i, dtype=np.int64) for i in part.ids]
            types += [np.asarray(t, dtype=np.int8) for t in part.type_ids]
            full += part.full_lengths
            limit = part.limit
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        flat_types = np.concatenate(types) if types else np.zeros(0, dtype=np.int8)
        return TokenTable(texts, flat_ids, flat_types, offsets, np.asarray(full, dtype=np.int64), limit)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, t: int) -> np.ndarray:
        return self.ids[self.offsets[t] : self.offsets[t + 1]]

    def tokenized(self, rows: Sequence[int]) -> Tokenized:
        """The texts ``rows`` as ``embed_tokens`` takes them (already cut: it tokenizes nothing again)."""
        spans = [(int(self.offsets[t]), int(self.offsets[t + 1])) for t in rows]
        return Tokenized(
            texts=[self.texts[t] for t in rows],
            ids=[self.ids[a:b].tolist() for a, b in spans],
            type_ids=[self.type_ids[a:b].tolist() for a, b in spans],
            full_lengths=[int(self.full_lengths[t]) for t in rows],
            limit=self.limit,
            warn_truncated=False,
        )


def unique_rows(texts: Sequence[str], index: dict[str, int]) -> np.ndarray:
    """Each text's row in ``index`` (text -> row), adding the texts not yet there.

    Example: ["a", "b", "a"] into {} -> [0, 1, 0], index {"a": 0, "b": 1}.
    """
    return np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
