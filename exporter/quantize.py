"""The ``int8`` variant: dynamic INT8 quantization of the fused graph for the CPU provider.

Baseline recipe: per-channel weights, activations quantized per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import graph_tools


def quantize_int8(fused_path: Path, out_path: Path, work_dir: Path, calibration: Any = None) -> dict[str, Any]:
    """Write the int8 graph; return what stayed in float and why."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fused_path),
        str(work_dir / "int8.raw.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},  # 1: float
    )
    model = graph_tools.load(work_dir / "int8.raw.onnx")
    shared = graph_tools.share_identical_initializers(model)
    graph_tools.save(model, out_path)
    return {"method": "dynamic int8, per-channel weights", "kept_float": [], "shared_initializers": shared}
