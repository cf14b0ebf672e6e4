"""The three tiny pooling graphs of a bundle: mean, max and cls over real tokens only.

The runtime runs them on the same execution provider as the encoder, so pooling happens
where the hidden states already are and only [batch, hidden] comes back.
Inputs: hidden_state float32 [batch, sequence, hidden], attention_mask int64 [batch, sequence]
(1 for real tokens). Output: pooled float32 [batch, hidden].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..runtime.manifest import POOLING_INPUTS, POOLING_KINDS, POOLING_OUTPUT, pooling_file

OPSET = 17


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _real_tokens() -> list[onnx.NodeProto]:
    """mask3 (bool [batch, seq, 1]) and real (hidden states with padding set to 0).

    Where, not a multiplication by the mask: Inf in a padding row times 0 would be NaN.
    """
    return [
        _const("axis1", np.array([1], dtype=np.int64)),
        _const("axis2", np.array([2], dtype=np.int64)),
        _const("zero", np.array(0.0, dtype=np.float32)),
        helper.make_node("Cast", ["attention_mask"], ["mask_b"], to=TensorProto.BOOL),
        helper.make_node("Unsqueeze", ["mask_b", "axis2"], ["mask3"]),
        helper.make_node("Where", ["mask3", "hidden_state", "zero"], ["real"]),
    ]


def _mean() -> list[onnx.NodeProto]:
    """sum over real tokens / max(count, 1), as sentence-transformers does."""
    return [
        *_real_tokens(),
        _const("one", np.array(1.0, dtype=np.float32)),
        helper.make_node("ReduceSum", ["real", "axis1"], ["total"], keepdims=0),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count_safe"]),
        helper.make_node("Div", ["total", "count_safe"], [POOLING_OUTPUT]),
    ]


def _max() -> list[onnx.NodeProto]:
    """max over real tokens; padding becomes the lowest float. ReduceMax may skip a NaN, so
    0 * sum(real tokens) is added: NaN or Inf in any real token makes the result NaN."""
    return [
        *_real_tokens(),
        _const("lowest", np.array(np.finfo(np.float32).min, dtype=np.float32)),
        helper.make_node("Where", ["mask3", "hidden_state", "lowest"], ["masked"]),
        helper.make_node("ReduceMax", ["masked"], ["maximum"], axes=[1], keepdims=0),
        helper.make_node("ReduceSum", ["real", "axis1"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["poison"]),
        helper.make_node("Add", ["maximum", "poison"], [POOLING_OUTPUT]),
    ]


def _cls() -> list[onnx.NodeProto]:
    """The first token's state ([CLS] for BERT-style tokenizers, <s> for RoBERTa-style ones)."""
    return [
        _const("first", np.array(0, dtype=np.int64)),
        helper.make_node("Gather", ["hidden_state", "first"], [POOLING_OUTPUT], axis=1),
    ]


BUILDERS = {"mean": _mean, "max": _max, "cls": _cls}


def build_pooling_graph(kind: str, hidden_size: int) -> onnx.ModelProto:
    """The ONNX model for one pooling kind."""
    inputs = [
        helper.make_tensor_value_info(POOLING_INPUTS[0], TensorProto.FLOAT, ["batch", "sequence", hidden_size]),
        helper.make_tensor_value_info(POOLING_INPUTS[1], TensorProto.INT64, ["batch", "sequence"]),
    ]
    output = helper.make_tensor_value_info(POOLING_OUTPUT, TensorProto.FLOAT, ["batch", hidden_size])
    graph = helper.make_graph(BUILDERS[kind](), f"layerwise_pool_{kind}", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="layerwise")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def write_pooling_graphs(folder: Path, hidden_size: int) -> dict[str, Path]:
    """Write mean, max and cls pooling graphs into ``folder``; return their paths by kind."""
    paths = {}
    for kind in POOLING_KINDS:
        paths[kind] = folder / pooling_file(kind)
        onnx.save_model(build_pooling_graph(kind, hidden_size), str(paths[kind]))
    return paths
