"""What every peer module shares: the built-peer record, the build context, versions, thread settings.

Two jobs, one output shape each (float32, input order):
``last_layer`` -> [texts, hidden] pooled last hidden state; ``all_layers`` -> [texts, layers + 1, hidden],
every hidden state mean-pooled over real tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

JOBS = ("last_layer", "all_layers")
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Peer:
    """A built peer: its embed function plus the facts peers.json reports about it."""

    embed: Embed
    threads_controlled: bool
    notes: str
    versions: dict[str, str]


@dataclass
class Context:
    """What every builder needs; ``shared`` caches artefacts several peers reuse (one ONNX export, say)."""

    model_dir: Path
    scratch: Path
    batch_size: int
    threads: int
    job: str
    bundle: Path | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    def require_bundle(self) -> Path:
        if self.bundle is None:
            raise ValueError("this peer runs the layerwise bundle's fp32 graph: pass --bundle BUNDLE")
        return self.bundle


@dataclass(frozen=True)
class Spec:
    """One row of the peer table: how to build the peer, which jobs it can do, and (``skip_reason``,
    given the CPU family of runtime/cpu.py) why it is not a contender on this CPU, None if it is."""

    build: Callable[[Context], Peer]
    jobs: tuple[str, ...] = ("last_layer",)
    skip_reason: Callable[[str], str | None] = lambda family: None


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages a peer runs on (absent ones are skipped)."""
    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def ort_session_options(threads: int) -> Any:
    """A fresh onnxruntime SessionOptions with `threads` intra-op threads (one per session)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graphs run sequentially; inter-op threads would idle
    return options


def as_output(rows: Any, n_texts: int, job: str) -> np.ndarray:
    """Stack a peer's output into the float32 array of its job's shape (see module docstring)."""
    matrix = np.asarray(rows if isinstance(rows, np.ndarray) else np.stack(list(rows)), dtype=np.float32)
    ndim = 2 if job == "last_layer" else 3
    if matrix.ndim != ndim or matrix.shape[0] != n_texts:
        raise ValueError(f"job {job}: expected {ndim} dimensions with {n_texts} rows, got shape {matrix.shape}")
    return matrix
