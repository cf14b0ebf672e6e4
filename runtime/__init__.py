"""layerwise runtime: load a bundle and serve per-layer embeddings with numpy, onnxruntime and tokenizers only."""

from .batching import Batching
from .encoder import EmbedStats, Encoder, EncoderInfo
from .engine import Engine
from .errors import BundleError, InputError, LayerwiseError, NonFiniteOutputError, ProviderError, TruncationWarning
from .loader import load
from .options import EmbedOptions
from .tokenize import Batch, Tokenized
from .verify import VerifyReport
from .windows import TokenAlignment, Windows

__all__ = [
    "Batch",
    "Batching",
    "BundleError",
    "EmbedOptions",
    "EmbedStats",
    "Encoder",
    "EncoderInfo",
    "Engine",
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
