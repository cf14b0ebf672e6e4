"""Plain ONNX Runtime on the bundle's fp32 graph: what a user gets with the graph and no layerwise runtime."""

from __future__ import annotations

from .base import Context, Peer, ort_session_options, versions
from .bundle_graph import PIPELINE_NOTES, fp32_graph, graph_feeds, pooled_embedder, wanted_outputs


def build_onnxruntime(ctx: Context) -> Peer:
    """InferenceSession(bundle fp32 graph), default graph optimizations, asking only for the job's outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(fp32_graph(ctx)), ort_session_options(ctx.threads), providers=["CPUExecutionProvider"])
    outputs, inputs = wanted_outputs(ctx), {i.name for i in session.get_inputs()}
    return Peer(
        embed=pooled_embedder(ctx, lambda batch: session.run(outputs, graph_feeds(batch, inputs))),
        threads_controlled=True,
        notes=(
            f"onnxruntime.InferenceSession(<bundle>/model.fp32.onnx, intra_op_num_threads={ctx.threads}, "
            f"ORT's default online optimizations), run({len(outputs)} outputs); {PIPELINE_NOTES}"
        ),
        versions=versions("onnxruntime", "tokenizers"),
    )
