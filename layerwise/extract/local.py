"""The local engine: one process, all cores, bounded memory.

Unit by unit: read its rows, embed them ROW_GROUP at a time, write each as a row group of a
temp part, rename the part when the unit is done. Memory holds one unit's texts and one row
group's vectors, whatever the corpus size.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..io.progress import progress_bar
from ..runtime import Encoder
from .inputs import Plan, read_unit
from .parts import ExtractOptions, embed_batch, part_writer
from .spec import Output

ROW_GROUP = 1024  # rows embedded and written at once


def without_done(table: pa.Table, done: np.ndarray) -> pa.Table:
    """Drop the rows already written by an earlier run (``done``: sorted global rows)."""
    if not len(done):
        return table
    return table.filter(pa.array(~np.isin(np.asarray(table.column("row")), done)))


def extract_local(encoder: Encoder, plan: Plan, options: ExtractOptions, output: Output, schema: pa.Schema) -> int:
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
