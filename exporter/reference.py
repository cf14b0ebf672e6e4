"""The real-text parity set and PyTorch's hidden states for it, computed once per export.

Batches: every parity text padded together (short to longer than the model maximum),
three texts alone, corpus sentences in natural-length batches of 32, and two batches of
one-to-four-word prefixes of them (query-like text). The first
CALIBRATION_SENTENCES corpus sentences calibrate int8; parity uses the ones after them,
so int8 is never checked on its calibration text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.manifest import INPUT_ROLES, GraphInput
from ..runtime.session import SessionConfig, ort
from .texts import PARITY_TEXTS, corpus_sentences

CALIBRATION_SENTENCES = 192
EVALUATION_SENTENCES = 256
BATCH = 32


@dataclass(frozen=True)
class ParitySet:
    feeds: list[dict[str, np.ndarray]]
    reference: list[list[np.ndarray]]  # per batch, per hidden state: float32 [batch, sequence, hidden]

    @property
    def masks(self) -> list[np.ndarray]:
        return [f[INPUT_ROLES["mask"]] for f in self.feeds]

    def describe(self) -> dict[str, Any]:
        texts = sum(len(f[INPUT_ROLES["ids"]]) for f in self.feeds)
        real = int(sum(m.sum() for m in self.masks))
        longest = max(int(m.sum(axis=1).max()) for m in self.masks)
        return {"batches": len(self.feeds), "texts": texts, "real_tokens": real, "longest_text_tokens": longest}


def tokenize(tokenizer: Any, texts: list[str], max_length: int, inputs: Sequence[GraphInput]) -> dict[str, np.ndarray]:
    """transformers' own tokenization (right padding, truncation at the model maximum), as the graph's
    ``inputs``; token types the tokenizer does not make are zeros."""
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    ids = np.asarray(encoded[INPUT_ROLES["ids"]], dtype=np.int64)
    by_role = {
        role: np.asarray(encoded[name], dtype=np.int64) if name in encoded else np.zeros_like(ids) for role, name in INPUT_ROLES.items()
    }
    return {i.name: by_role[i.role] for i in inputs}


def text_batches(count: int = EVALUATION_SENTENCES) -> list[list[str]]:
    """The parity texts as batches (see module docstring)."""
    corpus = corpus_sentences(count, skip=CALIBRATION_SENTENCES)
    singles = [[PARITY_TEXTS[2]], [PARITY_TEXTS[8]], [PARITY_TEXTS[-1]]]
    sentences = [corpus[i : i + BATCH] for i in range(0, len(corpus), BATCH)]
    return [list(PARITY_TEXTS), *singles, *sentences, short_texts(corpus[:BATCH]), short_texts(corpus[BATCH : 2 * BATCH])]


def hidden_states(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """transformers' output_hidden_states=True for one batch, as float32 numpy arrays."""
    import torch

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, output_hidden_states=True)
    return [h.float().numpy() for h in out.hidden_states]


def build_parity_set(
    model: Any, tokenizer: Any, max_length: int, inputs: Sequence[GraphInput], corpus_count: int = EVALUATION_SENTENCES
) -> ParitySet:
    feeds = [tokenize(tokenizer, texts, max_length, inputs) for texts in text_batches(corpus_count)]
    return ParitySet(feeds=feeds, reference=[hidden_states(model, f) for f in feeds])


def short_texts(sentences: list[str]) -> list[str]:
    """Queries-like texts: the first one to four words of each sentence."""
    return [" ".join(s.split()[: 1 + i % 4]) for i, s in enumerate(sentences)]


def calibration_feeds(tokenizer: Any, max_length: int, inputs: Sequence[GraphInput]) -> list[dict[str, np.ndarray]]:
    """Natural-length batches of the corpus sentences before the parity ones, plus a batch of
    their short prefixes (int8 scales must also serve one-to-four-word queries)."""
    corpus = corpus_sentences(CALIBRATION_SENTENCES)
    batches = [corpus[i : i + BATCH] for i in range(0, len(corpus), BATCH)] + [short_texts(corpus[:BATCH])]
    return [tokenize(tokenizer, texts, max_length, inputs) for texts in batches]


def session_for(model: Path | bytes, threads: int, session_config: Mapping[str, str] | None = None) -> ort.InferenceSession:
    """A CPU session for a graph file or serialized model, with the variant's session config entries."""
    entries = tuple((session_config or {}).items())
    options = SessionConfig(provider="cpu", threads=threads, entries=entries).session_options()
    return ort.InferenceSession(str(model) if isinstance(model, Path) else model, options, providers=["CPUExecutionProvider"])


def run_onnx(
    path: Path, feeds: Sequence[dict[str, np.ndarray]], threads: int, session_config: Mapping[str, str] | None = None
) -> list[list[np.ndarray]]:
    """Every hidden state of an ONNX graph on the CPU provider, batch by batch."""
    session = session_for(path, threads, session_config)
    return [session.run(None, f) for f in feeds]
