"""Small, checked edits of ONNX graphs: load/save, share identical weights, drop dead nodes."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import onnx
from onnx import numpy_helper

EXTERNAL_DATA_THRESHOLD = 1 << 30  # 1 GiB of weights: protobuf stops at 2 GiB, so stay well clear


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path), load_external_data=True)


def weight_bytes(model: onnx.ModelProto) -> int:
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def save(model: onnx.ModelProto, path: Path, external_threshold: int = EXTERNAL_DATA_THRESHOLD) -> list[Path]:
    """Save a model; above ``external_threshold`` bytes of weights they go to one ``<name>.data`` file.

    Returns the files written, graph first. Large models are checked from their path, as
    the ONNX checker requires beyond protobuf's 2 GiB limit.
    """
    _import_used_domains(model)
    if weight_bytes(model) > external_threshold:
        data = path.with_name(path.name + ".data")
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name, size_threshold=1024)
        onnx.checker.check_model(str(path))
        return [path, data]
    onnx.save_model(model, str(path))
    onnx.checker.check_model(str(path))
    return [path]


def _import_used_domains(model: onnx.ModelProto) -> None:
    """Declare every operator domain the graph uses (fusions add com.microsoft ops)."""
    imported = {o.domain for o in model.opset_import}
    for domain in sorted({n.domain for n in model.graph.node} - imported - {"ai.onnx"}):
        model.opset_import.append(onnx.helper.make_opsetid(domain, 1))


def total_bytes(path: Path) -> int:
    """Size of a saved graph with its external-data file, if any."""
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(node.op_type for node in model.graph.node))


def share_identical_initializers(model: onnx.ModelProto) -> int:
    """Make nodes that use byte-identical weights use one initializer; return how many were dropped.

    ALBERT applies one layer's weights L times, but fusion packs a copy per application.
    """
    keep: dict[tuple[int, tuple[int, ...], str], str] = {}
    rename: dict[str, str] = {}
    for tensor in model.graph.initializer:
        array = numpy_helper.to_array(tensor)
        key = (tensor.data_type, tuple(tensor.dims), hashlib.sha256(array.tobytes()).hexdigest())
        if key in keep:
            rename[tensor.name] = keep[key]
        else:
            keep[key] = tensor.name
    if not rename:
        return 0
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    kept = [t for t in model.graph.initializer if t.name not in rename]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return len(rename)


def readers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """Each tensor name -> the nodes that read it, in graph order."""
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def prune_dead_nodes(model: onnx.ModelProto) -> int:
    """Remove nodes and initializers no graph output depends on; return how many nodes went."""
    needed = {o.name for o in model.graph.output}
    alive = []
    for node in reversed(model.graph.node):
        if needed.intersection(node.output):
            alive.append(node)
            needed.update(i for i in node.input if i)
    removed = len(model.graph.node) - len(alive)
    del model.graph.node[:]
    model.graph.node.extend(reversed(alive))
    initializers = [t for t in model.graph.initializer if t.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    value_info = [v for v in model.graph.value_info if v.name in needed]
    del model.graph.value_info[:]
    model.graph.value_info.extend(value_info)
    return removed


def rename_tensor(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename a tensor everywhere it is produced or consumed."""
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
