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
