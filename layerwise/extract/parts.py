"""Extract output: the Parquet schema, one batch of rows embedded into it, and atomic parts.

Columns: ``row`` (global input row), the id column when given, ``tokens`` (tokens embedded:
the whole text's with ``--overflow chunk``), ``truncated`` (always false with chunk), then one
``layer_K`` column per layer as ``fixed_size_list<float32>[hidden]`` (or one ``embedding``
column when layers are combined). The schema metadata key
``layerwise`` holds the bundle's sha256, variant, pooling and layers as JSON, so any Parquet
reader knows what it holds. Parts are written through io/atomic.py (a hidden temp file beside, then renamed):
a reader (or a rerun) never sees half a part. Not handled here: which rows to run (inputs.py, spec.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.atomic import PARTIAL_MARK, atomic_write, remove_stale_partials
from ..runtime import Encoder
from ..runtime.errors import InputError
from ..runtime.options import EmbedOptions
from ..runtime.windows import split

METADATA_KEY = b"layerwise"
PART_GLOB = "part-*.parquet"
RESERVED = ("row", "text", "tokens", "truncated", "embedding")


@dataclass(frozen=True)
class ExtractOptions:
    """What to compute for every row (the same for every part of one output): the embedding options,
    their layers resolved against the model, and the metadata every part carries (spec.py)."""

    embed: EmbedOptions  # overflow "truncate" or "chunk" (a corpus job does not stop at one long text)
    layers: list[int]  # ``embed.layers`` resolved, 0..num_layers
    metadata: dict[str, Any] = field(default_factory=dict)  # bundle sha256, variant, ... (see spec.py)

    def vector_columns(self) -> list[str]:
        return ["embedding"] if self.embed.combine else [f"layer_{k}" for k in self.layers]


def check_id_column(id_column: str | None) -> None:
    if id_column is not None and (id_column in RESERVED or id_column.startswith("layer_")):
        raise InputError(
            f"--id-column {id_column!r} clashes with an output column ({', '.join(RESERVED)}, layer_K); rename it in the input"
        )


def output_schema(options: ExtractOptions, hidden: int, id_column: str | None, id_type: str | None) -> pa.Schema:
    """The schema every part of one output shares."""
    fields = [pa.field("row", pa.int64(), nullable=False)]
    if id_column:
        fields.append(pa.field(id_column, pa.string() if id_type == "string" else pa.int64(), nullable=False))
    fields += [pa.field("tokens", pa.int32(), nullable=False), pa.field("truncated", pa.bool_(), nullable=False)]
    width = hidden * (len(options.layers) if options.embed.combine == "concat" else 1)
    fields += [pa.field(name, pa.list_(pa.float32(), width), nullable=False) for name in options.vector_columns()]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(options.metadata, sort_keys=True).encode()})


def _vectors(values: np.ndarray, width: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, width)


def embed_batch(encoder: Encoder, batch: pa.Table, options: ExtractOptions, text_column: str = "text") -> pa.Table:
    """Rows with a text column -> the same rows, text dropped, ``tokens``, ``truncated`` and vectors added."""
    texts = batch.column(text_column).to_pylist()
    embed, run = options.embed, options.embed.for_tokenized()
    if embed.overflow == "chunk":  # tokenized once: the windows also give each whole text's token count
        windows = split(encoder.tokenizer, texts, embed.max_length, embed.stride)
        vectors = encoder.embed(windows, options=run)
        tokens, truncated = np.asarray(windows.output_lengths), np.zeros(len(texts), dtype=bool)
    else:
        encoded = encoder.tokenize(texts, embed.max_length, overflow="truncate")  # cut silently: the ``truncated`` column records it
        vectors = encoder.embed(encoded, options=run)
        tokens, truncated = encoded.lengths, np.asarray(encoded.full_lengths) > encoded.limit
    table = batch.drop_columns([text_column])
    table = table.append_column("tokens", pa.array(tokens, pa.int32()))
    table = table.append_column("truncated", pa.array(truncated, pa.bool_()))
    if embed.combine:
        return table.append_column("embedding", _vectors(vectors, vectors.shape[-1]))
    for j, name in enumerate(options.vector_columns()):
        table = table.append_column(name, _vectors(vectors[:, j], vectors.shape[-1]))
    return table


@contextmanager
def part_writer(out_dir: Path, schema: pa.Schema, first_row: int) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer whose file becomes ``part-….parquet`` only when the block ends without error
    (io/atomic.py: a locked temp file beside, fsync, rename)."""
    with atomic_write(out_dir / f"part-{first_row:012d}-{uuid.uuid4().hex[:8]}.parquet") as f:
        writer = pq.ParquetWriter(f, schema, compression="zstd")
        try:
            yield writer
        finally:
            writer.close()


def write_part(out_dir: Path, table: pa.Table) -> None:
    """Write ``table`` as one atomic part (the Ray engine's blocks)."""
    with part_writer(out_dir, table.schema, int(table.column("row")[0].as_py()) if table.num_rows else 0) as writer:
        writer.write_table(table)


def done_rows(out_dir: Path) -> np.ndarray:
    """Sorted global rows already written to complete parts (temp files are not parts)."""
    parts = [np.asarray(pq.read_table(p, columns=["row"]).column("row"), dtype=np.int64) for p in sorted(out_dir.glob(PART_GLOB))]
    rows = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    unique = np.unique(rows)
    if len(unique) != len(rows):
        raise InputError(f"{out_dir} holds rows written twice; it was not written by one layerwise extract run: use a new --output")
    return unique


def remove_temp_files(out_dir: Path) -> None:
    """Delete the temp files of parts that a killed run left behind (not those a live writer holds)."""
    for temp in out_dir.glob(f".part-*{PARTIAL_MARK}*"):
        remove_stale_partials(out_dir / temp.name[1:].split(PARTIAL_MARK)[0])
