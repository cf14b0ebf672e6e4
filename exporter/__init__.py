"""layerwise exporter: Hugging Face encoder checkpoint (families.py) -> verified ONNX bundle (torch side).

Importing the package is light (the errors); ``export`` (pipeline.py) loads the torch stack on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ExportError, FusionError, ParityError

if TYPE_CHECKING:
    from .pipeline import export

__all__ = ["ExportError", "FusionError", "ParityError", "export"]


def __getattr__(name: str) -> Any:
    if name == "export":
        from .pipeline import export

        return export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
