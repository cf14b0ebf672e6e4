"""Exceptions of the exporter: each names what went wrong and how to fix it (defined in runtime/errors.py)."""

from ..runtime.errors import ExportError, FusionError, ParityError

__all__ = ["ExportError", "FusionError", "ParityError"]
