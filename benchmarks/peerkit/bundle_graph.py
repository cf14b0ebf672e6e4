"""Run the layerwise bundle's fp32 graph (every hidden state as an output) through another engine.

Same work as layerwise: the bundle's tokenizer, length-sorted batches of ``batch_size`` padded to
their own longest text, then mean pooling over real tokens in numpy. The engine-specific part is
one function, a padded batch -> the requested hidden states ([batch, sequence, hidden] each, layer
order).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .base import Context, Embed

RunBatch = Callable[[Any], list[np.ndarray]]  # layerwise.runtime.tokenize.Batch -> hidden states


def fp32_graph(ctx: Context) -> Path:
    """The bundle's fp32 graph file (external data, if any, lies beside it)."""
    from layerwise.runtime.manifest import read_manifest

    bundle = ctx.require_bundle()
    return bundle / read_manifest(bundle).variants["fp32"].graph.path


def wanted_outputs(ctx: Context) -> list[str]:
    """Graph output names the job needs: every hidden state, or the last one only."""
    from layerwise.runtime.manifest import output_name, read_manifest

    layers = read_manifest(ctx.require_bundle()).model.num_layers
    return [output_name(layers)] if ctx.job == "last_layer" else [output_name(i) for i in range(layers + 1)]


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[batch, sequence, hidden] averaged over the real tokens of ``mask`` [batch, sequence]."""
    weights = mask.astype(np.float32)
    return np.matmul(weights[:, None, :], hidden)[:, 0] / weights.sum(1, keepdims=True)


def graph_feeds(batch: Any, input_names: set[str]) -> dict[str, np.ndarray]:
    """The batch's int64 inputs that the graph declares, named as transformers names them
    (token_type_ids may be absent)."""
    from layerwise.runtime.manifest import INPUT_ROLES, GraphInput

    return batch.feeds([GraphInput(name, role) for role, name in INPUT_ROLES.items() if name in input_names])


def pooled_embedder(ctx: Context, run_batch: RunBatch) -> Embed:
    """An Embed for the job: tokenize with the bundle's tokenizer, run sorted batches, mean-pool."""
    from layerwise.runtime.bundle import open_bundle
    from layerwise.runtime.tokenize import TextTokenizer, length_sorted_batches

    bundle = open_bundle(ctx.require_bundle())
    tokenizer = TextTokenizer(bundle.tokenizer_json(), bundle.manifest.model.max_length, pad_id=0)  # pads are masked out

    def embed(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode(texts)
        out: np.ndarray | None = None
        for batch in length_sorted_batches(encoded, ctx.batch_size, pad_id=0):
            pooled = np.stack([mean_pool(h, batch.attention_mask) for h in run_batch(batch)], axis=1)
            if out is None:
                out = np.empty((len(texts), *pooled.shape[1:]), dtype=np.float32)
            out[batch.indices] = pooled
        assert out is not None
        return out[:, -1] if ctx.job == "last_layer" else out

    return embed


PIPELINE_NOTES = (
    "the bundle's tokenizer, length-sorted batches padded to their longest, order restored; "
    "mean pooling over real tokens in numpy; raw (not normalized)"
)
