"""The ``fused`` variant: ONNX Runtime's transformer optimizer, called once and checked.

The optimizer logs and carries on when a pattern does not match; here a missing fusion
is an error: each family (families.py) states the fused operators L layers must give, and
what stays unfused and why. Two repairs make its patterns match our all-hidden-states graphs: ALBERT's
first residual Add gets its inputs in BERT's order, and BERT's embedding output is taken
from the fused EmbedLayerNormalization instead of a second, unfused copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from ..runtime.manifest import output_name
from . import graph_tools
from .errors import FusionError
from .families import family_of

GELU_OPS = ("Gelu", "BiasGelu", "FastGelu", "GemmFastGelu")
MAX_GROWTH = 1.15  # fused file size / fp32 file size


def _put_residual_second(model: onnx.ModelProto) -> int:
    """ALBERT computes ``LayerNorm(hidden + attention)``; the fusion expects the residual second."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    swapped = 0
    for node in model.graph.node:
        feeds_norm = any(c.op_type == "LayerNormalization" for c in consumers.get(node.output[0], []))
        if node.op_type == "Add" and feeds_norm and node.input[0] == output_name(0):
            node.input[0], node.input[1] = node.input[1], node.input[0]
            swapped += 1
    return swapped


def _use_fused_embedding_output(model: onnx.ModelProto) -> None:
    """Serve hidden_state_0 from EmbedLayerNormalization when the optimizer left an unfused copy."""
    embed = next((n for n in model.graph.node if n.op_type == "EmbedLayerNormalization"), None)
    producer = next((n for n in model.graph.node if output_name(0) in n.output), None)
    if embed is None or producer is None or producer is embed or producer.op_type != "LayerNormalization":
        return
    if list(producer.input[1:3]) != list(embed.input[5:7]):
        return  # a different LayerNorm: leave it alone
    producer.output[0] = output_name(0) + "_unfused"
    graph_tools.rename_tensor(model, embed.output[0], output_name(0))
    graph_tools.prune_dead_nodes(model)


def fused_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Fused operators of a graph by type (every Gelu kind counted as Gelu), with the LayerNormalizations left."""
    ops = graph_tools.op_counts(model)
    counts = {op: ops.get(op, 0) for op in ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization")}
    counts["Gelu"] = sum(ops.get(op, 0) for op in GELU_OPS)
    counts["LayerNormalization"] = ops.get("LayerNormalization", 0)
    return counts


def fuse(fp32_path: Path, out_path: Path, config: Any, work_dir: Path) -> dict[str, Any]:
    """Write the fused graph of ``fp32_path`` to ``out_path``; return its operator counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    num_layers = int(config.num_hidden_layers)
    model = graph_tools.load(fp32_path)
    _put_residual_second(model)
    prepared = work_dir / "prefusion.onnx"
    graph_tools.save(model, prepared)

    options = FusionOptions("bert")
    optimized = optimize_model(
        str(prepared),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        optimization_options=options,
        opt_level=0,
        use_gpu=False,
    )
    model = optimized.model
    _use_fused_embedding_output(model)
    shared = graph_tools.share_identical_initializers(model)
    counts = fused_counts(model)

    family = family_of(config.model_type)
    expected = family.fusions(config)
    wrong = {op: (counts[op], n) for op, n in expected.items() if counts[op] != n}
    if wrong:
        detail = ", ".join(f"{op}: {got} (expected {want})" for op, (got, want) in wrong.items())
        raise FusionError(
            f"ONNX Runtime's transformer fusion did not match this {config.model_type} graph: {detail}. "
            "The export uses eager attention because SDPA graphs do not fuse; a changed transformers or "
            "onnxruntime version may have moved the patterns. Export without 'fused' (--variants fp32,int8) meanwhile"
        )
    outputs = [o.name for o in model.graph.output]
    if outputs != [output_name(i) for i in range(num_layers + 1)]:
        raise FusionError(f"fusion changed the graph outputs to {outputs}; every hidden state must stay an output")
    graph_tools.save(model, out_path)
    growth = graph_tools.total_bytes(out_path) / graph_tools.total_bytes(fp32_path)
    if growth > MAX_GROWTH:
        raise FusionError(
            f"the fused graph is {growth:.2f}x the fp32 graph (limit {MAX_GROWTH}x): fusion duplicated weights "
            "that should stay shared"
        )
    record = {
        "fused_operators": counts,
        "expected_fused_operators": expected,
        "shared_initializers": shared,
        "size_vs_fp32": round(growth, 3),
    }
    return {**record, "unfused": family.unfused} if family.unfused else record
