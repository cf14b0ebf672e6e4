"""Check a generated Triton model folder: its ``config.pbtxt`` must parse as Triton's own
``ModelConfig`` protobuf (the one tritonclient ships) and agree with the ONNX graph beside it.

What this proves: Triton would accept the text and the tensor names, types and shapes match
the graph. What it does not: that a Triton server loads and runs it (none can run here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runtime.errors import LayerwiseError

ONNX_TO_TRITON = {"tensor(int64)": "TYPE_INT64", "tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16"}


class TritonConfigError(LayerwiseError):
    """A generated Triton config does not parse, or disagrees with its graph."""


def parse_config(text: str) -> Any:
    """``config.pbtxt`` text -> Triton's ``inference.ModelConfig`` message (from tritonclient)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as e:
        raise ImportError(f"checking a Triton config needs tritonclient ({e.name} is missing): pip install 'layerwise[triton]'") from e
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise TritonConfigError(f"config.pbtxt is not a valid Triton ModelConfig: {e}") from e


def check_model(model_dir: str | Path) -> Any:
    """Parse ``model_dir/config.pbtxt`` and check it against ``model_dir/1/model.onnx``; return the config."""
    import onnxruntime as ort
    from tritonclient.grpc import model_config_pb2 as pb

    folder = Path(model_dir)
    config = parse_config((folder / "config.pbtxt").read_text())
    problems = []
    if config.name != folder.name:
        problems.append(f"name {config.name!r} is not the folder name {folder.name!r}")
    if config.backend != "onnxruntime" or config.max_batch_size < 1:
        problems.append(f"backend {config.backend!r} / max_batch_size {config.max_batch_size}: expected onnxruntime and >= 1")
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    for kind, declared, actual in (("input", config.input, session.get_inputs()), ("output", config.output, session.get_outputs())):
        if [t.name for t in declared] != [a.name for a in actual]:
            problems.append(f"{kind}s {[t.name for t in declared]} differ from the graph's {[a.name for a in actual]}")
            continue
        for tensor, arg in zip(declared, actual):
            data_type = pb.DataType.Name(tensor.data_type)
            graph_dims = [d if isinstance(d, int) else -1 for d in arg.shape[1:]]  # the graph's batch dimension is Triton's
            fits = len(tensor.dims) == len(graph_dims) and all(g in (-1, d) for d, g in zip(tensor.dims, graph_dims))
            if data_type != ONNX_TO_TRITON.get(arg.type) or not fits:
                problems.append(
                    f"{kind} {tensor.name!r} is {data_type} {list(tensor.dims)}, the graph has {arg.type} {graph_dims} after the batch"
                )
    if not config.HasField("dynamic_batching") or not config.instance_group:
        problems.append("dynamic_batching and instance_group must be set")
    if problems:
        raise TritonConfigError(f"{folder / 'config.pbtxt'} does not match its graph: " + "; ".join(problems))
    return config
