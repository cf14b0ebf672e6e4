"""CTranslate2's Encoder on all-MiniLM converted from the same checkpoint, int8 or float32 weights.

Last-layer job only: ``forward_batch`` returns the last hidden state (and a pooler output), not
every layer. Converted once per compute type with ``TransformersConverter`` (it reads the
checkpoint through transformers, as its docs show); tokens, batches and pooling are the same as
for the bundle-graph peers (bundle_graph.pooled_embedder).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Context, Peer, versions
from .bundle_graph import PIPELINE_NOTES, pooled_embedder

COMPUTE_TYPES = {"int8": "int8", "fp32": "float32"}  # our precision name -> CTranslate2's quantization / compute type


def build_ctranslate2(ctx: Context, precision: str) -> Peer:
    """ctranslate2.Encoder(device="cpu", compute_type=...) on a fresh conversion of the local checkpoint."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    if ctx.job != "last_layer":
        raise ValueError(f"CTranslate2's Encoder returns the last hidden state only; job {ctx.job!r} needs every layer")
    compute_type = COMPUTE_TYPES[precision]
    out = ctx.scratch / f"ct2-{compute_type}"
    TransformersConverter(str(ctx.model_dir)).convert(str(out), quantization=compute_type, force=True)
    encoder = ctranslate2.Encoder(str(out), device="cpu", compute_type=compute_type, intra_threads=ctx.threads, inter_threads=1)

    def run_batch(batch: Any) -> list[np.ndarray]:
        lengths = batch.attention_mask.sum(1)
        ids = [row[:n].tolist() for row, n in zip(batch.input_ids, lengths)]  # unpadded: CTranslate2 pads and masks itself
        return [np.asarray(encoder.forward_batch(ids).last_hidden_state)]  # [batch, longest, hidden]

    return Peer(
        embed=pooled_embedder(ctx, run_batch),
        threads_controlled=True,
        notes=(
            f"TransformersConverter(model_dir).convert(quantization={compute_type!r}) + ctranslate2.Encoder(device='cpu', "
            f"compute_type={compute_type!r}, intra_threads={ctx.threads}, inter_threads=1).forward_batch(token ids) "
            f"-> last_hidden_state; {PIPELINE_NOTES}"
        ),
        versions=versions("ctranslate2", "tokenizers"),
    )
