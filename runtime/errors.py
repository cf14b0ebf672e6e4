"""Exceptions the runtime raises, and ``LayerwiseError``, the base of every error layerwise raises
on purpose; none of them knows anything about HTTP or CLIs. The exporter's errors are in
exporter/errors.py, ``OutputError`` (an unwritable output file) in io/atomic.py.
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
