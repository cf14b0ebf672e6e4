"""layerwise: every encoder layer's embeddings, fast, anywhere ONNX Runtime runs.

``load`` and ``Encoder`` need only numpy, onnxruntime and tokenizers. ``export`` needs
the exporter extra (torch, transformers, onnx) and imports it only when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .exporter.errors import ExportError, FusionError, ParityError
from .runtime import EmbedOptions, Encoder, TruncationWarning, load
from .runtime.errors import BundleError, InputError, LayerwiseError, NonFiniteOutputError, ProviderError
from .runtime.manifest import VARIANTS as _VARIANTS

__all__ = [
    "BundleError",
    "EmbedOptions",
    "Encoder",
    "ExportError",
    "FusionError",
    "InputError",
    "LayerwiseError",
    "NonFiniteOutputError",
    "ParityError",
    "ProviderError",
    "TruncationWarning",
    "__version__",
    "export",
    "load",
]


def export(
    source: str,
    out_dir: str | Path,
    variants: Sequence[str] = _VARIANTS,
    force: bool = False,
    allow_pickle: bool = False,
    thresholds: Sequence[str] = (),
    threads: int | None = None,
    external_data_threshold: int | None = None,
    edge: bool = False,
) -> Path:
    """Export an encoder checkpoint to a verified bundle; see ``layerwise.exporter.export`` for the arguments."""
    try:
        from .exporter import export as _export
    except ImportError as e:
        raise ImportError(
            f"layerwise.export needs the exporter extra ({e.name or e} is missing): pip install 'layerwise[export]'"
        ) from e
    return _export(
        source,
        out_dir,
        variants=variants,
        force=force,
        allow_pickle=allow_pickle,
        thresholds=thresholds,
        threads=threads,
        external_data_threshold=external_data_threshold,
        edge=edge,
    )
