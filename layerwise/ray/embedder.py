"""``Embedder``: a callable class for ``Dataset.map_batches`` on an actor pool.

Each actor loads the bundle once and runs ONNX Runtime with as many intra-op threads as
CPUs Ray assigned to it: ONNX Runtime ignores the OMP_NUM_THREADS Ray sets and would
otherwise start one thread per core of the node in every actor (ray-project/ray#28044).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import ray

from ..extract.parts import ExtractOptions, embed_batch
from ..extract.spec import embed_options
from ..runtime import load
from ..runtime.errors import InputError
from ..runtime.options import BATCH_SIZE, EmbedOptions, options_from_keywords


def assigned_cpus() -> int:
    """CPUs Ray gave this worker (at least 1); outside Ray, 0 meaning 'all physical cores'."""
    if not ray.is_initialized():
        return 0
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    return max(1, int(cpus))


def check_cpus(count: int, each: int, count_flag: str, each_flag: str) -> None:
    """Refuse ``count`` actors of ``each`` CPUs that the connected cluster can never place: Ray would
    wait for them forever, silently."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if count * each > cpus:
        raise InputError(
            f"{count_flag} {count} x {each_flag} {each} needs {count * each} CPUs, but the Ray cluster has {cpus}; "
            f"pass fewer {count_flag} or {each_flag}, or join a bigger cluster with --ray-address"
        )


class Embedder:
    """Adds ``tokens``, ``truncated`` and pooled ``layer_K`` columns (``fixed_size_list<float32>``) to
    pyarrow batches, dropping the text column.

    Example:
        >>> ds = ray.data.read_parquet("corpus/")
        >>> ds = ds.map_batches(Embedder, fn_constructor_kwargs={"bundle": "bundles/minilm", "layers": [-1]},
        ...                     batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=4), num_cpus=2)
        >>> ds.write_parquet("vectors/")
    """

    def __init__(
        self,
        bundle: str,
        layers: Any = "all",
        pool: str = "mean",
        combine: str | None = None,
        normalize: bool = False,
        max_length: int | None = None,
        batch_size: int = BATCH_SIZE,
        overflow: str = "truncate",
        stride: int | None = None,
        text_column: str = "text",
        variant: str | None = None,
        provider: str = "cpu",
        threads: int | None = None,
        *,
        weights: list[float] | None = None,
        gamma: float = 1.0,
        options: EmbedOptions | None = None,
    ) -> None:
        """The keywords make an ``EmbedOptions`` (``options=`` gives one instead), checked against the model
        as ``layerwise extract`` checks them."""
        self.encoder = load(bundle, variant=variant, provider=provider, threads=threads or assigned_cpus() or None)
        if options is None:
            keywords = dict(layers=layers, pool=pool, combine=combine, normalize=normalize, max_length=max_length)
            options = options_from_keywords(
                **keywords, batch_size=batch_size, overflow=overflow, stride=stride, weights=weights, gamma=gamma
            )
        self.options: ExtractOptions = embed_options(self.encoder, options)
        self.text_column = text_column

    def __call__(self, batch: pa.Table) -> pa.Table:
        return embed_batch(self.encoder, batch, self.options, self.text_column)
