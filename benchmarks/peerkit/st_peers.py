"""sentence-transformers as users run all-MiniLM: PyTorch, its ONNX backend, and its dynamic int8 export.

The ONNX export (optimum, offline from the local folder) is made once per run and shared with
fastembed_peer. Last-layer job only: the stock pipeline ends in mean pooling and Normalize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerwise.runtime.cpu import describe

from .base import Context, Embed, Peer, ort_session_options, versions

ST_NOTES = (
    "stock all-MiniLM pipeline (Transformer, mean Pooling, Normalize): output is L2-normalized; "
    "encode() sorts texts by length before batching (less padding), order restored; truncates at "
    "max_seq_length=256"
)
# sentence-transformers' int8 presets (optimum AutoQuantizationConfig names) by CPU family.
INT8_PRESETS = {"amx": "avx512_vnni", "avx512_vnni": "avx512_vnni", "avx512": "avx512", "avx_vnni": "avx2", "avx2": "avx2"}


def int8_preset() -> str:
    """The preset matching this CPU, as a user following the sentence-transformers docs would pick."""
    family = describe()["cpu_family"]
    if family not in INT8_PRESETS:
        raise ValueError(f"no sentence-transformers int8 preset for CPU family {family!r} (known: {', '.join(INT8_PRESETS)})")
    return INT8_PRESETS[family]


def st_onnx_export(ctx: Context) -> tuple[Any, Path]:
    """Export the local folder to ONNX through sentence-transformers (optimum), once, and save it.

    The saved folder (scratch/st-onnx) is a complete sentence-transformers model with
    onnx/model.onnx; st-onnx-int8 quantizes it and fastembed loads it.
    """
    if "st_onnx" not in ctx.shared:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(ctx.model_dir),
            device="cpu",
            backend="onnx",
            model_kwargs={"session_options": ort_session_options(ctx.threads), "provider": "CPUExecutionProvider"},
        )
        out = ctx.scratch / "st-onnx"
        model.save_pretrained(str(out))
        ctx.shared["st_onnx"] = (model, out)
    return ctx.shared["st_onnx"]


def st_encoder(model: Any, batch_size: int) -> Embed:
    """sentence-transformers' encode as users call it (its pipeline ends in Normalize)."""
    return lambda texts: model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


def build_st_torch(ctx: Context) -> Peer:
    """sentence-transformers on PyTorch eager, the reference way most people run all-MiniLM."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(ctx.threads)
    model = SentenceTransformer(str(ctx.model_dir), device="cpu")
    return Peer(
        embed=st_encoder(model, ctx.batch_size),
        threads_controlled=True,
        notes=f"backend=torch, torch.set_num_threads({ctx.threads}); {ST_NOTES}",
        versions=versions("sentence-transformers", "transformers", "torch", "tokenizers"),
    )


def build_st_onnx(ctx: Context) -> Peer:
    """sentence-transformers with backend="onnx": optimum's fp32 export run by onnxruntime."""
    model, _ = st_onnx_export(ctx)
    return Peer(
        embed=st_encoder(model, ctx.batch_size),
        threads_controlled=True,
        notes=(
            "backend=onnx, exported offline from the local folder by optimum, saved to scratch onnx/model.onnx "
            "(plain export, no offline optimum optimizer pass; ORT's default online graph optimizations); "
            f"model_kwargs session_options intra_op_num_threads={ctx.threads}; "
            f"pooling/normalize run in torch ({ctx.threads} threads); {ST_NOTES}"
        ),
        versions=versions("sentence-transformers", "optimum-onnx", "optimum", "onnxruntime", "transformers", "torch"),
    )


def build_st_onnx_int8(ctx: Context) -> Peer:
    """sentence-transformers' dynamic int8 ONNX export (this CPU's preset), loaded with backend="onnx"."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    preset = int8_preset()
    model, out = st_onnx_export(ctx)
    export_dynamic_quantized_onnx_model(model, preset, str(out))
    # The file is named after optimum's weight type for the preset: qint8 on avx512_vnni and arm64, quint8 on avx2.
    found = sorted((out / "onnx").glob(f"model_*int8_{preset}.onnx"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one quantized export onnx/model_*int8_{preset}.onnx in {out}, found {[p.name for p in found]}")
    file_name = f"onnx/{found[0].name}"
    quantized = SentenceTransformer(
        str(out),
        device="cpu",
        backend="onnx",
        model_kwargs={"file_name": file_name, "session_options": ort_session_options(ctx.threads), "provider": "CPUExecutionProvider"},
    )
    return Peer(
        embed=st_encoder(quantized, ctx.batch_size),
        threads_controlled=True,
        notes=(
            f'export_dynamic_quantized_onnx_model(st_onnx_model, "{preset}", scratch) -> {file_name} '
            "(optimum ORTQuantizer, dynamic int8 weights, no calibration; preset chosen for this CPU family); "
            f"model_kwargs session_options intra_op_num_threads={ctx.threads}; {ST_NOTES}"
        ),
        versions=versions("sentence-transformers", "optimum-onnx", "optimum", "onnxruntime", "transformers", "torch"),
    )
