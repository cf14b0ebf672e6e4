"""The ``fused`` variant: ONNX Runtime's transformer optimizer, called once and checked.

The optimizer logs and carries on when a pattern does not match; here a missing fusion
is an error: each family (families.py) states the fused operators L layers must give, and
what stays unfused and why. Two repairs make its patterns match our all-hidden-states graphs: ALBERT's
first residual Add gets its inputs in BERT's order, and BERT's embedding output is taken
from the fused EmbedLayerNormalization instead of a second, unfused copy.

The CPU graph (the ``fused`` variant) then gives its SkipLayerNormalizations back as
Add + LayerNormalization: ONNX Runtime 1.32's CPU SkipLayerNormalization kernel took 3.8x the
time of Add, Add and LayerNormalization on [32, 24, 384] (one thread, AVX-512 VNNI), and made
the fused graph slower than the plain one (0.95x on MiniLM). SKIP_NORM_SESSION_CONFIG keeps
ONNX Runtime from fusing them again when a session is created. The ``fp16`` variant (CUDA)
keeps them.
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
# Every loader of the CPU fused graph sets this (the manifest says so): ORT's online fusion would undo the unfusing.
SKIP_NORM_SESSION_CONFIG = {"optimization.disable_specified_optimizers": "SkipLayerNormFusion"}
SKIP_NORM_REASON = (
    "SkipLayerNormalization given back as Add + LayerNormalization for the CPU: ONNX Runtime's CPU kernel for it "
    "measured 3.8x slower than the unfused ops; session_config keeps ONNX Runtime from fusing them again"
)
MAX_GROWTH = 1.15  # fused file size / fp32 file size


def _put_residual_second(model: onnx.ModelProto) -> int:
    """ALBERT computes ``LayerNorm(hidden + attention)``; the fusion expects the residual second."""
    consumers = graph_tools.readers(model)
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


def unfuse_skip_layer_norms(model: onnx.ModelProto) -> int:
    """Replace each SkipLayerNormalization by (input + bias) + skip -> LayerNormalization; return how many.

    The bias is added first, as in the traced graph. The optional sum output (pre-norm models read it) is
    the Add's; mean and inverse-deviation outputs are training-only and refused if anything reads them.
    """
    if next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) < 17:
        raise FusionError("unfusing SkipLayerNormalization needs opset 17 (LayerNormalization); the fp32 export is older")
    read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        if node.op_type != "SkipLayerNormalization":
            nodes.append(node)
            continue
        outputs = list(node.output) + [""] * (4 - len(node.output))
        if any(name and name in read for name in outputs[1:3]):
            raise FusionError(f"{node.name} has its mean or inverse-deviation output read; it cannot be unfused")
        x, skip, gamma = node.input[:3]
        beta = node.input[3] if len(node.input) > 3 else ""
        bias = node.input[4] if len(node.input) > 4 else ""
        total = outputs[3] or f"{node.name}_sum"
        if bias:
            nodes.append(onnx.helper.make_node("Add", [x, bias], [f"{node.name}_biased"], name=f"{node.name}_bias"))
            x = f"{node.name}_biased"
        nodes.append(onnx.helper.make_node("Add", [x, skip], [total], name=f"{node.name}_add"))
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        norm_inputs = [total, gamma, beta] if beta else [total, gamma]
        norm = onnx.helper.make_node("LayerNormalization", norm_inputs, [outputs[0]], name=f"{node.name}_norm", axis=-1, epsilon=epsilon)
        nodes.append(norm)
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def fused_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Fused operators of a graph by type (every Gelu kind counted as Gelu), with the LayerNormalizations left."""
    ops = graph_tools.op_counts(model)
    counts = {op: ops.get(op, 0) for op in ("EmbedLayerNormalization", "Attention", "SkipLayerNormalization")}
    counts["Gelu"] = sum(ops.get(op, 0) for op in GELU_OPS)
    counts["LayerNormalization"] = ops.get("LayerNormalization", 0)
    return counts


def fuse(fp32_path: Path, out_path: Path, config: Any, work_dir: Path) -> dict[str, Any]:
    """Write the fused graph of ``fp32_path`` to ``out_path`` (as CUDA runs it: SkipLayerNormalization
    kept; ``give_back_skip_norms`` makes the CPU form); return its operator counts."""
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
    record: dict[str, Any] = {
        "fused_operators": counts,  # as fused and checked; skip_layer_norm_unfused says which the CPU graph gives back
        "expected_fused_operators": expected,
        "shared_initializers": shared,
        "size_vs_fp32": round(growth, 3),
    }
    return {**record, "unfused": family.unfused} if family.unfused else record


def give_back_skip_norms(fused_path: Path, out_path: Path) -> dict[str, Any]:
    """Write the CPU form of a fused graph (its SkipLayerNormalizations unfused) to ``out_path``; return
    what to add to its record: how many were given back and the session config every loader must set."""
    model = graph_tools.load(fused_path)
    unfused = unfuse_skip_layer_norms(model)
    graph_tools.save(model, out_path)
    if not unfused:
        return {}
    return {"skip_layer_norm_unfused": {"count": unfused, "reason": SKIP_NORM_REASON}, "session_config": dict(SKIP_NORM_SESSION_CONFIG)}
