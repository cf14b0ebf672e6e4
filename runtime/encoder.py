"""The Encoder: per-layer embeddings from a bundle, on the CPU or CUDA provider.

One code path for both providers: the encoder graph's outputs stay where ONNX Runtime
put them (I/O binding), the bundle's pooling graphs reduce them there, and only the
pooled vectors (or, for pool="none", the requested token states) come back to numpy.
A request whose deepest layer is k < L runs a graph cut after layer k, built once.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bundle import Bundle, LoadedGraph
from .combine import COMBINERS, l2_normalize
from .errors import BundleError, NonFiniteOutputError
from .manifest import INPUT_NAMES, POOLING_INPUTS, POOLING_OUTPUT, output_name
from .onnx_graph import cut_model
from .options import check_batch_size, check_combine, check_pool, check_texts, preview, resolve_layers, unique_sorted
from .session import SessionConfig, create_session, ort
from .tokenize import Batch, TextTokenizer, length_sorted_batches


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
        self._bundle = bundle
        self._config = config
        self._variant = manifest.variants[variant]
        self._tokenizer = tokenizer
        self._run_options = config.run_options()
        full = bundle.variant_graph(self._variant)
        self._sessions = {manifest.num_layers: self._session(full, f"variant {variant!r}")}
        self._check_contract(self._sessions[manifest.num_layers])
        self._pools = {kind: self._session(bundle.pooling_graph(kind), f"pooling graph {kind!r}") for kind in manifest.pooling}
        self._cut_lock = threading.Lock()
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
        self.last_stats = EmbedStats()

    # -- sessions -----------------------------------------------------------------------
    def _session(self, graph: LoadedGraph, name: str) -> "ort.InferenceSession":
        return create_session(graph.model_bytes, self._config, name, graph.folder)

    def _check_contract(self, session: "ort.InferenceSession") -> None:
        manifest = self._bundle.manifest
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        name = self._variant.graph.path
        if set(inputs) != set(INPUT_NAMES):
            raise BundleError(f"{name} has inputs {sorted(inputs)}, expected {list(INPUT_NAMES)}")
        for arg in inputs.values():
            if arg.type != "tensor(int64)" or len(arg.shape) != 2:
                raise BundleError(f"{name} input {arg.name!r} is {arg.type} of rank {len(arg.shape)}, expected int64 of rank 2")
        if outputs != manifest.output_names:
            raise BundleError(
                f"{name} has outputs {outputs}, but the manifest promises {manifest.num_layers + 1} hidden states "
                f"{manifest.output_names[0]}..{manifest.output_names[-1]}"
            )
        for arg in session.get_outputs():
            hidden = arg.shape[-1] if arg.shape else None
            if arg.type != "tensor(float)" or len(arg.shape) != 3 or (isinstance(hidden, int) and hidden != manifest.hidden_size):
                raise BundleError(
                    f"{name} output {arg.name!r} is {arg.type} with shape {arg.shape}, expected float32 "
                    f"[batch, sequence, {manifest.hidden_size}]"
                )

    def _session_through(self, deepest: int) -> "ort.InferenceSession":
        """The full graph, or a graph cut after layer ``deepest`` (built on first use, then cached)."""
        session = self._sessions.get(deepest)
        if session is not None:
            return session
        with self._cut_lock:
            if deepest not in self._sessions:
                graph = self._bundle.variant_graph(self._variant)
                keep = [output_name(i) for i in range(deepest + 1)]
                cut = LoadedGraph(graph.name, cut_model(graph.model_bytes, keep), graph.folder)
                self._sessions[deepest] = self._session(cut, f"variant {self.info.variant!r} cut after layer {deepest}")
            return self._sessions[deepest]

    # -- running ------------------------------------------------------------------------
    def _run(self, batch: Batch, layers: list[int], pool: str) -> dict[int, np.ndarray]:
        """Run one batch; return each needed layer pooled [rows, hidden] or as tokens [rows, seq, hidden]."""
        device = self._config.device_type
        session = self._session_through(max(layers))
        binding = session.io_binding()
        for name, array in batch.feeds().items():
            binding.bind_cpu_input(name, array)
        for layer in layers:
            binding.bind_output(output_name(layer), device, self._config.device_id)
        session.run_with_iobinding(binding, self._run_options)
        states = binding.get_outputs()
        if pool == "none":
            return {layer: np.array(state.numpy(), copy=True) for layer, state in zip(layers, states)}
        mask = ort.OrtValue.ortvalue_from_numpy(batch.attention_mask, device, self._config.device_id)
        pooled = {}
        for layer, state in zip(layers, states):
            pool_binding = self._pools[pool].io_binding()
            pool_binding.bind_ortvalue_input(POOLING_INPUTS[0], state)
            pool_binding.bind_ortvalue_input(POOLING_INPUTS[1], mask)
            pool_binding.bind_output(POOLING_OUTPUT, "cpu")
            self._pools[pool].run_with_iobinding(pool_binding, self._run_options)
            pooled[layer] = np.array(pool_binding.get_outputs()[0].numpy(), copy=True)
        return pooled

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
        texts: str | list[str],
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

        Example:
            >>> enc.embed(["a cat", "a dog"], layers=[-4, -3, -2, -1], combine="concat").shape
            (2, 1536)
        """
        started = time.perf_counter()
        texts = check_texts(texts)
        chosen = resolve_layers(layers, self.info.num_layers)
        pool, combine, batch_size = check_pool(pool), check_combine(combine), check_batch_size(batch_size)
        encoded = self._tokenizer.encode(texts, max_length, truncate)
        needed = unique_sorted(chosen)
        positions = [needed.index(layer) for layer in chosen]
        hidden = self.info.hidden_size

        pooled = np.empty((len(texts), len(needed), hidden), dtype=np.float32)
        tokens: list[np.ndarray] = [np.empty(0)] * len(texts)
        batches = padded = 0
        for batch in length_sorted_batches(encoded, batch_size, self._tokenizer.pad_id):
            results = self._run(batch, needed, pool)
            batches += 1
            padded += batch.input_ids.size
            if pool == "none":
                lengths = batch.attention_mask.sum(axis=1)
                for r, row in enumerate(batch.indices):
                    tokens[row] = np.stack([results[layer][r, : lengths[r]] for layer in needed])
                    self._check_finite(tokens[row], int(row), needed, texts)
            else:
                for j, layer in enumerate(needed):
                    pooled[batch.indices, j] = results[layer]
        if pool != "none":
            for row in range(len(texts)):
                self._check_finite(pooled[row], row, needed, texts)

        self._record_stats(encoded, texts, batches, padded, started)
        combiner = COMBINERS[combine]
        if pool == "none":
            out = [combiner(np.ascontiguousarray(t[positions].transpose(1, 0, 2))) for t in tokens]
            if combine is None:
                out = [t.transpose(1, 0, 2) for t in out]
            return [l2_normalize(t) if normalize else np.ascontiguousarray(t) for t in out]
        result = combiner(pooled[:, positions])
        return l2_normalize(result) if normalize else np.ascontiguousarray(result)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, special tokens included, without truncation (for limits and usage)."""
        return self._tokenizer.count_tokens(check_texts(texts))

    def _record_stats(self, encoded: Any, texts: list[str], batches: int, padded: int, started: float) -> None:
        self.last_stats = EmbedStats(
            texts=len(texts),
            tokens=int(encoded.lengths.sum()),
            padded_tokens=padded,
            truncated=len(encoded.truncated),
            batches=batches,
            seconds=time.perf_counter() - started,
            truncated_indices=tuple(encoded.truncated),
        )
        if encoded.truncated:
            warnings.warn(
                f"{len(encoded.truncated)} of {len(texts)} text(s) were longer than the maximum length and were "
                f"truncated (first: text {encoded.truncated[0]}); pass truncate=False to get an error instead",
                TruncationWarning,
                stacklevel=3,
            )
