"""The graph rewrites benchmarks/experiments/graph_ab.py times: each takes a bundle folder and returns one
variant's graph changed in one way (int8 forms and attention forms ONNX Runtime offers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper

from layerwise.exporter import graph_tools
from layerwise.exporter.reference import CALIBRATION_SENTENCES, short_texts
from layerwise.exporter.smoothing import matmul_targets
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.loader import load
from layerwise.runtime.tokenize import length_sorted_batches

Rewrite = Callable[[Path], onnx.ModelProto | None]  # bundle folder -> the variant's new graph (None: the graph stays)


def matmul_nbits(block: int) -> Rewrite:
    """The fp32 graph with every weight MatMul as MatMulNBits: 8-bit symmetric weights per block of K,
    accuracy level 4 (activations quantized per block inside the kernel)."""

    def rewrite(bundle: Path) -> onnx.ModelProto:
        model = onnx.load(str(bundle / "model.fp32.onnx"))
        weights = {t.name: t for t in model.graph.initializer}
        targets = {n.name for n in matmul_targets(model)}
        for node in model.graph.node:
            if node.name not in targets:
                continue
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)  # [K, N]
            k, n = w.shape
            blocks = -(-k // block)
            padded = np.zeros((n, blocks * block), np.float32)
            padded[:, :k] = w.T
            grouped = padded.reshape(n, blocks, block)
            scale = np.maximum(np.abs(grouped).max(-1), 1e-8) / 127.0
            q = (np.clip(np.round(grouped / scale[..., None]), -127, 127) + 128).astype(np.uint8)  # zero point 128
            tag = node.name.strip("/").replace("/", "_")
            packed = [numpy_helper.from_array(q, f"{tag}_nbits"), numpy_helper.from_array(scale.ravel(), f"{tag}_scale")]
            model.graph.initializer.extend(packed)
            replacement = helper.make_node(
                "MatMulNBits", [node.input[0], f"{tag}_nbits", f"{tag}_scale"], list(node.output), name=node.name,
                domain="com.microsoft", K=k, N=n, bits=8, block_size=block, accuracy_level=4,
            )  # fmt: skip
            node.CopyFrom(replacement)
        graph_tools.prune_dead_nodes(model)  # and the weights nothing reads now
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return model

    return rewrite


def int8_merged_qkv(bundle: Path) -> onnx.ModelProto:
    """The int8 graph with the MatMulIntegerToFloat calls that share one quantized input (Q, K, V) as
    one call on the concatenated weights, its row scale, then a Split."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMulIntegerToFloat":
            groups.setdefault(node.input[0], []).append(node)
    replaced: dict[str, list[onnx.NodeProto]] = {}
    dropped: set[str] = set()
    for quantized, calls in groups.items():
        if len(calls) < 2:
            continue
        scalings = [readers[c.output[0]][0] for c in calls]  # each call's row-scale Mul
        tag = calls[0].name + "_merged"
        parts = [numpy_helper.to_array(weights[c.input[1]]) for c in calls]
        model.graph.initializer.extend([
            numpy_helper.from_array(np.concatenate(parts, axis=1), f"{tag}_weight"),
            numpy_helper.from_array(np.concatenate([numpy_helper.to_array(weights[c.input[3]]) for c in calls]), f"{tag}_scale"),
            numpy_helper.from_array(np.array([p.shape[1] for p in parts], np.int64), f"{tag}_split"),
        ])  # fmt: skip
        first = calls[0]
        replaced[first.name] = [
            helper.make_node("MatMulIntegerToFloat", [quantized, f"{tag}_weight", first.input[2], f"{tag}_scale", first.input[4]],
                             [f"{tag}_rows"], name=tag, domain="com.microsoft"),
            helper.make_node("Mul", [f"{tag}_rows", scalings[0].input[1]], [f"{tag}_scaled"], name=f"{tag}_row_scale"),
            helper.make_node("Split", [f"{tag}_scaled", f"{tag}_split"], [m.output[0] for m in scalings], name=f"{tag}_split", axis=1),
        ]  # fmt: skip
        dropped.update(n.name for n in [*calls, *scalings])
    nodes = [new for node in model.graph.node for new in [*replaced.get(node.name, []), node] if new.name not in dropped]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)  # and the weights nothing reads now
    return model


