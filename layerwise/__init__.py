"""layerwise: every encoder layer's embeddings, fast, anywhere ONNX Runtime runs.

``load`` and ``Encoder`` need only numpy, onnxruntime and tokenizers. ``export`` needs
the exporter extra (torch, transformers, onnx) and imports it only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runtime import Encoder, load

__version__ = "0.1.0"
__all__ = ["Encoder", "__version__", "export", "load"]


def export(source: str, out_dir: str | Path, **options: Any) -> Path:
    """Export a BERT/ALBERT checkpoint to a verified bundle; see ``layerwise.exporter.export``."""
    try:
        from .exporter import export as _export
    except ImportError as e:
        raise ImportError(
            f"layerwise.export needs the exporter extra ({e.name or e} is missing): pip install 'layerwise[export]'"
        ) from e
    return _export(source, out_dir, **options)
