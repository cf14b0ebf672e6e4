"""Inspect and cut ONNX models at the protobuf wire level, without the onnx package.

Two jobs: list every external-data file an ONNX model refers to (so the bundle can
refuse paths that leave it before ONNX Runtime reads anything), and cut a graph down
to the nodes a chosen set of outputs needs (so asking for layer k of L costs ~k/L).
Field numbers come from onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto).
Not handled: control-flow subgraphs that read outer-scope values while being cut away
(BERT-family graphs have none).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .protowire import FieldValue, encode_message_field, iter_fields

MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_OUTPUT, GRAPH_VALUE_INFO, GRAPH_SPARSE_INITIALIZER = 1, 5, 12, 13, 15
NODE_INPUT, NODE_OUTPUT, NODE_ATTRIBUTE = 1, 2, 5
ATTR_TENSOR, ATTR_GRAPH, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS = 5, 6, 10, 11, 22, 23
TENSOR_NAME, TENSOR_EXTERNAL_DATA = 8, 13
SPARSE_VALUES, SPARSE_INDICES = 1, 2
ENTRY_KEY, ENTRY_VALUE = 1, 2
VALUE_INFO_NAME = 1


def _messages(buf: memoryview, number: int) -> Iterator[memoryview]:
    for field, _, value, _ in iter_fields(buf):
        if field == number and isinstance(value, memoryview):  # length-delimited: a nested message
            yield value


def _string(buf: memoryview, number: int) -> str | None:
    for value in _messages(buf, number):
        return bytes(value).decode("utf-8")
    return None


def _name(value: FieldValue, number: int) -> str | None:
    """The name field of a nested message; None when the field is not a message (a malformed graph keeps it out)."""
    return _string(value, number) if isinstance(value, memoryview) else None


def _strings(buf: memoryview, number: int) -> list[str]:
    return [bytes(v).decode("utf-8") for v in _messages(buf, number)]


def _graph(model: memoryview) -> memoryview:
    for graph in _messages(model, MODEL_GRAPH):
        return graph
    raise ValueError("the ONNX model has no graph")


def _tensor_locations(tensor: memoryview) -> Iterator[str]:
    for entry in _messages(tensor, TENSOR_EXTERNAL_DATA):
        if _string(entry, ENTRY_KEY) == "location":
            yield _string(entry, ENTRY_VALUE) or ""


def _sparse_locations(sparse: memoryview) -> Iterator[str]:
    for number in (SPARSE_VALUES, SPARSE_INDICES):
        for tensor in _messages(sparse, number):
            yield from _tensor_locations(tensor)


def _graph_locations(graph: memoryview) -> Iterator[str]:
    for tensor in _messages(graph, GRAPH_INITIALIZER):
        yield from _tensor_locations(tensor)
    for sparse in _messages(graph, GRAPH_SPARSE_INITIALIZER):
        yield from _sparse_locations(sparse)
    for node in _messages(graph, GRAPH_NODE):
        for attribute in _messages(node, NODE_ATTRIBUTE):
            for number in (ATTR_TENSOR, ATTR_TENSORS):
                for tensor in _messages(attribute, number):
                    yield from _tensor_locations(tensor)
            for number in (ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS):
                for sparse in _messages(attribute, number):
                    yield from _sparse_locations(sparse)
            for number in (ATTR_GRAPH, ATTR_GRAPHS):
                for subgraph in _messages(attribute, number):
                    yield from _graph_locations(subgraph)


def external_data_locations(model: bytes | memoryview) -> set[str]:
    """Every external-data ``location`` string in the model, subgraphs included."""
    return set(_graph_locations(_graph(memoryview(model))))


def output_names(model: bytes | memoryview) -> list[str]:
    """The graph's output names, in order."""
    graph = _graph(memoryview(model))
    return [_string(v, VALUE_INFO_NAME) or "" for v in _messages(graph, GRAPH_OUTPUT)]


def cut_model(model: bytes | memoryview, keep_outputs: Iterable[str]) -> bytes:
    """Return the model with only ``keep_outputs`` as outputs and only the nodes they need.

    Nodes are assumed topologically sorted (the ONNX rule), so one backward pass finds
    every needed node; unused initializers and value_info entries are dropped with them.
    """
    model = memoryview(model)
    graph = _graph(model)
    keep = list(keep_outputs)
    missing = set(keep) - set(output_names(model))
    if missing:
        raise ValueError(f"the model has no outputs named {sorted(missing)}")

    nodes = list(_messages(graph, GRAPH_NODE))
    needed = set(keep)
    kept_nodes: set[int] = set()
    for index in range(len(nodes) - 1, -1, -1):
        if needed.intersection(_strings(nodes[index], NODE_OUTPUT)):
            kept_nodes.add(index)
            needed.update(name for name in _strings(nodes[index], NODE_INPUT) if name)

    parts: list[bytes] = []
    node_index = 0
    for number, _, value, raw in iter_fields(graph):
        if number == GRAPH_NODE:
            if node_index in kept_nodes:
                parts.append(bytes(raw))
            node_index += 1
        elif number == GRAPH_INITIALIZER:
            if _name(value, TENSOR_NAME) in needed:
                parts.append(bytes(raw))
        elif number == GRAPH_OUTPUT:
            if _name(value, VALUE_INFO_NAME) in keep:
                parts.append(bytes(raw))
        elif number == GRAPH_VALUE_INFO:
            if _name(value, VALUE_INFO_NAME) in needed:
                parts.append(bytes(raw))
        else:
            parts.append(bytes(raw))
    new_graph = b"".join(parts)

    out: list[bytes] = []
    for number, _, _, raw in iter_fields(model):
        out.append(encode_message_field(MODEL_GRAPH, new_graph) if number == MODEL_GRAPH else bytes(raw))
    return b"".join(out)
