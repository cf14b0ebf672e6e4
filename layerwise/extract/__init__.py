"""``layerwise extract``: a corpus in (JSONL, Parquet, text), a Parquet dataset of pooled per-layer vectors out.

Modules: inputs.py (find, check, cut into units), parts.py (schema, atomic parts), spec.py
(the output folder, resume), local.py (the local engine); the Ray engine is in
``layerwise.ray``. Importing this package imports nothing heavy: pyarrow loads with the
modules that need it.
"""
