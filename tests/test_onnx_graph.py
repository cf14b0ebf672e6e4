"""The wire-level ONNX reader: cuts graphs exactly and finds every external-data reference."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from layerwise.runtime.onnx_graph import cut_model, external_data_locations, output_names
from layerwise.runtime.protowire import WireFormatError, encode_varint, iter_fields, read_varint


def _chain(depth: int = 3) -> onnx.ModelProto:
    """x -> Add w0 -> h1 -> Add w1 -> h2 ...: every intermediate is an output, as in our bundles."""
    nodes, inits, outputs = [], [], []
    previous = "x"
    for i in range(depth):
        inits.append(numpy_helper.from_array(np.full((2,), i + 1, dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("Add", [previous, f"w{i}"], [f"h{i}"]))
        outputs.append(helper.make_tensor_value_info(f"h{i}", TensorProto.FLOAT, [2]))
        previous = f"h{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_varints_round_trip():
    for value in (0, 1, 127, 128, 300, 2**31, 2**63 - 1):
        assert read_varint(memoryview(encode_varint(value)), 0) == (value, len(encode_varint(value)))
    assert [(n, w, v) for n, w, v, _ in iter_fields(memoryview(b"\x08\x96\x01"))] == [(1, 0, 150)]
    with pytest.raises(WireFormatError, match="truncated varint"):
        read_varint(memoryview(b"\x80"), 0)
    with pytest.raises(WireFormatError, match="runs past the end"):
        list(iter_fields(memoryview(b"\x0a\x05ab")))


def test_cut_keeps_only_what_the_outputs_need():
    model = _chain()
    cut = onnx.load_from_string(cut_model(model.SerializeToString(), ["h1"]))
    onnx.checker.check_model(cut)
    assert [n.output[0] for n in cut.graph.node] == ["h0", "h1"]
    assert [t.name for t in cut.graph.initializer] == ["w0", "w1"]
    assert output_names(cut.SerializeToString()) == ["h1"]
    x = np.array([0.5, -1.0], dtype=np.float32)
    full = ort.InferenceSession(model.SerializeToString()).run(["h1"], {"x": x})[0]
    np.testing.assert_array_equal(ort.InferenceSession(cut.SerializeToString()).run(None, {"x": x})[0], full)


def test_cut_refuses_unknown_outputs():
    with pytest.raises(ValueError, match=r"the model has no outputs named \['h9'\]"):
        cut_model(_chain().SerializeToString(), ["h9"])


def test_external_data_is_found_in_initializers_constants_and_subgraphs():
    model = _chain(1)
    model.graph.initializer[0].external_data.add(key="location", value="top.bin")
    constant = numpy_helper.from_array(np.ones(2, dtype=np.float32), "c")
    constant.external_data.add(key="location", value="../const.bin")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value=constant)], "b", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]
    )
    model.graph.node.append(helper.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=branch))
    assert external_data_locations(model.SerializeToString()) == {"top.bin", "../const.bin"}
