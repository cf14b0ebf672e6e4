"""The Encoder: per-layer embeddings from a bundle, on the CPU or CUDA provider.

It validates a request, tokenizes once, cuts length-sorted batches, runs them through the
Engine (side by side when there are several), and assembles, combines and checks the
result in the caller's order.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .batching import Batching
from .bertscore import bertscore
from .bundle import Bundle
from .combine import combine_layers, l2_normalize
from .cpu import describe as describe_cpu
from .engine import Engine
from .errors import InputError, NonFiniteOutputError, TruncationWarning
from .manifest import POOLING_KINDS
from .maxsim import maxsim
from .options import BATCH_SIZE, EmbedOptions, check_texts, options_from_keywords, preview, unique_sorted
from .session import SessionConfig
from .spans import embed_spans, token_offsets
from .tokenize import Batch, TextTokenizer, Tokenized, length_sorted_batches
from .verify import VerifyReport, verify
from .windows import TokenAlignment, Windows, merge, run_pool, split


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


class RunOutput(NamedTuple):
    """What ``Encoder._run`` gives every entry point."""

    values: Any  # per text, over ``needed``: pooled [texts, needed, hidden], or a list of [needed, tokens, hidden]
    texts: list[str]  # the texts, to name one in an error
    positions: list[int]  # the caller's layers, in the caller's order, as positions into ``needed``
    needed: list[int]  # each asked layer once, sorted


def _chosen(options: EmbedOptions | None, truncate: bool | None, keywords: dict[str, Any]) -> EmbedOptions:
    """``options`` when given (the other keywords then at their defaults), else the EmbedOptions the keywords make."""
    if options is None:
        return options_from_keywords(truncate, stacklevel=4, **keywords)  # the caller of embed or embed_tokens
    if not isinstance(options, EmbedOptions):
        raise InputError("{p:options} must be an EmbedOptions, got {value}", parameter="options", value=type(options).__name__)
    defaults = _DEFAULTS | {"pool": keywords["pool"]}
    if truncate is not None or any(keywords[name] != value for name, value in defaults.items()):
        raise InputError("pass {p:options} or the other keywords, not both", parameter="options")
    return options


_DEFAULTS = {name: field.default for name, field in EmbedOptions.__dataclass_fields__.items()}


class Encoder:
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
        *,
        weights: Sequence[float] | None = None,
        gamma: float = 1.0,
        options: EmbedOptions | None = None,
    ) -> np.ndarray:
        """Pooled embeddings of texts with the chosen layers (0 is the embedding output, -1 the last layer).

        Returns float32 [texts, layers, hidden]; [texts, layers*hidden] with combine="concat";
        [texts, hidden] with "sum", "mean" or "scalar_mix" (``weights`` per layer, softmax-normalised,
        times ``gamma``). ``pool`` is "mean", "max" or "cls"; per-token states come from
        ``embed_tokens``. Texts longer than max_length are cut with a TruncationWarning;
        overflow="truncate" cuts silently, "error" raises InputError, "chunk" embeds the whole
        text as windows sharing ``stride`` tokens (default ``windows.STRIDE_DEFAULT_RULE``),
        merged as runtime/windows.py defines (``truncate=`` is deprecated). The keywords build an
        ``EmbedOptions``; pass one as ``options=`` instead to reuse it. ``texts`` may also be what
        ``tokenize`` returned (already cut) or the windows ``windows.split`` returned.

        Example:
            >>> enc.embed(["a cat", "a dog"], layers=[-4, -3, -2, -1], combine="concat").shape
            (2, 1536)
        """
        keywords = dict(layers=layers, pool=pool, combine=combine, normalize=normalize, batch_size=batch_size)
        keywords.update(max_length=max_length, overflow=overflow, stride=stride, weights=weights, gamma=gamma)
        options = _chosen(options, truncate, keywords)
        if options.pool not in POOLING_KINDS:
            raise InputError("{s:pool=none} gives one array per text: call embed_tokens() for per-token states", parameter="pool")
        run = self._run(texts, options)
        result = combine_layers(run.values[:, run.positions], options.combine, options.weights, options.gamma)
        result = l2_normalize(result) if options.normalize else np.ascontiguousarray(result)
        if not np.isfinite(result).all():
            row = next(i for i, vector in enumerate(result) if not np.isfinite(vector).all())
            self._raise_non_finite(row, run.values[row], run.needed, run.texts, options.combine)
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
        *,
        weights: Sequence[float] | None = None,
        gamma: float = 1.0,
        options: EmbedOptions | None = None,
    ) -> list[np.ndarray]:
        """Per-token hidden states: one float32 array per text, [layers, its tokens, hidden] (no
        padding rows); [tokens, layers*hidden] with combine="concat", [tokens, hidden] when the
        layers are summed, averaged or mixed. Other arguments as for ``embed`` (``options.pool``
        must be "none"); ``token_offsets`` aligns the rows with characters and words.

        Example:
            >>> [t.shape for t in enc.embed_tokens(["hello world", "a"], layers=[0, -1])]
            [(2, 4, 384), (2, 3, 384)]
        """
        keywords = dict(layers=layers, pool="none", combine=combine, normalize=normalize, batch_size=batch_size)
        keywords.update(max_length=max_length, overflow=overflow, stride=stride, weights=weights, gamma=gamma)
        options = _chosen(options, truncate, keywords)
        if options.pool != "none":
            raise InputError("{s:pool=" + options.pool + "} asks for pooled vectors: call embed(), or pass pool 'none'", parameter="pool")
        run = self._run(texts, options)
        out = []
        for row, states in enumerate(run.values):  # [layers, tokens, hidden] -> [tokens, layers, hidden] for the combiner
            chosen = np.ascontiguousarray(states[run.positions].transpose(1, 0, 2))
            combined = combine_layers(chosen, options.combine, options.weights, options.gamma)
            combined = combined.transpose(1, 0, 2) if options.combine is None else combined
            values = l2_normalize(combined) if options.normalize else np.ascontiguousarray(combined)
            if not np.isfinite(values).all():
                self._raise_non_finite(row, states, run.needed, run.texts, options.combine)
            out.append(values)
        return out

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
        options = EmbedOptions(layers, "none", combine, normalize, "chunk", max_length, stride, batch_size)
        return embed_spans(self.embed_tokens, self._tokenizer, check_texts(texts), spans, pool, options)

    # Scores from any layer (runtime/bertscore.py, runtime/maxsim.py): the functions, as methods.
    bertscore = bertscore
    maxsim = maxsim

    def token_offsets(
        self, texts: str | list[str], max_length: int | None = None, overflow: str | None = None, stride: int | None = None
    ) -> list[TokenAlignment]:
        """Each text's token rows as ``embed_tokens`` returns them for the same arguments: character
        offsets [tokens, 2] and word indices [tokens] (-1 for special tokens), to align word pieces with words."""
        options = EmbedOptions(pool="none", overflow=overflow, max_length=max_length, stride=stride)
        return token_offsets(self._tokenizer, check_texts(texts), options)

    def _run(self, texts: Any, options: EmbedOptions) -> RunOutput:
        """The path all entry points share: tokenize (or split into windows, unless given tokens), batch, run,
        collect per text (merging windows)."""
        started = time.perf_counter()
        chosen = options.layer_indices(self.info.num_layers)
        pool, windows = options.pool, None
        if options.overflow == "chunk" and isinstance(texts, Tokenized):
            raise InputError("{s:overflow=chunk} splits texts itself: pass the texts, not what tokenize() returned", parameter="overflow")
        if options.overflow == "chunk" and not isinstance(texts, Windows):
            texts = split(self._tokenizer, check_texts(texts), options.max_length, options.stride)
        if isinstance(texts, Windows):
            windows, texts = texts, texts.tokenized
            pool = run_pool(windows, options.pool)
        if isinstance(texts, Tokenized):
            if windows is None and (options.max_length is not None or options.overflow is not None):
                raise InputError(
                    "{p:max_length} and {p:overflow} apply when tokenizing: pass them to tokenize(), not with its result",
                    parameter="overflow",
                )
            tokenized = texts
        else:
            tokenized = self._tokenizer.encode(check_texts(texts), options.max_length, options.truncate)
        needed = unique_sorted(chosen)
        batching = self._engine.batching
        spread = batching.spread(len(tokenized.texts))
        batches = list(length_sorted_batches(tokenized, options.batch_size, self._tokenizer.pad_id, batching.max_tokens, spread))
        results = self._run_all(batches, needed, pool)
        collect = self._collect_tokens if pool == "none" else self._collect_pooled
        per_text = collect(results, len(tokenized.texts), needed)
        if windows is not None:
            per_text = merge(windows, per_text, options.pool)
        self._record_stats(tokenized, batches, started, windows)
        if tokenized.truncated and tokenized.warn_truncated:
            cut = tokenized.truncated
            warnings.warn(
                f"{len(cut)} of {len(tokenized.texts)} text(s) were longer than the maximum length and were "
                f"truncated (first: text {cut[0]}); pass overflow='chunk' to embed them whole as windows, "
                "overflow='error' to get an error instead, or overflow='truncate' to cut without this warning",
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
        options = options_from_keywords(truncate, max_length=max_length, overflow=overflow)
        if options.overflow == "chunk":
            raise InputError(
                "tokenize() cuts or refuses long texts: for windows, pass {s:overflow=chunk} to embed, or use windows.split",
                parameter="overflow",
            )
        return self._tokenizer.encode(check_texts(texts), options.max_length, options.truncate)

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
    def engine(self) -> Engine:
        """What runs batches below ``embed``, for measuring it (runtime/engine.py says what it offers)."""
        return self._engine

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
