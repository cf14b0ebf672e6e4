"""Run an ONNX graph on saved feeds and save every output; run under QEMU by test_int8_portability.

It also runs a uint8 x int8 product that only int16 pair-summing kernels get wrong, and saves
whether they did: proof of which ONNX Runtime kernels this process really used (/proc/cpuinfo
under qemu-user still describes the host).
"""

import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def pair_sums_saturate() -> bool:
    """255 * 127 + 255 * 127 = 64770 does not fit int16: exact kernels give it, AVX2 ones clip it."""
    weight = np.full((2, 1), 127, dtype=np.int8)
    node = helper.make_node("MatMulIntegerToFloat", ["a", "w", "a_scale", "w_scale", "a_zero"], ["y"], domain="com.microsoft")
    graph = helper.make_graph(
        [node], "pair",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(1, np.float32), "a_scale"),
         numpy_helper.from_array(np.ones(1, np.float32), "w_scale"), numpy_helper.from_array(np.array(0, np.uint8), "a_zero")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    y = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"a": np.full((1, 2), 255, np.uint8)}
    )[0]
    return float(y[0, 0]) != 64770.0


graph, feeds_path, out_path = sys.argv[1:4]
with np.load(feeds_path) as saved:
    feeds = {k: saved[k] for k in saved.files}
session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
np.savez(out_path, pair_sums_saturate=np.array(pair_sums_saturate()), **outputs)
