"""The package version, alone in a leaf module: the exporter, the server and extract read it without importing ``layerwise`` itself."""

__version__ = "0.1.0"
