"""Files layerwise reads and writes, shared by the CLI, the server, the exporter and extract: atomic writes, JSONL rows, the ``.npz`` layout."""