def int8_per_tensor_activations(down_projections: bool) -> Rewrite:
    """The int8 graph with one scale per quantized tensor instead of one per token, so each
    MatMulIntegerToFloat takes that scale and its bias itself: no row-scale Mul, no bias Add after it
    (ONNX Runtime's kernel takes only a scalar A scale, and adds the bias before any later Mul).
    ``down_projections=False`` keeps per-token scales where K > N (the FFN output, fed by GELU)."""

    def rewrite(bundle: Path) -> onnx.ModelProto:
        return _per_tensor(onnx.load(str(bundle / "model.int8.onnx")), down_projections)

    return rewrite


def int8_static_scales(bundle: Path) -> onnx.ModelProto:
    """As ``per-tensor-but-ffn-out``, but each tensor's scale is a constant: its largest magnitude on
    the export's calibration sentences / 127. No reductions at run time, and a text's vector no longer
    depends on its batch; text unlike the calibration gets scales that do not fit it."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    groups = _per_tensor_groups(model, down_projections=False)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(q.input[0], onnx.TensorProto.FLOAT, None) for q in groups)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    encoder = load(str(bundle), variant="int8", provider="cpu")
    corpus = corpus_sentences(CALIBRATION_SENTENCES)  # and their short prefixes, as the export calibrates
    tokenized = encoder.tokenize(corpus + short_texts(corpus[:32]))
    absmax = np.zeros(len(groups))
    for batch in length_sorted_batches(tokenized, 32, encoder.tokenizer.pad_id):
        rows = session.run([q.input[0] for q in groups], batch.feeds(encoder.engine.manifest.inputs))
        absmax = np.maximum(absmax, [np.abs(r).max() for r in rows])
    encoder.close()
    return _per_tensor(model, down_projections=False, static={q.name: float(m) / 127 for q, m in zip(groups, absmax)})


def _per_tensor_groups(model: onnx.ModelProto, down_projections: bool) -> list[onnx.NodeProto]:
    """The int8 graph's per-token QuantizeLinear nodes to make per tensor (all, or all but K > N)."""
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    chosen = []
    for q in [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.name.startswith("int8_")]:
        k, n = weights[readers[q.output[0]][0].input[1]].dims
        if down_projections or k <= n:
            chosen.append(q)
    return chosen


def _per_tensor(model: onnx.ModelProto, down_projections: bool, static: dict[str, float] | None = None) -> onnx.ModelProto:
    """``static``: QuantizeLinear name -> its constant scale; otherwise each tensor's scale is computed per run."""
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    replaced: dict[str, list[onnx.NodeProto]] = {}
    dropped: set[str] = set()
    renamed: dict[str, str] = {}  # output of a dropped Mul or Add -> what now holds the same value
    outputs = {o.name for o in model.graph.output}
    for q in _per_tensor_groups(model, down_projections):
        rows, tag = q.input[0], q.name
        if static is not None:
            model.graph.initializer.append(numpy_helper.from_array(np.array(static[tag], np.float32), f"{tag}_tscale"))
            scale_nodes = []
        else:
            scale_nodes = [
                helper.make_node("ReduceMax", [rows], [f"{tag}_tmax"], name=f"{tag}_tmax", keepdims=0),
                helper.make_node("ReduceMin", [rows], [f"{tag}_tmin"], name=f"{tag}_tmin", keepdims=0),
                helper.make_node("Neg", [f"{tag}_tmin"], [f"{tag}_tneg"], name=f"{tag}_tneg"),
                helper.make_node("Max", [f"{tag}_tmax", f"{tag}_tneg", "int8_eps"], [f"{tag}_tabs"], name=f"{tag}_tabs"),
                helper.make_node("Mul", [f"{tag}_tabs", "int8_inv127"], [f"{tag}_tscale"], name=f"{tag}_tscale"),
            ]  # fmt: skip
        replaced[q.name] = [
            *scale_nodes,
            helper.make_node("QuantizeLinear", [rows, f"{tag}_tscale", "int8_zero_point"], list(q.output), name=f"{tag}_tensor"),
        ]
        dropped.add(q.name)
        for call in readers[q.output[0]]:
            (scaling,) = readers[call.output[0]]  # the row-scale Mul
            (reshape,) = readers[scaling.output[0]]
            inputs = [*call.input[:2], f"{tag}_tscale", call.input[3], call.input[4], ""]
            renamed[scaling.output[0]] = call.output[0]
            dropped.add(scaling.name)
            add = readers[reshape.output[0]]
            bias = [i for i in add[0].input if i in weights] if len(add) == 1 and add[0].op_type == "Add" else []
            if bias and len(weights[bias[0]].dims) == 1 and add[0].output[0] not in outputs:
                inputs.append(bias[0])
                renamed[add[0].output[0]] = reshape.output[0]
                dropped.add(add[0].name)
            replaced[call.name] = [
                helper.make_node("MatMulIntegerToFloat", inputs, list(call.output), name=f"{call.name}_tensor", domain="com.microsoft")
            ]
            dropped.add(call.name)
    nodes = [new for node in model.graph.node for new in [*replaced.get(node.name, []), node] if new.name not in dropped]
    for node in nodes:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)
    return model


