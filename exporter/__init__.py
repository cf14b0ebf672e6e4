"""layerwise exporter: Hugging Face encoder checkpoint (families.py) -> verified ONNX bundle (torch side)."""

from .errors import ExportError, FusionError, ParityError
from .export import export

__all__ = ["ExportError", "FusionError", "ParityError", "export"]
