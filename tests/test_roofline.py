"""The roofline's ceilings run the kernels they claim, on the model's own shapes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from benchmarks.jobs.roofline import _matmul_graph, flops_per_token, int8_kernel_form


def test_int8_variant_ceiling_is_the_variants_call_with_7_bit_weights_and_computes_it():
    graph = _matmul_graph(8, 16, 4, "int8_variant", 63, "MatMulIntegerToFloat")
    model = onnx.load_from_string(graph)
    w = numpy_helper.to_array(model.graph.initializer[0]).astype(np.int64)
    scale = numpy_helper.to_array(model.graph.initializer[2])
    assert model.graph.node[0].op_type == "MatMulIntegerToFloat" and np.abs(w).max() <= 63
    a = np.random.default_rng(2).integers(0, 256, size=(8, 16), dtype=np.uint8)
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    want = ((a.astype(np.int64) - 128) @ w) * scale
    np.testing.assert_allclose(session.run(None, {"a": a})[0], want, rtol=1e-5)


def test_shapes_come_from_the_int8_graph_and_match_the_config(minilm_bundle, minilm_dir):
    config = json.loads((minilm_dir / "config.json").read_text())
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    form = int8_kernel_form(str(minilm_bundle))
    assert form["op_type"] == "MatMulIntegerToFloat" and 0 < form["weight_absmax"] <= 127
    assert sum(k * n * c for (k, n), c in form["shapes"].items()) == layers * (4 * hidden * hidden + 2 * hidden * inter)
    assert flops_per_token(form["shapes"], hidden, layers, 128) == 2.0 * layers * (
        4 * hidden * hidden + 2 * hidden * inter + 2 * 128 * hidden
    )
