"""layerwise runtime: load a bundle and serve per-layer embeddings with numpy, onnxruntime and tokenizers only."""

from .encoder import EmbedStats, Encoder, EncoderInfo, TruncationWarning
from .errors import BundleError, InputError, LayerwiseError, NonFiniteOutputError, ProviderError
from .loader import load
from .tokenize import Tokenized
from .verify import VerifyReport
from .windows import TokenAlignment, Windows

__all__ = [
    "BundleError",
    "EmbedStats",
    "Encoder",
    "EncoderInfo",
    "InputError",
    "LayerwiseError",
    "NonFiniteOutputError",
    "ProviderError",
    "TokenAlignment",
    "Tokenized",
    "TruncationWarning",
    "VerifyReport",
    "Windows",
    "load",
]
