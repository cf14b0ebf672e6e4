"""How each variant is made: one table, each builder starting from another variant's graph
(or from PyTorch) and returning the same typed BuildReport.

    fp32  <- PyTorch (torch.onnx.export, every hidden state an output)
    fused <- fp32    (ONNX Runtime's transformer fusions, counted and checked; SkipLayerNormalization given back for the CPU)
    int8  <- fp32    (SmoothQuant + per-token int8, see quantize.py)
    fp16  <- fp32    (the same fusions, SkipLayerNormalization kept for CUDA; float16 inside, float32 inputs and outputs)

Which provider runs which variant is not decided here: see VARIANT_PROVIDERS in the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..runtime.manifest import VARIANTS, BuildReport
from . import graph_tools
from .checkpoint import Checkpoint
from .fp16 import convert_fp16
from .fusion import fuse, fused_counts, give_back_skip_norms
from .parity import ParityBars
from .quantize import quantize_int8
from .reference import calibration_feeds

FUSED_KEEPING_SKIP_NORMS = "fused-skip-norms-kept.onnx"  # ONNX Runtime's fusion, once per export, in scratch


@dataclass(frozen=True)
class BuildContext:
    """What every builder may use: the checkpoint, a scratch folder, the parity bars, ORT threads."""

    ckpt: Checkpoint
    scratch: Path
    bars: dict[str, ParityBars]
    threads: int


def _trace(ctx: BuildContext, source: Path | None, out: Path) -> BuildReport:
    from .torch_export import export_fp32

    ckpt = ctx.ckpt
    export_fp32(ckpt.model, ckpt.num_layers, ckpt.inputs, ckpt.pad_token_id, out)
    return BuildReport(method="torch.onnx.export of the eager-attention model; every hidden state is a graph output")


def _fuse(ctx: BuildContext, source: Path | None, out: Path) -> BuildReport:
    kept = ctx.scratch / FUSED_KEEPING_SKIP_NORMS  # fp16 starts from it too (build_order builds fused first)
    record = fuse(_given(source), kept, ctx.ckpt.config, ctx.scratch)
    record.update(give_back_skip_norms(kept, out))
    return BuildReport(
        method="ONNX Runtime transformer optimizer (bert fusions), fused operators counted against the family's expectation for its layer "
            "count; SkipLayerNormalization then given back as Add + LayerNormalization (faster on the CPU)",
        fused_operators=record.pop("fused_operators"),
        session_config=record.pop("session_config", {}),
        details=record,
    )


def _quantize(ctx: BuildContext, source: Path | None, out: Path) -> BuildReport:
    calibration = calibration_feeds(ctx.ckpt.tokenizer, ctx.ckpt.max_length, ctx.ckpt.inputs)
    return quantize_int8(_given(source), out, ctx.scratch, calibration, ctx.bars["int8"], ctx.threads)


def _halve(ctx: BuildContext, source: Path | None, out: Path) -> BuildReport:
    kept = ctx.scratch / FUSED_KEEPING_SKIP_NORMS
    if not kept.exists():  # fp16 exported without fused
        fuse(_given(source), kept, ctx.ckpt.config, ctx.scratch)
    record = convert_fp16(kept, out)
    return BuildReport(
        method="the fused graph (SkipLayerNormalization kept) in float16, with float32 inputs and outputs",
        fused_operators=fused_counts(graph_tools.load(out)),
        kept_float=record.pop("kept_float"),
        details=record,
    )


def _given(source: Path | None) -> Path:
    if source is None:
        raise ValueError("this builder starts from another variant's graph")  # a wrong BUILDERS entry, not user input
    return source


@dataclass(frozen=True)
class Builder:
    source: str | None  # the variant whose graph it starts from; None: traced from PyTorch
    build: Callable[[BuildContext, Path | None, Path], BuildReport]


BUILDERS = {
    "fp32": Builder(None, _trace),
    "fused": Builder("fp32", _fuse),
    "int8": Builder("fp32", _quantize),
    "fp16": Builder("fp32", _halve),
}


def lineage(variant: str) -> list[str]:
    """The variant and every graph it is built from, itself first: "fused" -> [fused, fp32]."""
    chain = [variant]
    while (source := BUILDERS[chain[-1]].source) is not None:
        chain.append(source)
    return chain


def build_order(requested: Sequence[str]) -> list[str]:
    """Every variant to build for ``requested``, each after the graph it starts from."""
    needed = {name for variant in requested for name in lineage(variant)}
    return sorted(needed, key=lambda name: (len(lineage(name)), VARIANTS.index(name)))
