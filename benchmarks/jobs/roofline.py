"""This machine's matrix-multiply ceiling through ONNX Runtime, and each variant's share of it.

Results are per CPU family (the results file is keyed by it): the ceilings are measured on the
model's own projection shapes, read from the bundle's int8 graph (every integer matmul's weight,
counted per layer), at batch 32 x 128 rows, weighted by each shape's share of the FLOPs, in three
kernel forms:

- ``fp32``: MatMul, float32;
- ``int8_u8s8``: MatMulInteger, uint8 activations x int8 weights over the full [-127, 127] range
  (ONNX Runtime's plain int8 kernel);
- ``int8_variant``: the int8 variant's own call, as its graph makes it: the op type
  (MatMulIntegerToFloat today) with its weights' range (7-bit [-63, 63] once the int8 weights
  keep AVX2's 16-bit pair sums from saturating) and per-channel scales.

A variant's achieved FLOP/s counts the model's FLOPs (projections plus attention products) over
its measured time, all layers mean-pooled: at batch 32 x 128 (one run, timed in the same rounds
as the ceilings) and on the natural-length sentences of the other jobs (``embed`` as users call
it; FLOPs of the padded tokens it ran, and of the real tokens alone). fp32 and fused count against
the fp32 ceiling, int8 against ``int8_variant``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import layerwise
from layerwise.runtime.manifest import read_manifest
from layerwise.runtime.tokenize import Batch

from ..common import alternate

BATCH, SEQ = 32, 128
INTEGER_MATMULS = ("MatMulInteger", "MatMulIntegerToFloat")


def ceiling_kind(variant: str) -> str:
    """The ceiling a variant's matmuls count against: its own kernel form."""
    return "int8_variant" if variant == "int8" else "fp32"


def int8_kernel_form(bundle: str) -> dict[str, Any]:
    """What the int8 graph multiplies: op type, largest |weight|, and each weight shape [k, n] with its count."""
    manifest = read_manifest(bundle)
    if "int8" not in manifest.variants:
        raise ValueError(f"{bundle} has no int8 variant: the roofline reads the model's matmul shapes from it")
    graph = onnx.load(str(Path(bundle) / manifest.variants["int8"].graph.path)).graph
    weights = {init.name: init for init in graph.initializer}
    ops, absmax, shapes = Counter(), 0, Counter()
    for node in graph.node:
        if node.op_type in INTEGER_MATMULS and node.input[1] in weights:
            w = numpy_helper.to_array(weights[node.input[1]])
            ops[node.op_type] += 1
            absmax = max(absmax, int(np.abs(w.astype(np.int32)).max()))
            shapes[tuple(int(d) for d in w.shape)] += 1
    if not shapes:
        raise ValueError(f"the int8 graph of {bundle} has no {' or '.join(INTEGER_MATMULS)} with a constant weight")
    return {"op_type": ops.most_common(1)[0][0], "ops": dict(ops), "weight_absmax": absmax, "shapes": shapes}


def flops_per_token(shapes: Counter, hidden: int, layers: int, seq_len: int) -> float:
    """Multiply-adds x 2 per token: every projection (the shapes, all layers), plus QK^T and AV."""
    return 2.0 * (sum(count * k * n for (k, n), count in shapes.items()) + layers * 2 * seq_len * hidden)


