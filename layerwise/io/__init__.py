"""Files layerwise reads and writes, shared by the CLI, the server, the exporter and extract.

atomic.py: atomic writes; jsonl.py: one JSONL input row checked; npz.py: the ``.npz`` layout.
"""
