"""Exceptions of the exporter: each names what went wrong and how to fix it.

Imports nothing heavy, so ``layerwise`` exports these classes without the exporter extra.
"""

from ..runtime.errors import LayerwiseError


class ExportError(LayerwiseError):
    """The checkpoint cannot be exported as asked (bad source, unsupported model, unwritable output)."""


class FusionError(ExportError):
    """ONNX Runtime's transformer fusions did not produce the expected fused operators."""


class ParityError(ExportError):
    """A variant's hidden states are further from PyTorch's than its threshold allows."""
