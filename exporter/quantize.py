"""The ``int8`` variant: smoothed, per-token dynamic INT8 for the CPU provider.

Measured on all-MiniLM-L6-v2 (worst layer, mean-pooled cosine against PyTorch): ONNX
Runtime's dynamic int8 quantizes activations with one scale per tensor, which a few
outlier channels and outlier tokens ([CLS], [SEP]) set; per-channel weights alone give
0.993 mean / 0.981 min on sentences and much worse on short texts. Here:

1. SmoothQuant scales (``smoothing.py``) move channel outliers into the weights; alpha is
   chosen among ALPHAS by the margin over the int8 bars against the float graph on
   calibration text (sentences plus short texts).
2. Every projection MatMul becomes: per-token symmetric scale ``max|x_row| / 127`` ->
   QuantizeLinear per row (uint8, zero point 128) -> MatMulIntegerToFloat with per-channel
   int8 weights -> times the row scale. One quantization per input tensor serves Q, K and V.
3. The weights are *pair-bounded* (``pair_bounded_int8``) so that every CPU computes the same
   integers. x86 without VNNI (AVX2, AVX-512BW) multiplies uint8 x int8 with ``vpmaddubsw``,
   which adds the products of K-neighbours (2j, 2j+1) in int16 with saturation; uint8
   activations reach 255, so ``|w[2j]| + |w[2j+1]| <= 128`` keeps every pair sum within
   255 * 128 = 32640 < 32767. Measured on MiniLM (held-out parity set, worst layer, pooled
   cosine mean/min): 8-bit weights 0.99877/0.99518 on VNNI but 0.994/0.987 on AVX2 (saturated);
   7-bit weights (ONNX Runtime's reduce_range) 0.99709/0.98987 everywhere (misses the bar);
   7-bit activations 0.99687/0.98715; pair-bounded 0.99853/0.99416 everywhere. int8 x int8
   and uint8 x uint8 kernels do not saturate either, but MLAS runs int8 x int8 with its
   portable C++ kernel on x86 (10x slower) and uint8 x uint8 at about half speed; the
   session option ``session.x64quantprecision`` fixes AVX2 too but every loader (C, Java,
   JavaScript, Triton) would have to set it.

It starts from the plain fp32 export; ONNX Runtime fuses LayerNorm, GELU and attention
itself at session creation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..runtime.manifest import BuildReport
from . import graph_tools
from .errors import ExportError
from .parity import ParityBars, compare
from .smoothing import activation_absmax, matmul_targets, reads_attention_context, smooth

ALPHAS = (0.4, 0.5, 0.6, 0.7)
CONSTANTS: dict[str, np.ndarray] = {
    "int8_eps": np.array(1e-8, dtype=np.float32),
    "int8_inv127": np.array(1 / 127, dtype=np.float32),
    "int8_one": np.array(1.0, dtype=np.float32),
    "int8_zero_point": np.array(128, dtype=np.uint8),
    "int8_flat": np.array([-1], dtype=np.int64),
    "int8_last_axis": np.array([1], dtype=np.int64),
    "int8_lead_start": np.array([0], dtype=np.int64),
    "int8_lead_end": np.array([2], dtype=np.int64),
}
FLOAT_REASONS = {
    "Gather": "embedding lookups: no int8 speed-up, and they would perturb hidden_state_0",
    "LayerNormalization": "produces hidden states and the residual stream",
    "Add": "residual and bias additions",
    "Softmax": "attention probabilities",
    "MatMul": "activation x activation (attention scores and context): no constant weight",
    "Erf": "GELU",
    "Div": "GELU and attention scaling",
    "Mul": "GELU and attention scaling",
}


PAIR_LIMIT = 128  # |w[2j]| + |w[2j+1]| <= 128: uint8 (<= 255) x int8 pair sums stay within int16


def pair_bounded_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights whose K-neighbour pairs cannot saturate int16.

    ``weight`` is [K, N] (x @ W); returns (int8 [K, N], float32 scale [N]). The scale is the
    larger of ``max|w| / 127`` and ``max(|w[2j]| + |w[2j+1]|) / 127``: rounding adds at most
    1 to a pair, so every pair's magnitude sum stays <= 128 = PAIR_LIMIT.
    """
    rows = weight.shape[0] + weight.shape[0] % 2
    padded = np.zeros((rows, weight.shape[1]), dtype=np.float64)
    padded[: weight.shape[0]] = np.abs(weight)
    pair_peak = padded.reshape(rows // 2, 2, -1).sum(axis=1).max(axis=0)
    scale = np.maximum(np.maximum(padded.max(axis=0), pair_peak), 1e-8) / 127.0
    quantized = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
    return quantized, scale.astype(np.float32)


def _quantize_rows(x: str, width: int, tag: str) -> tuple[list[onnx.NodeProto], str, str, str]:
    """Nodes quantizing activation ``x`` [batch, seq, width] per token; return (nodes, q, row scale, lead shape)."""
    n = lambda op, inputs, output, **kw: helper.make_node(op, inputs, [f"{tag}_{output}"], name=f"{tag}_{output}", **kw)  # noqa: E731
    t = lambda name: f"{tag}_{name}"  # noqa: E731
    nodes = [
        n("ReduceMax", [x], "max", axes=[-1], keepdims=0),  # [batch, seq]; two reductions read x
        n("ReduceMin", [x], "min", axes=[-1], keepdims=0),  # once each, cheaper than writing Abs(x)
        n("Neg", [t("min")], "neg_min"),
        n("Max", [t("max"), t("neg_min"), "int8_eps"], "absmax_safe"),
        n("Mul", [t("absmax_safe"), "int8_inv127"], "scale"),
        n("Reshape", [t("scale"), "int8_flat"], "scale_rows"),  # [rows]
        n("Shape", [t("scale_rows")], "rows"),
        n("Expand", ["int8_zero_point", t("rows")], "zero_points"),
        n("Reshape", [x, f"int8_shape_{width}"], "rows2d"),  # [rows, width]
        n("QuantizeLinear", [t("rows2d"), t("scale_rows"), t("zero_points")], "q", axis=0),
        n("Unsqueeze", [t("scale_rows"), "int8_last_axis"], "row_scale"),  # [rows, 1]
        n("Shape", [x], "shape"),
        n("Slice", [t("shape"), "int8_lead_start", "int8_lead_end"], "lead"),  # [batch, seq]
    ]
    return nodes, t("q"), t("row_scale"), t("lead")


def _int8_matmul(
    node: onnx.NodeProto, q: str, row_scale: str, lead: str, weight: np.ndarray
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Replace ``node`` (x @ W) by MatMulIntegerToFloat on per-token int8 x and per-channel int8 W."""
    tag = f"int8_{node.name.strip('/').replace('/', '_')}"
    w_int8, w_scale = pair_bounded_int8(weight)
    inits = [
        numpy_helper.from_array(w_int8, f"{tag}_weight"),
        numpy_helper.from_array(w_scale, f"{tag}_weight_scale"),
        numpy_helper.from_array(np.array([weight.shape[1]], dtype=np.int64), f"{tag}_width"),
    ]
    nodes = [
        helper.make_node(
            "MatMulIntegerToFloat",
            [q, f"{tag}_weight", "int8_one", f"{tag}_weight_scale", "int8_zero_point"],
            [f"{tag}_rows"],
            name=f"{tag}_matmul",
            domain="com.microsoft",
        ),
        helper.make_node("Mul", [f"{tag}_rows", row_scale], [f"{tag}_scaled"], name=f"{tag}_row_scale"),
        helper.make_node("Concat", [lead, f"{tag}_width"], [f"{tag}_shape"], name=f"{tag}_shape", axis=0),
        helper.make_node("Reshape", [f"{tag}_scaled", f"{tag}_shape"], [node.output[0]], name=f"{tag}_reshape"),
    ]
    return nodes, inits


def to_int8(model: onnx.ModelProto, targets: list[onnx.NodeProto]) -> onnx.ModelProto:
    """Rewrite every target MatMul of ``model`` as per-token int8 (see module docstring)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {t.name: t for t in out.graph.initializer}
    names = {n.name for n in targets}
    quantized: dict[str, tuple[str, str, str]] = {}
    nodes: list[onnx.NodeProto] = []
    inits = [numpy_helper.from_array(v, k) for k, v in CONSTANTS.items()]
    widths = set()
    for node in out.graph.node:
        if node.name not in names:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        if node.input[0] not in quantized:
            width = weight.shape[0]
            widths.add(width)
            extra, q, row_scale, lead = _quantize_rows(node.input[0], width, f"int8_x{len(quantized)}")
            nodes += extra
            quantized[node.input[0]] = (q, row_scale, lead)
        extra_nodes, extra_inits = _int8_matmul(node, *quantized[node.input[0]], weight)
        nodes += extra_nodes
        inits += extra_inits
    inits += [numpy_helper.from_array(np.array([-1, w], dtype=np.int64), f"int8_shape_{w}") for w in sorted(widths)]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [t for t in out.graph.initializer if t.name in used] + inits
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    return out


def _kept_float(model: onnx.ModelProto, quantized: set[str], smoothing_groups: int) -> list[dict[str, Any]]:
    """What stayed in float and why, one entry per reason."""
    plumbing = "shape, layout and mask plumbing: no matmul work"
    by_reason: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for node in model.graph.node:
        if node.name not in quantized:
            by_reason[FLOAT_REASONS.get(node.op_type, plumbing)][node.op_type] += 1
    kept = [{"op_types": dict(ops), "reason": reason} for reason, ops in by_reason.items()]
    kept.append({"op_types": {"Mul": smoothing_groups}, "reason": "added: SmoothQuant 1/s before the smoothed projections"})
    return kept


def quantize_int8(
    fp32_path: Path, out_path: Path, work: Path, calibration: Sequence[dict[str, np.ndarray]], bars: ParityBars, threads: int
) -> BuildReport:
    """Write the int8 graph of ``fp32_path``; return its build report (method, what stayed float; details: alpha, calibration)."""
    from .reference import run_onnx

    model = graph_tools.load(fp32_path)
    targets = matmul_targets(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name for t in model.graph.initializer}
    smoothed = [n for n in targets if not reads_attention_context(n, producers, inits)]
    absmax = activation_absmax(model, calibration, sorted({n.input[0] for n in smoothed}), threads)
    reference = run_onnx(fp32_path, calibration, threads)
    masks = [f["attention_mask"] for f in calibration]

    trials: dict[float, dict[str, Any]] = {}
    for alpha in ALPHAS:
        candidate, record = smooth(model, smoothed, absmax, alpha)
        path = work / f"int8_alpha_{alpha}.onnx"
        graph_tools.save(to_int8(candidate, targets), path)
        rows = compare(run_onnx(path, calibration, threads), reference, masks)
        worst_mean, worst_min = min(r.pooled_cos_mean for r in rows), min(r.pooled_cos_min for r in rows)
        margin = min(worst_mean - (bars.pooled_cos_mean or 0.0), worst_min - (bars.pooled_cos_min or 0.0))
        trials[alpha] = {"margin": margin, "record": record, "path": path, "worst_mean": worst_mean, "worst_min": worst_min}
    alpha = max(trials, key=lambda a: trials[a]["margin"])
    quantized = graph_tools.load(trials[alpha]["path"])
    if [o.name for o in quantized.graph.output] != [o.name for o in model.graph.output]:
        raise ExportError("int8 rewriting changed the graph outputs; every hidden state must stay an output")
    shared = graph_tools.share_identical_initializers(quantized)
    graph_tools.save(quantized, out_path)
    method = (
        "SmoothQuant scales (explicit per-channel Mul) + per-token dynamic uint8 activations + per-channel pair-bounded int8 "
        "weights (MatMulIntegerToFloat)"
    )
    details = {
        "weights": f"int8 per output channel, |w[2j]| + |w[2j+1]| <= {PAIR_LIMIT} along K: no int16 saturation in uint8 x int8 pair "
        "kernels (x86 without VNNI), so every CPU computes the same integers",
        "alpha": alpha,
        "calibration_texts": int(sum(len(f["input_ids"]) for f in calibration)),
        "calibration": {
            str(a): {"worst_layer_pooled_cos_mean": round(t["worst_mean"], 5), "worst_layer_pooled_cos_min": round(t["worst_min"], 5)}
            for a, t in trials.items()
        },
        "smoothed": trials[alpha]["record"],
        "quantized_matmuls": len(targets),
        "shared_initializers": shared,
    }
    kept_float = _kept_float(model, {n.name for n in targets}, len(trials[alpha]["record"]))
    return BuildReport(method=method, kept_float=kept_float, details=details)
