"""The ``fp16`` variant: the fused graph in float16, float32 at its inputs and outputs, for CUDA.

ONNX Runtime's fused kernels (Attention, SkipLayerNormalization, EmbedLayerNormalization)
accumulate in float32 internally; the ops listed in KEEP_FLOAT32 stay float32 because
their float16 versions overflow or lose too much on long inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import graph_tools

KEEP_FLOAT32: tuple[str, ...] = ()


def convert_fp16(fused_path: Path, out_path: Path) -> dict[str, Any]:
    """Write the float16 version of a fused graph; return what stayed float32 and why."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(graph_tools.load(fused_path))
    model.convert_float_to_float16(keep_io_types=True, op_block_list=list(KEEP_FLOAT32))
    shared = graph_tools.share_identical_initializers(model.model)
    graph_tools.save(model.model, out_path)
    kept = [{"op_type": op, "reason": "float16 overflow or precision loss"} for op in KEEP_FLOAT32]
    kept.append({"op_type": "graph inputs and outputs", "reason": "float32 I/O keeps the graph contract of every variant"})
    return {"kept_float": kept, "shared_initializers": shared}