def int8_multi_head_attention(bundle: Path) -> onnx.ModelProto:
    """The int8 graph with each layer's float attention (bias Adds, head Reshapes and Transposes, QK^T,
    scale, additive mask, Softmax, PV, merge) as one com.microsoft.MultiHeadAttention that takes the
    Q, K, V projections, their biases and the attention mask as key lengths (key_padding_mask)."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    constants = {**weights, **{n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"}}
    producer = {out: node for node in model.graph.node for out in node.output}
    readers = graph_tools.readers(model)

    def projection(transpose: onnx.NodeProto) -> tuple[str, np.ndarray]:
        """(the projection's output before its bias, the bias) behind a head-splitting Reshape + Transpose."""
        add = producer[producer[transpose.input[0]].input[0]]
        bias = [i for i in add.input if i in weights]
        if add.op_type != "Add" or len(bias) != 1:
            raise ValueError(f"{add.name}: expected the projection's bias Add before the heads' Reshape and Transpose")
        return next(i for i in add.input if i not in weights), weights[bias[0]]

    replaced: dict[str, onnx.NodeProto] = {}
    for softmax in [n for n in model.graph.node if n.op_type == "Softmax"]:
        masked = producer[softmax.input[0]]
        scaled = next(producer[i] for i in masked.input if i in producer and producer[i].op_type == "Mul")
        scores = producer[scaled.input[0]]
        (weighted,) = readers[softmax.output[0]]
        (merge,) = readers[readers[weighted.output[0]][0].output[0]]  # Transpose back, then the Reshape to [B, S, D]
        (q, bq), (k, bk), (v, bv) = (projection(producer[t]) for t in (scores.input[0], scores.input[1], weighted.input[1]))
        scale = float(constants[scaled.input[1]])
        heads = bq.size // round(1 / scale**2)
        tag = merge.name + "_mha"
        model.graph.initializer.append(numpy_helper.from_array(np.concatenate([bq, bk, bv]), f"{tag}_bias"))
        replaced[merge.name] = helper.make_node(
            "MultiHeadAttention", [q, k, v, f"{tag}_bias", "mha_key_padding_mask"], list(merge.output), name=tag,
            domain="com.microsoft", num_heads=heads, scale=scale,
        )  # fmt: skip
    if not replaced:
        raise ValueError("no attention (Softmax after a scaled, masked QK^T) found in the int8 graph")
    cast = helper.make_node("Cast", ["attention_mask"], ["mha_key_padding_mask"], name="mha_key_padding_mask", to=onnx.TensorProto.INT32)
    nodes = [cast, *(replaced.get(n.name, n) for n in model.graph.node)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)  # the float attention nodes nothing reads now
    return model
