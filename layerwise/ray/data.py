"""``layerwise extract --engine ray``: read units -> ``Embedder`` on an actor pool -> atomic Parquet parts.

The driver plans (inputs.py) and skips what earlier runs wrote (spec.py); Ray Data reads the
missing units in tasks, embeds them on ``actors`` actors of ``threads_per_actor`` CPUs each,
and writes every block as one atomic part. A killed worker is retried by Ray; a killed
driver leaves only complete parts, and the rerun computes the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.data import ActorPoolStrategy, Datasink, Datasource, ReadTask
from ray.data.block import BlockMetadata

from ..extract.inputs import Plan, Unit, read_unit
from ..extract.local import without_done
from ..extract.parts import ExtractOptions, done_rows, write_part
from ..extract.spec import Output
from .embedder import Embedder, check_cpus

# Reading a unit and writing a part are light next to embedding; they take no CPU from Ray's
# count, or actors holding every CPU would leave them unscheduled forever (seen with 2 actors
# of 1 CPU on 2 CPUs and 0.25 CPU reads).
IO_CPUS = 0


class UnitSource(Datasource):
    """The rows still missing, one read task per unit of the plan."""

    def __init__(self, plan: Plan, work: list[tuple[Unit, np.ndarray]]) -> None:
        self._plan = plan
        self._work = work

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None, **kwargs: Any
    ) -> list[ReadTask]:
        plan = self._plan

        def task(unit: Unit, done: np.ndarray) -> ReadTask:
            rows = unit.stop - unit.start - len(done)
            metadata = BlockMetadata(num_rows=rows, size_bytes=None, exec_stats=None, input_files=(unit.path,))
            return ReadTask(lambda: [without_done(read_unit(unit, plan), done)], metadata)

        return [task(unit, done) for unit, done in self._work]


class PartSink(Datasink):
    """Each block becomes one part: cast to the output schema, written to a temp file, renamed."""

    def __init__(self, out_dir: Path, schema: pa.Schema) -> None:
        self._out_dir = out_dir
        self._schema = schema

    def write(self, blocks: Iterable[pa.Table], ctx: Any) -> int:
        rows = 0
        for block in blocks:
            if block.num_rows:
                write_part(self._out_dir, block.cast(self._schema))
                rows += block.num_rows
        return rows


def extract_ray(
    bundle: str,
    plan: Plan,
    options: ExtractOptions,
    output: Output,
    schema: pa.Schema,
    provider: str,
    address: str | None,
    actors: int,
    threads_per_actor: int,
) -> int:
    """Embed every missing row of ``plan`` into ``output`` on Ray Data; return the rows written."""
    work = list(output.missing(plan))
    if not work:
        return 0
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False)
    try:
        check_cpus(actors, threads_per_actor, "--actors", "--threads-per-actor")
        # absolute paths: actors and tasks run in the cluster's folders, not the caller's (threads: the CPUs Ray assigns)
        kwargs = {
            "bundle": str(Path(bundle).resolve()),
            "variant": options.metadata["variant"],
            "provider": provider,
            "options": options.embed,
        }
        dataset = ray.data.read_datasource(UnitSource(plan, work), num_cpus=IO_CPUS, override_num_blocks=len(work))  # one block a unit
        dataset = dataset.map_batches(
            Embedder,
            fn_constructor_kwargs=kwargs,
            batch_format="pyarrow",
            batch_size=None,  # one block (a unit, --rows-per-part rows at most) per call and per part
            compute=ActorPoolStrategy(size=actors),
            num_cpus=threads_per_actor,
            num_gpus=1 if provider == "cuda" else 0,
        )
        dataset.write_datasink(PartSink(output.path.resolve(), schema), ray_remote_args={"num_cpus": IO_CPUS})
    finally:
        if started_here:
            ray.shutdown()
    return len(done_rows(output.path)) - len(output.done)
