"""Exceptions raised by layerwise; none of them knows anything about HTTP or CLIs.

The exporter's errors live here too, so that ``layerwise`` can export every error class
without importing the exporter (and its torch stack).
"""


class LayerwiseError(Exception):
    """Base class of every error layerwise raises on purpose."""


class BundleError(LayerwiseError):
    """The bundle folder is missing, malformed, tampered with or unsafe to load."""


class ProviderError(LayerwiseError):
    """The requested ONNX Runtime execution provider cannot be used."""


class InputError(LayerwiseError, ValueError):
    """A request to the encoder cannot be served as given (too long, bad option)."""


class UntokenizableText(InputError):
    """The tokenizer refuses one text (e.g. a lone surrogate, which is not valid Unicode); ``index`` names it."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"text {index} {reason}")
        self.index, self.reason = index, reason


class NonFiniteOutputError(LayerwiseError, FloatingPointError):
    """The model produced NaN or Inf; the offending text is named, nothing is returned."""


class ExportError(LayerwiseError):
    """The checkpoint cannot be exported as asked (bad source, unsupported model, unwritable output)."""


class FusionError(ExportError):
    """ONNX Runtime's transformer fusions did not produce the expected fused operators."""


class ParityError(ExportError):
    """A variant's hidden states are further from PyTorch's than its threshold allows."""


class OutputError(LayerwiseError, OSError):
    """An output file cannot be written where asked (missing folder, no permission, a folder in the way)."""
