"""The compact edge bundle: an int8 word-embedding table and ORT-format graphs.

Applied to the int8 graph after it is built, whatever scheme its MatMuls use. The
word-embedding table ([vocab, hidden] float32: 47 MB of MiniLM's 59 MB int8 file) becomes
int8 with one float32 scale per block of BLOCK values of a row. It is read with standard
operators only (Gather, Cast, Mul, Reshape), so the graph runs on every ONNX Runtime build:
WebAssembly, mobile and reduced-operator builds included. Not handled: position and
token-type tables (small), and tables that other nodes read besides the lookup (tied heads).

The ORT-format copies are made with ONNX Runtime's own converter in its portable
"Runtime" optimisation style (basic optimisations applied, platform-dependent ones left to
the loading build), with the `required_operators.config` a reduced build is compiled from.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ExportError

log = logging.getLogger("layerwise.export")

BLOCK = 32  # values per scale: 1/8 byte of scale per value, error bounded by each block's own maximum
HIDDEN_STATE_0_BAR = 0.999  # mean-pooled cosine of the embedding output against PyTorch, every text
ORT_STYLE = "Runtime"
REQUIRED_OPERATORS = "required_operators.config"


def _word_embedding_lookup(model: onnx.ModelProto) -> tuple[onnx.NodeProto, onnx.TensorProto]:
    """The Gather that reads rows of a [vocab, hidden] initializer at the graph input ``input_ids``."""
    inits = {t.name: t for t in model.graph.initializer}
    found = [
        n for n in model.graph.node
        if n.op_type == "Gather" and n.input[0] in inits and n.input[1] == "input_ids" and len(inits[n.input[0]].dims) == 2
    ]
    if len(found) != 1:
        raise ExportError(f"--edge needs exactly one word-embedding lookup (Gather of a 2-D weight at input_ids); found {len(found)}")
    node, table = found[0], inits[found[0].input[0]]
    readers = [n.name for n in model.graph.node if table.name in n.input and n is not node]
    if readers:
        raise ExportError(f"--edge cannot compress the word embeddings {table.name!r}: {readers} read them too (tied weights)")
    return node, table


def quantize_blocks(table: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """[vocab, hidden] float32 -> int8 [vocab, hidden/block, block] and float32 scales [vocab, hidden/block, 1].

    Symmetric: scale = max|block| / 127, so every value is within scale/2 of its original.
    """
    vocab, hidden = table.shape
    if hidden % block:
        raise ExportError(f"--edge needs a hidden size divisible by {block}, got {hidden}")
    blocks = table.astype(np.float32).reshape(vocab, hidden // block, block)
    scales = np.maximum(np.abs(blocks).max(axis=-1, keepdims=True), 1e-12) / 127.0
    return np.clip(np.round(blocks / scales), -127, 127).astype(np.int8), scales.astype(np.float32)


def compress_word_embeddings(model: onnx.ModelProto, block: int = BLOCK) -> dict[str, Any]:
    """Replace the word-embedding lookup by an int8 block-wise one, in place; return the manifest record."""
    node, table = _word_embedding_lookup(model)
    weights = numpy_helper.to_array(table)
    q, scales = quantize_blocks(weights, block)
    tag, out = "edge_word_embeddings", node.output[0]
    new_inits = [
        numpy_helper.from_array(q, f"{tag}_int8"),
        numpy_helper.from_array(scales, f"{tag}_scales"),
        numpy_helper.from_array(np.array([0, 0, weights.shape[1]], dtype=np.int64), f"{tag}_shape"),
    ]
    new_nodes = [
        helper.make_node("Gather", [f"{tag}_int8", "input_ids"], [f"{tag}_rows"], name=f"{tag}_gather", axis=0),
        helper.make_node("Cast", [f"{tag}_rows"], [f"{tag}_rows_float"], name=f"{tag}_cast", to=TensorProto.FLOAT),
        helper.make_node("Gather", [f"{tag}_scales", "input_ids"], [f"{tag}_row_scales"], name=f"{tag}_gather_scales", axis=0),
        helper.make_node("Mul", [f"{tag}_rows_float", f"{tag}_row_scales"], [f"{tag}_blocks"], name=f"{tag}_scale"),
        helper.make_node("Reshape", [f"{tag}_blocks", f"{tag}_shape"], [out], name=f"{tag}_reshape"),  # 0, 0: batch, sequence kept
    ]
    position = list(model.graph.node).index(node)
    nodes = list(model.graph.node)
    nodes[position : position + 1] = new_nodes
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [t for t in model.graph.initializer if t.name != table.name] + new_inits
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return {
        "word_embeddings": table.name,
        "method": f"int8, one float32 scale per {block} values of a row (Gather + Cast + Mul + Reshape: standard operators)",
        "block": block,
        "bytes_before": int(weights.nbytes),
        "bytes_after": int(q.nbytes + scales.nbytes),
    }


def check_hidden_state_0(parity: dict[str, Any], bar: float = HIDDEN_STATE_0_BAR) -> dict[str, Any]:
    """Raise unless the embedding output's mean-pooled cosine to PyTorch (the variant's parity
    report, measured by the exporter on its parity set) is at least ``bar`` for every text."""
    got = parity["layers"][0]["pooled_cos_min"]
    if not got >= bar:
        raise ExportError(
            f"--edge: hidden_state_0 mean-pooled cosine to PyTorch is {got:.5f} on the worst text, below {bar}; "
            "the int8 word-embedding table is too coarse for this checkpoint: export without --edge"
        )
    return {"hidden_state_0_pooled_cos_min": round(got, 6), "bar": bar}


def write_ort_format(bundle: Path, graphs: list[str], entry: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """ORT-format copies of ``graphs`` (bundle-relative .onnx names) beside them, plus
    required_operators.config; return the manifest section. ``entry`` makes a file entry."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    with tempfile.TemporaryDirectory(dir=bundle) as scratch:
        source, out = Path(scratch) / "in", Path(scratch) / "out"
        source.mkdir()
        for name in graphs:
            shutil.copyfile(bundle / name, source / name)
        said = io.StringIO()  # it prints every scratch path it reads and writes: shown only on failure or at debug level
        converter_log = logging.getLogger("ort_format_model.utils")  # logs the operator config's scratch path at INFO
        level = converter_log.level
        converter_log.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                convert_onnx_models_to_ort(source, out, [OptimizationStyle[ORT_STYLE]])
        finally:
            converter_log.setLevel(level)
        log.debug("ONNX Runtime's ORT-format converter said:\n%s", said.getvalue())
        converted = {}
        for name in graphs:
            made = sorted(out.glob(f"{Path(name).stem}*.ort"))
            if len(made) != 1:
                raise ExportError(
                    f"ONNX Runtime's ORT-format converter made {[m.name for m in made]} for {name}; expected one file. "
                    f"It said: {said.getvalue()[-2000:]}"
                )
            target = bundle / (Path(name).stem + ".ort")
            shutil.move(made[0], target)
            converted[name] = entry(target)
        configs = sorted(out.glob("required_operators*.config"))
        if len(configs) != 1:
            raise ExportError(f"ONNX Runtime's ORT-format converter wrote {[c.name for c in configs]}; expected one operator config")
        operators = [line for line in configs[0].read_text().splitlines() if line and not line.startswith("#")]
        header = "# Operators of " + ", ".join(entry["path"] for entry in converted.values())  # not the converter's scratch paths
        (bundle / REQUIRED_OPERATORS).write_text("\n".join([header, *operators]) + "\n")
    return {
        "optimization_style": ORT_STYLE,
        "graphs": converted,
        "required_operators": entry(bundle / REQUIRED_OPERATORS),
        "use": "ONNX Runtime builds reduced with --include_ops_by_config required_operators.config load the .ort files; "
        "set session.enable_saved_runtime_optimizations=1 to replay the saved optimisations (trusted models only)",
    }
