"""The Encoder: per-layer embeddings from a bundle, on the CPU or CUDA provider.

It validates a request, tokenizes once, cuts length-sorted batches, runs them through the
Engine (side by side when there are several), and assembles, combines and checks the
result in the caller's order.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .batching import Batching
from .bundle import Bundle
from .combine import COMBINERS, l2_normalize
from .cpu import describe as describe_cpu
from .engine import Engine
from .errors import InputError, NonFiniteOutputError
from .manifest import POOLING_KINDS
from .options import BATCH_SIZE, check_batch_size, check_combine, check_pool, check_texts, preview, resolve_layers, unique_sorted
from .session import SessionConfig
from .span_methods import RunOutput, SpanMethods
from .tokenize import Batch, TextTokenizer, Tokenized, length_sorted_batches
from .verify import VerifyReport, verify
from .windows import Windows, check_overflow, merge, run_pool, split, warn_truncate_deprecated


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
    variant_reason: str = ""
    cpu: str = ""  # this CPU's matmul kernel family, e.g. "avx512_vnni" or "avx2" (runtime/cpu.py)


@dataclass(frozen=True)
class EmbedStats:
    """Figures of the last ``embed`` or ``embed_tokens`` call."""

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    batches: int = 0
    seconds: float = 0.0
    truncated_indices: tuple[int, ...] = field(default_factory=tuple)
    split: int = 0  # texts cut into several windows (overflow="chunk")
    windows: int = 0  # sequences run: one per text, or its windows when split


class Encoder(SpanMethods):
    """Serves per-layer embeddings; build it with ``layerwise.load``. Safe to share between threads."""

    def __init__(
        self, bundle: Bundle, variant: str, config: SessionConfig, tokenizer: TextTokenizer, variant_reason: str = "requested"
    ) -> None:
        manifest = bundle.manifest
        self._bundle = bundle
        cpu_family = describe_cpu()["cpu_family"]
        self._engine = Engine(bundle, variant, config, cpu_family)
        self._tokenizer = tokenizer
        self._workers = ThreadPoolExecutor(max_workers=self._engine.batching.side_by_side, thread_name_prefix="layerwise")
        self.info = EncoderInfo(
            bundle=str(bundle.path),
            model_type=manifest.model.model_type,
            variant=variant,
            provider=config.provider,
            num_layers=manifest.model.num_layers,
            hidden_size=manifest.model.hidden_size,
            max_length=manifest.model.max_length,
            threads=config.threads,
            default_pooling=manifest.default_pooling,
            variant_reason=variant_reason,
            cpu=cpu_family,
        )
        self._stats = threading.local()

    def _run_all(self, batches: list[Batch], layers: list[int], pool: str) -> Iterator[tuple[Batch, dict[int, np.ndarray]]]:
        """Results batch by batch: side by side on one thread each when there are enough batches."""
        if len(batches) > 1 and self._engine.batching.side_by_side > 1:
            yield from zip(batches, self._workers.map(lambda b: self._engine.run(b, layers, pool, single_thread=True), batches))
        else:
            yield from ((b, self._engine.run(b, layers, pool)) for b in batches)

    def embed(
        self,
        texts: str | list[str] | Tokenized | Windows,
        layers: Any = "all",
        pool: str = "mean",
        combine: str | None = None,
        normalize: bool = False,
        batch_size: int = BATCH_SIZE,
        max_length: int | None = None,
        truncate: bool | None = None,
        overflow: str | None = None,
        stride: int | None = None,
    ) -> np.ndarray:
        """Pooled embeddings of texts with the chosen layers (0 is the embedding output, -1 the last layer).

        Returns float32 [texts, layers, hidden]; [texts, layers*hidden] with combine="concat";
        [texts, hidden] with "sum"/"mean". ``pool`` is "mean", "max" or "cls"; per-token states
        come from ``embed_tokens``. ``texts`` may also be what ``tokenize`` returned (already cut:
        leave max_length and truncate at their defaults) or the windows ``runtime.windows.split``
        returned. Texts longer than max_length are cut with a TruncationWarning; overflow="truncate"
        cuts silently, overflow="error" raises InputError (``truncate=True/False``, deprecated, the same).
        overflow="chunk" embeds the whole text as windows sharing ``stride`` tokens (default
        ``windows.STRIDE_DEFAULT_RULE``), merged as runtime/windows.py defines.

        Example:
            >>> enc.embed(["a cat", "a dog"], layers=[-4, -3, -2, -1], combine="concat").shape
            (2, 1536)
        """
        if check_pool(pool) not in POOLING_KINDS:
            raise InputError(f"pool={pool!r} gives one array per text: call embed_tokens() for per-token states")
        warn_truncate_deprecated(truncate)
        combiner = COMBINERS[check_combine(combine)]
        pooled, names, positions, needed = self._run(texts, layers, pool, batch_size, max_length, truncate, overflow, stride)
        result = combiner(pooled[:, positions])
        result = l2_normalize(result) if normalize else np.ascontiguousarray(result)
        if not np.isfinite(result).all():
            row = next(i for i, vector in enumerate(result) if not np.isfinite(vector).all())
            self._raise_non_finite(row, pooled[row], needed, names, combine)
        return result

    def embed_tokens(
        self,
        texts: str | list[str] | Tokenized | Windows,
        layers: Any = "all",
        combine: str | None = None,
        normalize: bool = False,
        batch_size: int = BATCH_SIZE,
        max_length: int | None = None,
        truncate: bool | None = None,
        overflow: str | None = None,
        stride: int | None = None,
    ) -> list[np.ndarray]:
        """Per-token hidden states: one float32 array per text, [layers, its tokens, hidden] (no
        padding rows); [tokens, layers*hidden] with combine="concat", [tokens, hidden] with
        "sum"/"mean". Other arguments as for ``embed``; ``token_offsets`` aligns the rows with characters and words.

        Example:
            >>> [t.shape for t in enc.embed_tokens(["hello world", "a"], layers=[0, -1])]
            [(2, 4, 384), (2, 3, 384)]
        """
        warn_truncate_deprecated(truncate)
        combiner = COMBINERS[check_combine(combine)]
        per_text, names, positions, needed = self._run(texts, layers, "none", batch_size, max_length, truncate, overflow, stride)
        out = []
        for row, states in enumerate(per_text):  # [layers, tokens, hidden] -> [tokens, layers, hidden] for the combiner
            combined = combiner(np.ascontiguousarray(states[positions].transpose(1, 0, 2)))
            combined = combined.transpose(1, 0, 2) if combine is None else combined
            out.append(self._finish(combined, normalize, row, states, needed, names, combine))
        return out

    def _finish(
        self, values: np.ndarray, normalize: bool, row: int, states: np.ndarray, needed: list[int], names: list[str], combine: str | None
    ) -> np.ndarray:
        """Normalise if asked and refuse NaN/Inf, naming the text."""
        values = l2_normalize(values) if normalize else np.ascontiguousarray(values)
        if not np.isfinite(values).all():
            self._raise_non_finite(row, states, needed, names, combine)
        return values

    def _run(
        self,
        texts: Any,
        layers: Any,
        pool: str,
        batch_size: int,
        max_length: int | None,
        truncate: bool | None,
        overflow: str | None,
        stride: int | None,
    ) -> RunOutput:
        """The path all entry points share: tokenize (or split into windows, unless given tokens), batch, run,
        collect per text (merging windows).

        """
        started = time.perf_counter()
        chosen = resolve_layers(layers, self.info.num_layers)
        batch_size = check_batch_size(batch_size)
        truncate = check_overflow(overflow, truncate, stride)
        windows = None
        if overflow == "chunk" and isinstance(texts, Tokenized):
            raise InputError("overflow='chunk' splits texts itself: pass the texts, not what tokenize() returned")
        if overflow == "chunk" and not isinstance(texts, Windows):
            texts = split(self._tokenizer, check_texts(texts), max_length, stride)
            max_length = None
        if isinstance(texts, Windows):
            windows, texts, pool_asked = texts, texts.tokenized, pool
            pool = run_pool(windows, pool)
        if isinstance(texts, Tokenized):
            if max_length is not None or truncate is not None:
                raise InputError("max_length and truncate apply when tokenizing: pass them to tokenize(), not with its result")
            tokenized = texts
        else:
            tokenized = self._tokenizer.encode(check_texts(texts), max_length, truncate)
        needed = unique_sorted(chosen)
        batching = self._engine.batching
        spread = batching.spread(len(tokenized.texts))
        batches = list(length_sorted_batches(tokenized, batch_size, self._tokenizer.pad_id, batching.max_tokens, spread))
        results = self._run_all(batches, needed, pool)
        collect = self._collect_tokens if pool == "none" else self._collect_pooled
        per_text = collect(results, len(tokenized.texts), needed)
        if windows is not None:
            per_text = merge(windows, per_text, pool_asked)
        self._record_stats(tokenized, batches, started, windows)
        if tokenized.truncated and tokenized.warn_truncated:
            cut = tokenized.truncated
            warnings.warn(
                f"{len(cut)} of {len(tokenized.texts)} text(s) were longer than the maximum length and were "
                f"truncated (first: text {cut[0]}); pass overflow='error' to get an error instead, or "
                "overflow='truncate' to cut without this warning",
                TruncationWarning,
                stacklevel=3,  # the caller of embed or embed_tokens
            )
        names = tokenized.texts if windows is None else windows.texts
        return RunOutput(per_text, names, [needed.index(layer) for layer in chosen], needed)

    def _raise_non_finite(self, index: int, states: np.ndarray, layers: list[int], texts: list[str], combine: str | None) -> None:
        """Name the text and the first layer holding NaN or Inf; if every layer is finite, ``combine`` overflowed."""
        finite = np.isfinite(states).reshape(len(layers), -1).all(axis=1)
        if finite.all():
            where, fix = f"when combining layers (combine={combine!r})", "Combine fewer layers, or use combine='concat'"
        else:
            where = f"at layer {layers[int(np.argmin(finite))]}"
            fix = "Use the 'fused' or 'fp32' variant for such inputs (fp16 overflows on some long or extreme inputs)"
        raise NonFiniteOutputError(
            f"variant {self.info.variant!r} produced NaN or Inf {where} for text {index} {preview(texts[index])}; "
            f"nothing was returned. {fix}"
        )

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

    def tokenize(
        self, texts: str | list[str], max_length: int | None = None, truncate: bool | None = None, overflow: str | None = None
    ) -> Tokenized:
        """Tokenize once for ``embed``, with each text's full length (``full_lengths``) for checks and usage.

        ``overflow`` as for ``embed``, but "truncate" or "error" only (windows come from
        ``runtime.windows.split``); ``truncate`` is deprecated. Cut texts are listed in ``truncated``;
        ``embed`` warns about them unless overflow="truncate" was asked.
        """
        warn_truncate_deprecated(truncate)
        if overflow == "chunk":
            raise InputError("tokenize() cuts or refuses long texts: for windows, pass overflow='chunk' to embed, or use windows.split")
        return self._tokenizer.encode(check_texts(texts), max_length, check_overflow(overflow, truncate, None))

    def verify(self, texts: int | None = None) -> VerifyReport:
        """Check this variant on this machine against the bundle's stored PyTorch reference.

        Embeds the reference texts (all, or the first ``texts``) exactly as ``embed`` does and
        compares every layer's mean-pooled vectors with the bars recorded at export.
        """
        verification = self._bundle.manifest.verification
        reference = self._bundle.verification_reference()
        assert verification is not None  # verification_reference() raised otherwise

        def embed(words: list[str]) -> np.ndarray:  # the reference was cut at the same length
            return self.embed(words, layers="all", pool="mean", overflow="truncate")

        return verify(embed, self.info.variant, reference, verification.bars[self.info.variant], texts)

    @property
    def tokenizer(self) -> TextTokenizer:
        """The bundle's tokenizer, for inspecting tokens and decoding ids (``embed`` tokenizes by itself)."""
        return self._tokenizer

    @property
    def batching(self) -> Batching:
        """How ``embed`` cuts a call into batches and runs them here (runtime/batching.py's measured default)."""
        return self._engine.batching

    @contextmanager
    def use_batching(self, batching: Batching) -> Iterator[None]:
        """Within the block, batch with ``batching`` instead (to measure the defaults); not thread-safe:
        no other thread may embed meanwhile. ``side_by_side`` is capped by the worker threads the Encoder started with."""
        with self._engine.tuned(batching):
            yield

    @property
    def last_stats(self) -> EmbedStats:
        """Figures of this thread's last ``embed`` or ``embed_tokens`` call (each thread sees its own)."""
        return getattr(self._stats, "last", EmbedStats())

    def close(self) -> None:
        """Release the worker threads now (sessions go with the Encoder object)."""
        self._workers.shutdown(wait=True)

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record_stats(self, tokenized: Tokenized, batches: list[Batch], started: float, windows: Windows | None) -> None:
        truncated = tokenized.truncated
        self._stats.last = EmbedStats(
            texts=len(tokenized.texts if windows is None else windows.texts),
            tokens=int(tokenized.lengths.sum()),
            padded_tokens=sum(b.input_ids.size for b in batches),
            truncated=len(truncated),
            batches=len(batches),
            seconds=time.perf_counter() - started,
            truncated_indices=tuple(truncated),
            split=0 if windows is None else len(windows.split),
            windows=len(tokenized.texts),
        )
