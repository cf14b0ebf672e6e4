"""The sessions of one bundle variant and how a batch runs through them.

Sessions: the full graph, graphs cut after layer k (built on first use: layer k of L then
costs about k/L), and the pooling graphs. Each graph is created at two thread settings:
all threads on one run (lowest latency for a single batch) and one thread per run, so that
several batches run side by side (``batching``: runtime/batching.py says when).

One code path for CPU and CUDA: outputs stay where ONNX Runtime put them (I/O binding), the
pooling graph reduces them there, and only what is returned is copied to numpy.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .batching import Batching, default_batching
from .bundle import Bundle, LoadedGraph
from .errors import BundleError
from .manifest import POOLING_INPUTS, POOLING_OUTPUT, Manifest, output_name
from .onnx_graph import cut_model
from .session import SessionConfig, create_session, ort
from .tokenize import Batch


class Engine:
    """Runs batches of one variant; thread-safe. ``Encoder.engine`` gives it to code that measures the
    runtime below ``embed`` (``layerwise bench``, benchmarks/, the profile tools): exact batches
    (``Batch.synthetic``) through ``run`` or ``hidden_states``, the sessions themselves, their options,
    and the batching defaults. Its public methods are pinned by tests/test_public_api.py."""

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
        self.batching = default_batching(config.provider, config.threads, cpu_family)

    @contextmanager
    def tuned(self, batching: Batching) -> Iterator[None]:
        """Within the block, batch with ``batching`` instead of the default; the default again after.

        For measuring the defaults. Not thread-safe: no ``embed`` may run on another thread
        meanwhile. ``side_by_side`` is capped by the worker threads the Encoder started with.
        """
        saved = self.batching
        self.batching = batching
        try:
            yield
        finally:
            self.batching = saved

    @property
    def manifest(self) -> Manifest:
        """The manifest of the bundle this engine runs."""
        return self._bundle.manifest

    def session_options(self) -> ort.SessionOptions:
        """The SessionOptions every session here is made with (threads, the variant's session config
        entries), for code that builds its own session of a graph, e.g. to profile it."""
        return self.config.session_options()

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
