"""layerwise exporter: Hugging Face BERT/ALBERT checkpoint -> verified ONNX bundle (torch side)."""

from .errors import ExportError, FusionError, ParityError
from .pipeline import export

__all__ = ["ExportError", "FusionError", "ParityError", "export"]
