"""Ray integration: ``Embedder`` for your own Ray Data pipelines, ``layerwise extract --engine ray``
(data.py) and the HTTP server as Ray Serve replicas (serve.py). Needs ``pip install 'layerwise[ray]'``."""

from __future__ import annotations

try:
    import ray  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(f"layerwise.ray needs the ray extra ({e.name} is missing): pip install 'layerwise[ray]'") from e

from .embedder import Embedder

__all__ = ["Embedder"]
