"""The local engine: one process, all cores, bounded memory.

Unit by unit: read its rows, embed them ROW_GROUP at a time, write each as a row group of a
temp part, rename the part when the unit is done. Memory holds one unit's texts and one row
group's vectors, whatever the corpus size.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from ..runtime import Encoder
from .inputs import Plan, read_unit
from .parts import EmbedOptions, embed_batch, part_writer
from .spec import Output

ROW_GROUP = 1024  # rows embedded and written at once


def without_done(table: pa.Table, done: np.ndarray) -> pa.Table:
    """Drop the rows already written by an earlier run (``done``: sorted global rows)."""
    if not len(done):
        return table
    return table.filter(pa.array(~np.isin(np.asarray(table.column("row")), done)))


def progress_bar(total: int) -> Callable[[int], None]:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""
    state = {"done": 0}
    if not sys.stderr.isatty():
        return lambda rows: None

    def advance(rows: int) -> None:
        state["done"] += rows
        filled = int(30 * state["done"] / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {state['done']}/{total} texts")
        sys.stderr.write("\n" if state["done"] >= total else "")
        sys.stderr.flush()

    return advance


def extract_local(encoder: Encoder, plan: Plan, options: EmbedOptions, output: Output, schema: pa.Schema) -> int:
    """Embed every missing row of ``plan`` into ``output``; return the rows written."""
    work = list(output.missing(plan))
    advance = progress_bar(sum(u.stop - u.start - len(done) for u, done in work))
    written = 0
    for unit, done in work:
        rows = without_done(read_unit(unit, plan), done)
        with part_writer(output.path, schema, unit.first_row) as writer:
            for start in range(0, rows.num_rows, ROW_GROUP):
                writer.write_table(embed_batch(encoder, rows.slice(start, ROW_GROUP), options).cast(schema))
                advance(min(ROW_GROUP, rows.num_rows - start))
        written += rows.num_rows
    return written
