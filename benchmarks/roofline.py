"""Job 5: this machine's matrix-multiply ceiling through ONNX Runtime, and each variant's share of it.

The ceiling is measured on the model's own matrix shapes at batch 32 x 128 (QKV, attention
output, FFN in, FFN out): fp32 MatMul, and int8 as ONNX Runtime runs it in the int8 graph
(uint8 activations x int8 weights, MatMulInteger). A variant's achieved FLOP/s counts the
model's FLOPs per token from its config (projections plus attention scores) over the
measured time of the same batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import layerwise
from layerwise.runtime.latency import measure

from .common import alternate

BATCH, SEQ = 32, 128


def flops_per_token(hidden: int, intermediate: int, layers: int, seq_len: int) -> float:
    """Multiply-adds x 2 per token: Q, K, V, output and two FFN projections, plus QK^T and AV."""
    projections = 4 * hidden * hidden + 2 * hidden * intermediate
    attention = 2 * seq_len * hidden
    return 2.0 * layers * (projections + attention)


def _matmul_graph(m: int, k: int, n: int, integer: bool) -> bytes:
    rng = np.random.default_rng(0)
    if integer:
        weight = numpy_helper.from_array(rng.integers(-127, 127, size=(k, n), dtype=np.int8), "w")
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        a, y = TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w")
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        a, y = TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph([node], "mm", [helper.make_tensor_value_info("a", a, [m, k])], [helper.make_tensor_value_info("y", y, [m, n])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def matmul_ceiling(shapes: list[tuple[int, int, int]], weights: list[float], threads: int, integer: bool, repeats: int = 7) -> dict[str, Any]:
    """Achieved GFLOP/s (GOP/s for int8) per shape, and the FLOP-weighted mean over the model's mix."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    rng = np.random.default_rng(1)
    per_shape = []
    for m, k, n in shapes:
        session = ort.InferenceSession(_matmul_graph(m, k, n, integer), options, providers=["CPUExecutionProvider"])
        a = rng.integers(0, 255, size=(m, k), dtype=np.uint8) if integer else rng.standard_normal((m, k)).astype(np.float32)
        timing = alternate({"mm": lambda: session.run(None, {"a": a})}, repeats, warmup=2)["mm"]
        per_shape.append({"m": m, "k": k, "n": n, "gflops": 2 * m * k * n / timing["median_s"] / 1e9})
    total = sum(weights)
    seconds = sum(w / (s["gflops"] * 1e9) for w, s in zip(weights, per_shape))
    return {"per_shape": per_shape, "weighted_gflops": total / seconds / 1e9}


def run(bundle: str, threads: int) -> dict[str, Any]:
    manifest = layerwise.load(bundle, variant="fp32", provider="cpu", threads=threads)._engine.manifest
    config = manifest.raw["source"]["config"]
    hidden, intermediate, layers = manifest.hidden_size, int(config["intermediate_size"]), manifest.num_layers
    m = BATCH * SEQ
    shapes = [(m, hidden, 3 * hidden), (m, hidden, hidden), (m, hidden, intermediate), (m, intermediate, hidden)]
    weights = [float(2 * a * b * c) for a, b, c in shapes]
    ceilings = {"fp32": matmul_ceiling(shapes, weights, threads, integer=False), "int8": matmul_ceiling(shapes, weights, threads, integer=True)}
    per_token = flops_per_token(hidden, intermediate, layers, SEQ)
    variants = {}
    for variant in ("fp32", "fused", "int8"):
        encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=threads)
        cell = measure(encoder, BATCH, SEQ, layers="all", pool="mean", seconds=4.0)
        achieved = per_token * BATCH * SEQ / (cell.p50_ms / 1e3) / 1e9
        ceiling = ceilings["int8" if variant == "int8" else "fp32"]["weighted_gflops"]
        variants[variant] = {"p50_ms": cell.p50_ms, "achieved_gflops": achieved, "ceiling_gflops": ceiling, "fraction_of_ceiling": achieved / ceiling}
    return {"batch_size": BATCH, "seq_len": SEQ, "threads": threads, "flops_per_token": per_token, "ceilings": ceilings, "variants": variants}
