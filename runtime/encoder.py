"""The Encoder: per-layer embeddings from a bundle, on the CPU or CUDA provider.

It validates a request, tokenizes once, cuts length-sorted batches, runs them through the
Engine (side by side when there are several), and assembles, combines and checks the
result in the caller's order.
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .bundle import Bundle
from .combine import COMBINERS, l2_normalize
from .engine import Engine
from .errors import InputError, NonFiniteOutputError
from .options import check_batch_size, check_combine, check_pool, check_texts, preview, resolve_layers, unique_sorted
from .session import SessionConfig
from .tokenize import Batch, Encoded, TextTokenizer, length_sorted_batches


class TruncationWarning(UserWarning):
    """Some texts were longer than max_length and were cut."""


@dataclass(frozen=True)
class EncoderInfo:
    """What was loaded and where it runs."""

    bundle: str
    model_type: str
    variant: str
    provider: str
    num_layers: int
    hidden_size: int
    max_length: int
    threads: int
    default_pooling: dict[str, Any]


@dataclass(frozen=True)
class EmbedStats:
    """Figures of the last ``embed`` call."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    batches: int = 0
    seconds: float = 0.0
    truncated_indices: tuple[int, ...] = field(default_factory=tuple)


class Encoder:
    """Serves per-layer embeddings; build it with ``layerwise.load``. Safe to share between threads."""

    def __init__(self, bundle: Bundle, variant: str, config: SessionConfig, tokenizer: TextTokenizer) -> None:
        manifest = bundle.manifest
        self._engine = Engine(bundle, variant, config)
        self._tokenizer = tokenizer
        self._workers = ThreadPoolExecutor(max_workers=self._engine.side_by_side, thread_name_prefix="layerwise")
        self.info = EncoderInfo(
            bundle=str(bundle.path),
            model_type=manifest.model_type,
            variant=variant,
            provider=config.provider,
            num_layers=manifest.num_layers,
            hidden_size=manifest.hidden_size,
            max_length=manifest.max_length,
            threads=config.threads,
            default_pooling=manifest.default_pooling,
        )
        self._stats = threading.local()

    def _run_all(self, batches: list[Batch], layers: list[int], pool: str) -> Iterator[tuple[Batch, dict[int, np.ndarray]]]:
        """Results batch by batch: side by side on one thread each when there are enough batches."""
        if len(batches) > 1 and self._engine.side_by_side > 1:
            yield from zip(batches, self._workers.map(lambda b: self._engine.run(b, layers, pool, single_thread=True), batches))
        else:
            yield from ((b, self._engine.run(b, layers, pool)) for b in batches)

    def _check_finite(self, values: np.ndarray, index: int, layers: list[int], texts: list[str]) -> None:
        """Raise, naming the text and layer, if a text's output [layers, ...] holds NaN or Inf."""
        if np.isfinite(values).all():
            return
        layer = layers[int(np.argmin(np.isfinite(values).reshape(len(layers), -1).all(axis=1)))]
        raise NonFiniteOutputError(
            f"variant {self.info.variant!r} produced NaN or Inf at layer {layer} for text {index} "
            f"{preview(texts[index])}; nothing was returned. Use the 'fused' or 'fp32' variant for such "
            "inputs (fp16 overflows on some long or extreme inputs)"
        )

    def embed(
        self,
        texts: str | list[str] | Encoded,
        layers: Any = "all",
        pool: str = "mean",
        combine: str | None = None,
        normalize: bool = False,
        batch_size: int = 32,
        max_length: int | None = None,
        truncate: bool = True,
    ) -> np.ndarray | list[np.ndarray]:
        """Embed texts with the chosen layers (0 is the embedding output, -1 the last layer).

        Returns float32 [texts, layers, hidden] when pooled; [texts, layers*hidden] with
        combine="concat"; [texts, hidden] with "sum"/"mean". pool="none" returns a list with
        one [layers, tokens, hidden] array per text (combined the same way, no padding rows).
        ``texts`` may also be what ``tokenize`` returned (already cut: leave max_length and
        truncate at their defaults).

        Example:
            >>> enc.embed(["a cat", "a dog"], layers=[-4, -3, -2, -1], combine="concat").shape
            (2, 1536)
        """
        started = time.perf_counter()
        chosen = resolve_layers(layers, self.info.num_layers)
        pool, combine, batch_size = check_pool(pool), check_combine(combine), check_batch_size(batch_size)
        if isinstance(texts, Encoded):
            if max_length is not None or not truncate:
                raise InputError("max_length and truncate apply when tokenizing: pass them to tokenize(), not with its result")
            encoded = texts
        else:
            encoded = self.tokenize(texts, max_length, truncate)
        texts = encoded.texts
        needed = unique_sorted(chosen)
        batches = list(length_sorted_batches(encoded, batch_size, self._tokenizer.pad_id, self._engine.batch_tokens))
        results = self._run_all(batches, needed, pool)
        collect = self._collect_tokens if pool == "none" else self._collect_pooled
        per_text = collect(results, len(texts), needed)
        for row, values in enumerate(per_text):
            self._check_finite(values, row, needed, texts)
        self._record_stats(encoded, batches, started)

        positions = [needed.index(layer) for layer in chosen]  # the caller's order, repeats included
        combiner = COMBINERS[combine]
        if pool == "none":  # per text [layers, tokens, hidden] -> [tokens, layers, hidden] for the combiner
            out = [combiner(np.ascontiguousarray(t[positions].transpose(1, 0, 2))) for t in per_text]
            if combine is None:
                out = [t.transpose(1, 0, 2) for t in out]
            return [l2_normalize(t) if normalize else np.ascontiguousarray(t) for t in out]
        result = combiner(per_text[:, positions])
        return l2_normalize(result) if normalize else np.ascontiguousarray(result)

    def _collect_pooled(self, results: Iterator[tuple[Batch, dict[int, np.ndarray]]], count: int, layers: list[int]) -> np.ndarray:
        """Pooled batch results -> [texts, layers, hidden] in the caller's order."""
        pooled = np.empty((count, len(layers), self.info.hidden_size), dtype=np.float32)
        for batch, values in results:
            for j, layer in enumerate(layers):
                pooled[batch.indices, j] = values[layer]
        return pooled

    def _collect_tokens(self, results: Iterator[tuple[Batch, dict[int, np.ndarray]]], count: int, layers: list[int]) -> list[np.ndarray]:
        """Token batch results -> per text [layers, its tokens, hidden], padding rows dropped."""
        tokens: list[np.ndarray] = [np.empty(0)] * count
        for batch, values in results:
            lengths = batch.attention_mask.sum(axis=1)
            for r, row in enumerate(batch.indices):
                tokens[row] = np.stack([values[layer][r, : lengths[r]] for layer in layers])
        return tokens

    def tokenize(self, texts: str | list[str], max_length: int | None = None, truncate: bool = True) -> Encoded:
        """Tokenize once for ``embed``, with each text's full length (``full_lengths``) for checks and usage."""
        return self._tokenizer.encode(check_texts(texts), max_length, truncate)

    @property
    def tokenizer(self) -> TextTokenizer:
        """The bundle's tokenizer, for inspecting tokens and decoding ids (``embed`` tokenizes by itself)."""
        return self._tokenizer

    @property
    def last_stats(self) -> EmbedStats:
        """Figures of this thread's last ``embed`` call (each thread sees its own)."""
        return getattr(self._stats, "last", EmbedStats())

    def close(self) -> None:
        """Release the worker threads now (sessions go with the Encoder object)."""
        self._workers.shutdown(wait=True)

    def __enter__(self) -> "Encoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record_stats(self, encoded: Encoded, batches: list[Batch], started: float) -> None:
        truncated = encoded.truncated
        self._stats.last = EmbedStats(
            texts=len(encoded.texts),
            tokens=int(encoded.lengths.sum()),
            padded_tokens=sum(b.input_ids.size for b in batches),
            truncated=len(truncated),
            batches=len(batches),
            seconds=time.perf_counter() - started,
            truncated_indices=tuple(truncated),
        )
        if truncated:
            warnings.warn(
                f"{len(truncated)} of {len(encoded.texts)} text(s) were longer than the maximum length and were "
                f"truncated (first: text {truncated[0]}); pass truncate=False to get an error instead",
                TruncationWarning,
                stacklevel=3,
            )
