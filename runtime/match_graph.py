"""BERTScore's greedy matching as a small ONNX graph, written at the wire level and run by ONNX Runtime.

Why not numpy's matmul: a pair's similarity matrix is small (30 x 384 x 30), and numpy's OpenBLAS
splits such products over threads; next to the encoder's own threads (or any other load) that was
measured 5-40x slower than one thread (0.3-15 ms a pair instead of 0.08), and numpy cannot be told
to use one thread without a dependency the runtime does not take. ONNX Runtime can: this graph runs
with one thread and no spinning, a padded block of pairs (layers folded into the batch) per run.
The same graph can run in the JavaScript package.

Graph (opset 11): inputs cand [N, Lc, D], ref [N, Lr, D], cand_weight [N, Lc], ref_weight [N, Lr],
cand_pad [N, Lc, 1], ref_pad [N, 1, Lr] (0 for real tokens, -1e4 for padding, so padding is never a
best match and stays finite); sim = cand x ref^T + cand_pad + ref_pad; precision = sum(max over Lr of
sim * cand_weight), recall = sum(max over Lc of sim * ref_weight), each [N].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .protowire import encode_message_field, encode_varint
from .session import SessionConfig, create_session, ort

PAD = np.float32(-1e4)  # below any cosine (>= -1) by far, and finite: padding rows times weight 0 stay 0
FLOAT, INT, INTS = 1, 2, 7  # TensorProto.FLOAT; AttributeProto.INT, INTS
SINGLE_THREAD = SessionConfig(provider="cpu", threads=1, entries=(("session.intra_op.allow_spinning", "0"),))


def _varint_field(number: int, value: int) -> bytes:
    return encode_varint(number << 3) + encode_varint(value)


def _string(number: int, text: str) -> bytes:
    return encode_message_field(number, text.encode())


def _attribute(name: str, value: int | list[int]) -> bytes:
    if isinstance(value, int):
        body = _string(1, name) + _varint_field(20, INT) + _varint_field(3, value)
    else:
        body = _string(1, name) + _varint_field(20, INTS) + b"".join(_varint_field(8, v) for v in value)
    return encode_message_field(5, body)


def _node(op: str, inputs: list[str], output: str, **attributes: int | list[int]) -> bytes:
    body = b"".join(_string(1, i) for i in inputs) + _string(2, output) + _string(3, output) + _string(4, op)
    return encode_message_field(1, body + b"".join(_attribute(k, v) for k, v in attributes.items()))


def _tensor(field: int, name: str, dims: list[str]) -> bytes:
    """A float tensor input or output (ValueInfoProto) with named dimensions ("1" for a fixed 1)."""
    shape = b"".join(encode_message_field(1, _varint_field(1, 1) if d == "1" else _string(2, d)) for d in dims)
    tensor_type = _varint_field(1, FLOAT) + encode_message_field(2, shape)
    return encode_message_field(field, _string(1, name) + encode_message_field(2, encode_message_field(1, tensor_type)))


def greedy_graph() -> bytes:
    """The ModelProto bytes of the matching graph."""
    nodes = [
        _node("Transpose", ["ref"], "ref_t", perm=[0, 2, 1]),
        _node("MatMul", ["cand", "ref_t"], "raw"),  # [N, Lc, D] x [N, D, Lr] -> [N, Lc, Lr]
        _node("Add", ["raw", "cand_pad"], "sim_c"),
        _node("Add", ["sim_c", "ref_pad"], "sim"),
        _node("ReduceMax", ["sim"], "best_c", axes=[2], keepdims=0),  # [N, Lc]
        _node("ReduceMax", ["sim"], "best_r", axes=[1], keepdims=0),  # [N, Lr]
        _node("Mul", ["best_c", "cand_weight"], "weighted_c"),
        _node("Mul", ["best_r", "ref_weight"], "weighted_r"),
        _node("ReduceSum", ["weighted_c"], "precision", axes=[1], keepdims=0),
        _node("ReduceSum", ["weighted_r"], "recall", axes=[1], keepdims=0),
    ]
    inputs = [
        _tensor(11, "cand", ["N", "Lc", "D"]),
        _tensor(11, "ref", ["N", "Lr", "D"]),
        _tensor(11, "cand_weight", ["N", "Lc"]),
        _tensor(11, "ref_weight", ["N", "Lr"]),
        _tensor(11, "cand_pad", ["N", "Lc", "1"]),
        _tensor(11, "ref_pad", ["N", "1", "Lr"]),
    ]
    outputs = [_tensor(12, "precision", ["N"]), _tensor(12, "recall", ["N"])]
    graph = b"".join(nodes) + _string(2, "bertscore_greedy_match") + b"".join(inputs) + b"".join(outputs)
    opset = encode_message_field(8, _string(1, "") + _varint_field(2, 11))
    return _varint_field(1, 7) + opset + encode_message_field(7, graph)  # ir_version 7, opset 11, graph


@lru_cache(maxsize=1)
def greedy_session() -> ort.InferenceSession:
    """One session per process, single-threaded, shared by every caller (ONNX Runtime's run is thread-safe)."""
    return create_session(greedy_graph(), SINGLE_THREAD, "the BERTScore matching graph")