def _matmul_graph(m: int, k: int, n: int, kind: str, weight_max: int, op_type: str) -> bytes:
    rng = np.random.default_rng(0)
    a_type, y_type, inits, opsets = TensorProto.UINT8, TensorProto.INT32, [], [helper.make_opsetid("", 17)]
    if kind == "fp32":
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
        inits.append(numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "w"))
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
    else:
        inits.append(numpy_helper.from_array(rng.integers(-weight_max, weight_max + 1, size=(k, n), dtype=np.int8), "w"))
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    if kind == "int8_variant" and op_type == "MatMulIntegerToFloat":  # the int8 variant's call shape (exporter/quantize.py)
        y_type = TensorProto.FLOAT
        inits += [
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "a_scale"),
            numpy_helper.from_array(rng.uniform(1e-3, 1e-2, size=n).astype(np.float32), "w_scale"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero_point"),
        ]
        node = helper.make_node("MatMulIntegerToFloat", ["a", "w", "a_scale", "w_scale", "a_zero_point"], ["y"], domain="com.microsoft")
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    graph = helper.make_graph(
        [node], "mm", [helper.make_tensor_value_info("a", a_type, [m, k])], [helper.make_tensor_value_info("y", y_type, [m, n])], inits
    )
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _matmul_runner(m: int, k: int, n: int, kind: str, form: dict[str, Any], threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    weight_max = form["weight_absmax"] if kind == "int8_variant" else 127
    session = ort.InferenceSession(_matmul_graph(m, k, n, kind, weight_max, form["op_type"]), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(np.float32) if kind == "fp32" else rng.integers(0, 256, size=(m, k), dtype=np.uint8)
    return lambda: session.run(None, {"a": a})


def _ceiling(m: int, shapes: Counter, seconds: dict[tuple[int, int], float]) -> dict[str, Any]:
    per_shape = [{"m": m, "k": k, "n": n, "count": c, "gflops": 2 * m * k * n / seconds[(k, n)] / 1e9} for (k, n), c in shapes.items()]
    total = sum(2 * m * k * n * c for (k, n), c in shapes.items()) / sum(seconds[(k, n)] * c for (k, n), c in shapes.items())
    return {"per_shape": per_shape, "weighted_gflops": total / 1e9}


def run(bundle: str, threads: int, texts: list[str], repeats: int = 9) -> dict[str, Any]:
    """Two ceilings per kind: ``peak``, each shape run back to back on its own (the most this
    machine gives; fractions are reported against it), and ``in_rounds``, timed in the same
    alternating rounds as the model variants at 32 x 128 (what a matmul gets among other work)."""
    manifest = read_manifest(bundle)
    hidden, layers = manifest.model.hidden_size, manifest.model.num_layers
    form = int8_kernel_form(bundle)
    shapes, m = form["shapes"], BATCH * SEQ
    kinds = ("fp32", "int8_u8s8", "int8_variant")
    runs = {(kind, shape): _matmul_runner(m, *shape, kind, form, threads) for kind in kinds for shape in shapes}
    peak = {key: alternate({"matmul": fn}, repeats, warmup=2)["matmul"]["median_s"] for key, fn in runs.items()}

    batch = Batch.synthetic(BATCH, SEQ, manifest.model.vocab_size)
    encoders = {v: layerwise.load(bundle, variant=v, provider="cpu", threads=threads) for v in manifest.variants_built_for("cpu")}
    contenders: dict[Any, Any] = dict(runs)
    contenders.update({v: (lambda e=e: e.engine.run(batch, list(range(layers + 1)), "mean")) for v, e in encoders.items()})
    rounds = alternate(contenders, repeats, warmup=2, settle=2)
    natural = alternate({v: (lambda e=e: e.embed(texts, batch_size=BATCH)) for v, e in encoders.items()}, max(3, repeats // 3))

    ceilings = {
        kind: {
            "peak": _ceiling(m, shapes, {sh: peak[(kind, sh)] for sh in shapes}),
            "in_rounds": _ceiling(m, shapes, {sh: rounds[(kind, sh)]["median_s"] for sh in shapes}),
        }
        for kind in kinds
    }
    out: dict[str, Any] = {}
    for variant, encoder in encoders.items():
        ceiling = ceilings[ceiling_kind(variant)]
        synthetic = flops_per_token(shapes, hidden, layers, SEQ) * m / rounds[variant]["median_s"] / 1e9
        stats = encoder.last_stats  # the same texts every time: the figures of any one call
        width = stats.padded_tokens / stats.texts  # mean padded length per text (sets the attention term)
        seconds = natural[variant]["median_s"]
        ran = flops_per_token(shapes, hidden, layers, round(width)) * stats.padded_tokens / seconds / 1e9
        useful = flops_per_token(shapes, hidden, layers, round(stats.tokens / stats.texts)) * stats.tokens / seconds / 1e9
        out[variant] = {
            "ceiling": ceiling_kind(variant),
            "p50_ms": rounds[variant]["median_s"] * 1e3,
            "achieved_gflops": synthetic,
            "fraction_of_ceiling": synthetic / ceiling["peak"]["weighted_gflops"],
            "fraction_of_in_rounds": synthetic / ceiling["in_rounds"]["weighted_gflops"],
            "natural": {
                "texts": stats.texts,
                "tokens": stats.tokens,
                "padded_tokens": stats.padded_tokens,
                "batches": stats.batches,
                "median_s": seconds,
                "achieved_gflops": ran,
                "fraction_of_ceiling": ran / ceiling["peak"]["weighted_gflops"],
                "useful_gflops": useful,
                "useful_fraction_of_ceiling": useful / ceiling["peak"]["weighted_gflops"],
            },  # fmt: skip
        }
    int8 = {k: v for k, v in form.items() if k != "shapes"}
    return {
        "batch_size": BATCH, "seq_len": SEQ, "threads": threads, "repeats": repeats, "int8_kernel": int8,
        "shapes": [{"k": k, "n": n, "count": c} for (k, n), c in shapes.items()],
        "flops_per_token": flops_per_token(shapes, hidden, layers, SEQ), "ceilings": ceilings, "variants": out,
    }  # fmt: skip
