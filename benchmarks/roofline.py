"""Job 5: this machine's matrix-multiply ceiling through ONNX Runtime, and each variant's share of it.

The ceiling is measured on the model's own matrix shapes at batch 32 x 128 (QKV, attention
output, FFN in, FFN out): fp32 MatMul, and int8 as ONNX Runtime multiplies integers
(uint8 activations x int8 weights, MatMulInteger), weighted by each shape's share of the
FLOPs. A variant's achieved FLOP/s counts the model's FLOPs per token from its config
(projections plus attention scores) over the measured time of the same batch, all layers
mean-pooled, in the same rounds as the ceiling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import layerwise
from layerwise.runtime.bench_hooks import run_batch, synthetic_batch
from layerwise.runtime.manifest import read_manifest

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


def _matmul_session(m: int, k: int, n: int, integer: bool, threads: int) -> tuple[Any, dict[str, np.ndarray]]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(_matmul_graph(m, k, n, integer), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, size=(m, k), dtype=np.uint8) if integer else rng.standard_normal((m, k)).astype(np.float32)
    return session, {"a": a}


def _ceiling(shapes: list[tuple[int, int, int]], seconds: list[float]) -> dict[str, Any]:
    per_shape = [{"m": a, "k": b, "n": c, "gflops": 2 * a * b * c / t / 1e9} for (a, b, c), t in zip(shapes, seconds)]
    return {"per_shape": per_shape, "weighted_gflops": sum(2 * a * b * c for a, b, c in shapes) / sum(seconds) / 1e9}


def run(bundle: str, threads: int, repeats: int = 9) -> dict[str, Any]:
    """Two ceilings per kind: ``peak``, each shape run back to back on its own (the most this
    machine gives; fractions are reported against it), and ``in_rounds``, timed in the same
    alternating rounds as the model variants (what a matmul gets among other work)."""
    manifest = read_manifest(bundle)
    model, variant_names = manifest.model, manifest.variants_built_for("cpu")
    hidden, intermediate, layers = model.hidden_size, int(manifest.source.config["intermediate_size"]), model.num_layers
    m = BATCH * SEQ
    shapes = [(m, hidden, 3 * hidden), (m, hidden, hidden), (m, hidden, intermediate), (m, intermediate, hidden)]
    sessions = {(kind, shape): _matmul_session(*shape, kind == "int8", threads) for kind in ("fp32", "int8") for shape in shapes}
    runs = {key: (lambda s=s, f=f: s.run(None, f)) for key, (s, f) in sessions.items()}
    peak = {key: alternate({"matmul": fn}, repeats, warmup=2)["matmul"]["median_s"] for key, fn in runs.items()}

    batch = synthetic_batch(BATCH, SEQ, model.vocab_size)
    layer_ids = list(range(layers + 1))
    contenders: dict[Any, Any] = dict(runs)
    for variant in variant_names:
        encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=threads)
        contenders[variant] = lambda e=encoder: run_batch(e, batch, layer_ids, "mean")
    rounds = alternate(contenders, repeats, warmup=2, settle=2)

    ceilings = {
        kind: {"peak": _ceiling(shapes, [peak[(kind, sh)] for sh in shapes]), "in_rounds": _ceiling(shapes, [rounds[(kind, sh)]["median_s"] for sh in shapes])}
        for kind in ("fp32", "int8")
    }
    per_token = flops_per_token(hidden, intermediate, layers, SEQ)
    variants = {}
    for variant in variant_names:
        median = rounds[variant]["median_s"]
        achieved = per_token * BATCH * SEQ / median / 1e9
        kind = "int8" if variant == "int8" else "fp32"
        variants[variant] = {
            "p50_ms": median * 1e3,
            "achieved_gflops": achieved,
            "ceiling_gflops": ceilings[kind]["peak"]["weighted_gflops"],
            "fraction_of_ceiling": achieved / ceilings[kind]["peak"]["weighted_gflops"],
            "fraction_of_in_rounds": achieved / ceilings[kind]["in_rounds"]["weighted_gflops"],
        }
    return {"batch_size": BATCH, "seq_len": SEQ, "threads": threads, "repeats": repeats, "flops_per_token": per_token, "ceilings": ceilings, "variants": variants}
