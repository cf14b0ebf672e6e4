"""fastembed and Optimum: the two other ONNX Runtime wrappers people use for sentence embeddings.

fastembed loads the sentence-transformers export (st_peers) as a local custom model; Optimum
exports its own. Last-layer job only.
"""

from __future__ import annotations

import json

import numpy as np

from .base import Context, Peer, ort_session_options, versions
from .st_peers import st_onnx_export

FASTEMBED_NAME = "layerwise-peers/all-MiniLM-L6-v2-local"  # any name not in fastembed's registry


def build_fastembed(ctx: Context) -> Peer:
    """fastembed with the MiniLM ONNX export registered as a local custom model (mean pooling)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    _, out = st_onnx_export(ctx)
    max_length = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    dim = json.loads((ctx.model_dir / "config.json").read_text(encoding="utf-8"))["hidden_size"]
    if FASTEMBED_NAME.lower() not in {m["model"].lower() for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            model=FASTEMBED_NAME,
            pooling=PoolingType.MEAN,
            normalization=True,  # as fastembed's own sentence-transformers/all-MiniLM-L6-v2 entry
            sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),  # never fetched
            dim=dim,
            model_file="onnx/model.onnx",
        )
    model = TextEmbedding(
        model_name=FASTEMBED_NAME,
        specific_model_path=str(out),
        cache_dir=str(ctx.scratch / "fastembed-cache"),
        threads=ctx.threads,
        providers=["CPUExecutionProvider"],
        local_files_only=True,
    )
    return Peer(
        embed=lambda texts: np.stack(list(model.embed(texts, batch_size=ctx.batch_size))),
        threads_controlled=True,
        notes=(
            f"TextEmbedding.add_custom_model(pooling=MEAN, normalization=True, dim={dim}, "
            f"model_file='onnx/model.onnx') + TextEmbedding(specific_model_path=<st-onnx save dir>, "
            f"threads={ctx.threads}) on the st-onnx fp32 export; threads sets ORT intra- and inter-op "
            "threads; input order, no length sorting; pooling in numpy; output L2-normalized; "
            f"truncates at the saved tokenizer_config's model_max_length={max_length}"
        ),
        versions=versions("fastembed", "onnxruntime", "tokenizers"),
    )


def build_optimum(ctx: Context) -> Peer:
    """Optimum's ORTModelForFeatureExtraction (export=True) with mean pooling over real tokens in numpy."""
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoTokenizer

    model = ORTModelForFeatureExtraction.from_pretrained(
        str(ctx.model_dir), export=True, provider="CPUExecutionProvider", session_options=ort_session_options(ctx.threads)
    )
    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir))

    def embed(texts: list[str]) -> np.ndarray:
        pooled = []
        for start in range(0, len(texts), ctx.batch_size):
            batch = tokenizer(texts[start : start + ctx.batch_size], padding=True, truncation=True, return_tensors="np")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].astype(hidden.dtype)
            pooled.append((hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9))
        return np.concatenate(pooled)

    return Peer(
        embed=embed,
        threads_controlled=True,
        notes=(
            "ORTModelForFeatureExtraction.from_pretrained(model_dir, export=True, "
            f"session_options intra_op_num_threads={ctx.threads}) + AutoTokenizer (fast), numpy inputs; "
            "mean of last_hidden_state over attention_mask; raw (not normalized); input order, no length "
            "sorting; truncates at model_max_length=512"
        ),
        versions=versions("optimum-onnx", "optimum", "onnxruntime", "transformers", "tokenizers"),
    )
