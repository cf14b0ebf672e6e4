"""layerwise: every encoder layer's embeddings, fast, anywhere ONNX Runtime runs.

``load`` and ``Encoder`` need only numpy, onnxruntime and tokenizers. ``export`` needs
the exporter extra (torch, transformers, onnx) and imports it only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .exporter.errors import ExportError, FusionError, ParityError
from .runtime import EmbedOptions, Encoder, TruncationWarning, load
from .runtime.errors import BundleError, InputError, LayerwiseError, NonFiniteOutputError, ProviderError

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


if TYPE_CHECKING:
    from .exporter import export


def __getattr__(name: str) -> Any:
    """``export`` imports the exporter extra (torch, transformers, onnx) on first use, not with ``layerwise``."""
    if name != "export":
        raise AttributeError(f"module 'layerwise' has no attribute {name!r}")
    try:
        from .exporter import export
    except ImportError as e:
        raise ImportError(
            f"layerwise.export needs the exporter extra ({e.name or e} is missing): pip install 'layerwise[export]'"
        ) from e
    return export


def __dir__() -> list[str]:
    return sorted([*globals(), "export"])
