"""Inputs and read-back for the extract tests: real sentences written as JSONL, Parquet or text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from layerwise.exporter.texts import corpus_sentences


def sentences(count: int) -> list[str]:
    return corpus_sentences(count, skip=1200)


def write_jsonl(path: Path, texts: list[str], first_id: int = 0) -> Path:
    path.write_text("".join(json.dumps({"doc": f"d{first_id + i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def read_output(out: Path):
    """The output read back by plain pyarrow (no layerwise), sorted by row."""
    table = ds.dataset(out, format="parquet").to_table().sort_by("row")
    return table, json.loads(pq.read_schema(next(out.glob("part-*.parquet"))).metadata[b"layerwise"])


def layer(table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    return np.asarray(column.flatten()).reshape(len(column), -1)


def load_like_structural_probes(path: Path, layer_index: int) -> list[np.ndarray]:
    """structural-probes' ``generate_token_embeddings_from_hdf5`` (data.py), its read path verbatim:
    open ONE file, take every key as a row number, read ``hf[str(index)][layer_index]``."""
    import h5py

    hf = h5py.File(path, "r")
    indices = filter(lambda x: x != "sentence_to_index", list(hf.keys()))
    single_layer_features_list = []
    for index in sorted([int(x) for x in indices]):
        feature_stack = hf[str(index)]
        single_layer_features = feature_stack[layer_index]
        single_layer_features_list.append(single_layer_features)
    hf.close()
    return single_layer_features_list
