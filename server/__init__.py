"""layerwise HTTP server (the serve extra): TEI- and OpenAI-compatible per-layer embeddings."""
