"""The sessions of one bundle variant and how a batch runs through them.

Sessions: the full graph, graphs cut after layer k (built on first use: layer k of L then
costs about k/L), and the pooling graphs. Each graph is created at two thread settings:
all threads on one run (lowest latency for a single batch) and one thread per run, so that
several batches run side by side. Measured on 2 cores with natural-length sentences: side
by side gave about 1.7x the throughput of intra-op threads, which gain little on small
matrices; a single long batch is still faster with intra-op threads. On the CPU a batch also
holds at most ``cpu_batch_tokens(family)`` padded tokens: big batches cost more than they save there.

One code path for CPU and CUDA: outputs stay where ONNX Runtime put them (I/O binding), the
pooling graph reduces them there, and only what is returned is copied to numpy.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .bundle import Bundle, LoadedGraph
from .errors import BundleError
from .manifest import POOLING_INPUTS, POOLING_OUTPUT, Manifest, output_name
from .onnx_graph import cut_model
from .session import SessionConfig, create_session, ort
from .tokenize import Batch

# Padded tokens per batch on the CPU, by CPU family (runtime/cpu.py), measured on 2 cores with int8
# MiniLM, all layers mean-pooled (texts/s; README "Benchmarks" and benchmarks/batching.py):
# - AVX-512 VNNI, cap 256 / 512 / 1024 / 2048 / none: sentences 440 / 503 / 539 / 465 / 347;
#   512-token texts 15.9 / 17.5 / 16.7 / 16.3 / 12.7; sentences with a few long texts 325 / 333 / 306 / 314 / 84.
# - AVX2: sentences 240 / 227 / 223 / - / 175; 512-token texts 9.3 / 9.6 / 8.1 / - / 6.3; mixed 146 / 140 / 132 / - / 71
#   (256 and 512 within each other's spread).
# - AMX, 256 / 384 / 512 over 15 alternated repeats: sentences 830 / 783 / 750; 512-token texts 27.3 / 27.2 / 27.2;
#   mixed 446 / 430 / 430 (fused: equal within 2% on all three).
BATCH_TOKENS_CPU = 512  # families without an entry below
BATCH_TOKENS_BY_FAMILY = {"amx": 256}


def cpu_batch_tokens(family: str) -> int:
    """The padded-token cap for CPU batches on a CPU of ``family`` (a key of runtime/cpu.py's FAMILIES)."""
    return BATCH_TOKENS_BY_FAMILY.get(family, BATCH_TOKENS_CPU)


class Engine:
    """Runs batches of one variant; thread-safe."""

    def __init__(self, bundle: Bundle, variant: str, config: SessionConfig, cpu_family: str) -> None:
        self._bundle = bundle
        self._variant = bundle.manifest.variants[variant]
        config = dataclasses.replace(config, entries=tuple(self._variant.build.session_config.items()))
        self.config = config
        self._single = dataclasses.replace(config, threads=1)
        self._run_options = config.run_options()
        self._lock = threading.Lock()
        num_layers = bundle.manifest.model.num_layers
        full = bundle.variant_graph(self._variant)
        self._sessions = {(num_layers, config.threads): self._create(full, config, f"variant {variant!r}")}
        self._check_contract(self._sessions[(num_layers, config.threads)])
        self._pools = {
            kind: self._create(bundle.pooling_graph(kind), self._single, f"pooling graph {kind!r}") for kind in bundle.manifest.pooling
        }
        on_cpu = config.provider == "cpu"
        # Padded tokens per batch at most (None on CUDA, where bigger batches pay), and how many
        # batches may run at once on one thread each (1: one batch at a time on intra-op threads).
        self._batching = (cpu_batch_tokens(cpu_family) if on_cpu else None, config.threads if on_cpu else 1)

    @property
    def batch_tokens(self) -> int | None:
        """Padded tokens a batch holds at most (None: no cap)."""
        return self._batching[0]

    @property
    def side_by_side(self) -> int:
        """Batches that may run at once, on one thread each (1: one at a time on intra-op threads)."""
        return self._batching[1]

    @contextmanager
    def tuned(self, batch_tokens: int | None, side_by_side: int) -> Iterator[None]:
        """Within the block, batch with these settings instead of the defaults; the defaults again after.

        The one way to change them, for measuring them (runtime/bench_hooks.py ``batching``). Not
        thread-safe: no ``embed`` may run on another thread meanwhile. ``side_by_side`` is capped by
        the worker threads the Encoder started with (its default).
        """
        if batch_tokens is not None and (not isinstance(batch_tokens, int) or batch_tokens < 1):
            raise ValueError(f"batch_tokens must be a positive int or None, got {batch_tokens!r}")
        if not isinstance(side_by_side, int) or side_by_side < 1:
            raise ValueError(f"side_by_side must be a positive int, got {side_by_side!r}")
        saved = self._batching
        self._batching = (batch_tokens, side_by_side)
        try:
            yield
        finally:
            self._batching = saved

    @property
    def manifest(self) -> Manifest:
        return self._bundle.manifest

    def _create(self, graph: LoadedGraph, config: SessionConfig, name: str) -> ort.InferenceSession:
        return create_session(graph.model_bytes, config, name, graph.folder)

    def _check_contract(self, session: ort.InferenceSession) -> None:
        manifest, model = self._bundle.manifest, self._bundle.manifest.model
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        name = self._variant.graph.path
        if set(inputs) != set(manifest.input_names):
            raise BundleError(f"{name} has inputs {sorted(inputs)}, but the manifest lists {manifest.input_names}; re-export the bundle")
        for arg in inputs.values():
            if arg.type != "tensor(int64)" or len(arg.shape) != 2:
                raise BundleError(f"{name} input {arg.name!r} is {arg.type} of rank {len(arg.shape)}, expected int64 of rank 2")
        if outputs != manifest.output_names:
            raise BundleError(
                f"{name} has outputs {outputs}, but the manifest promises {model.num_layers + 1} hidden states "
                f"{manifest.output_names[0]}..{manifest.output_names[-1]}"
            )
        for arg in session.get_outputs():
            hidden = arg.shape[-1] if arg.shape else None
            if arg.type != "tensor(float)" or len(arg.shape) != 3 or (isinstance(hidden, int) and hidden != model.hidden_size):
                raise BundleError(
                    f"{name} output {arg.name!r} is {arg.type} with shape {arg.shape}, expected float32 "
                    f"[batch, sequence, {model.hidden_size}]"
                )

    def session(self, deepest: int, single_thread: bool = False) -> ort.InferenceSession:
        """The graph through layer ``deepest`` (cut and cached on first use) at the given thread setting."""
        config = self._single if single_thread else self.config
        key = (deepest, config.threads)
        session = self._sessions.get(key)
        if session is not None:
            return session
        with self._lock:
            if key not in self._sessions:
                graph = self._bundle.variant_graph(self._variant, verify_external=False)  # verified at load
                if deepest < self._bundle.manifest.model.num_layers:
                    keep = [output_name(i) for i in range(deepest + 1)]
                    graph = LoadedGraph(graph.name, cut_model(graph.model_bytes, keep), graph.folder)
                self._sessions[key] = self._create(graph, config, f"variant {self._variant.name!r} through layer {deepest}")
            return self._sessions[key]

    def hidden_states(self, batch: Batch, layers: list[int], single_thread: bool = False) -> list[ort.OrtValue]:
        """Run one batch; the needed layers' states [rows, seq, hidden], left where ONNX Runtime put them."""
        device, device_id = self.config.provider, self.config.device_id
        session = self.session(max(layers), single_thread)
        binding = session.io_binding()
        for name, array in batch.feeds(self._bundle.manifest.inputs).items():
            binding.bind_cpu_input(name, array)
        for layer in layers:
            binding.bind_output(output_name(layer), device, device_id)
        session.run_with_iobinding(binding, self._run_options)
        return binding.get_outputs()

    def run(self, batch: Batch, layers: list[int], pool: str, single_thread: bool = False) -> dict[int, np.ndarray]:
        """Run one batch; each needed layer pooled [rows, hidden], or as tokens [rows, seq, hidden] for pool="none"."""
        states = self.hidden_states(batch, layers, single_thread)
        if pool == "none":
            return {layer: np.array(state.numpy(), copy=True) for layer, state in zip(layers, states)}
        mask = ort.OrtValue.ortvalue_from_numpy(batch.attention_mask, self.config.provider, self.config.device_id)
        pooled = {}
        for layer, state in zip(layers, states):
            pool_binding = self._pools[pool].io_binding()
            pool_binding.bind_ortvalue_input(POOLING_INPUTS[0], state)
            pool_binding.bind_ortvalue_input(POOLING_INPUTS[1], mask)
            pool_binding.bind_output(POOLING_OUTPUT, "cpu")
            self._pools[pool].run_with_iobinding(pool_binding, self._run_options)
            pooled[layer] = np.array(pool_binding.get_outputs()[0].numpy(), copy=True)
        return pooled
