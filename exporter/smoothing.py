"""SmoothQuant scales: move activation outliers into the weights before int8 quantization.

``x @ W == (x / s) @ (s * W)`` with ``s_j = max|x_j|^alpha / max|W_j|^(1-alpha)``, where
``max|x_j|`` is calibrated per channel on real text. The ``1/s`` is an explicit Mul on the
branch into each smoothed MatMul: the usual place to fold it (LayerNorm gamma) produces
hidden states and residuals that must stay unscaled, and GELU cannot absorb a scale.
Nodes sharing an input share one Mul; nodes sharing a weight (ALBERT's layers) share one
scale, so their scaled weight stays a single shared tensor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper


def matmul_targets(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """MatMul nodes with a 2-D constant weight (the projections), in graph order."""
    inits = {t.name: t for t in model.graph.initializer}
    return [
        n for n in model.graph.node
        if n.op_type == "MatMul" and n.input[0] not in inits and n.input[1] in inits and len(inits[n.input[1]].dims) == 2
    ]  # fmt: skip


def reads_attention_context(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto], inits: set[str]) -> bool:
    """True for the attention output projection: it reads probs @ V, which has no outlier channels."""
    parent = producers.get(node.input[0])
    while parent is not None and parent.op_type in ("Reshape", "Transpose", "Identity"):
        parent = producers.get(parent.input[0])
    if parent is not None and parent.op_type in ("MultiHeadAttention", "Attention"):
        return True
    return parent is not None and parent.op_type == "MatMul" and not set(parent.input) & inits


def _groups(nodes: list[onnx.NodeProto]) -> list[list[onnx.NodeProto]]:
    """Nodes that must share one scale: same input (one Mul) or same weight (one scaled copy)."""
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for key in (f"x:{node.input[0]}", f"w:{node.input[1]}"):
            parent[find(i)] = find(first.setdefault(key, i))
    groups: dict[int, list[onnx.NodeProto]] = defaultdict(list)
    for i, node in enumerate(nodes):
        groups[find(i)].append(node)
    return list(groups.values())


def activation_absmax(
    model: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]], tensors: list[str], threads: int
) -> dict[str, np.ndarray]:
    """Per-channel max |x| of each named tensor over the calibration feeds."""
    from .reference import session_for

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in tensors)
    session = session_for(probe.SerializeToString(), threads)
    peaks: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(tensors, session.run(tensors, feed)):
            peak = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks


def smooth(
    model: onnx.ModelProto, nodes: list[onnx.NodeProto], absmax: dict[str, np.ndarray], alpha: float
) -> tuple[onnx.ModelProto, list[dict[str, Any]]]:
    """A copy of ``model`` with ``Mul(x, 1/s)`` before each node and its weight rows scaled by ``s``."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name: t for t in out.graph.initializer}
    by_name = {n.name: n for n in out.graph.node}
    muls: dict[str, onnx.NodeProto] = {}  # first consumer's name -> the Mul to insert before it
    record: list[dict[str, Any]] = []
    for group in _groups([by_name[n.name] for n in nodes]):
        inputs = sorted({n.input[0] for n in group})
        weights = sorted({n.input[1] for n in group})
        x = np.maximum(np.max([absmax[i] for i in inputs], axis=0).astype(np.float64), 1e-5)
        w = np.maximum(np.max([np.abs(numpy_helper.to_array(inits[n])).max(axis=1) for n in weights], axis=0), 1e-5)
        s = x**alpha / w ** (1.0 - alpha)
        s = np.clip(s / np.exp(np.log(s).mean()), 1e-4, 1e4)
        for name in weights:
            scaled = numpy_helper.to_array(inits[name]).astype(np.float64) * s[:, None]
            inits[name].CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), name))
        scale_name = f"smooth_inv_scale_{len(record)}"
        out.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), scale_name))
        for x_name in inputs:
            consumers = [n for n in group if n.input[0] == x_name]
            muls[consumers[0].name] = onnx.helper.make_node("Mul", [x_name, scale_name], [f"{x_name}_smoothed"], name=f"Smooth_{x_name}")
            for node in consumers:
                node.input[0] = f"{x_name}_smoothed"
        record.append(
            {"nodes": [n.name for n in group], "outlier_ratio_before": round(float(x.max() / np.median(x)), 1),
             "outlier_ratio_after": round(float((x / s).max() / np.median(x / s)), 1)}
        )  # fmt: skip
    ordered = []
    for node in out.graph.node:
        if node.name in muls:
            ordered.append(muls[node.name])
        ordered.append(node)
    del out.graph.node[:]
    out.graph.node.extend(ordered)
    return out, record
