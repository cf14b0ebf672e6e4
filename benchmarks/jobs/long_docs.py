"""Long documents (2,000-10,000 tokens), all hidden states, mean-pooled: layerwise overflow="chunk" vs PyTorch.

Every document is split by the runtime's own window split (runtime/windows.py: windows of the
model maximum sharing ``stride`` tokens, 128 for MiniLM), so PyTorch runs exactly the windows layerwise runs.
PyTorch is the loop a user writes: document by document, that document's windows padded into
batches of up to ``BATCH`` (one batch for documents under about 12,000 tokens),
``output_hidden_states=True`` (the model as AutoModel loads it, as in the other jobs), then the merge rule of
runtime/windows.py in torch (a token seen in
several windows gets the mean of its rows; the text's mean pool is the mean over its merged rows,
every layer). Its time includes the split, as layerwise's does. layerwise runs every document's
windows together in its length-sorted batches of ``BATCH``. Contenders alternate round by round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import layerwise
from layerwise.runtime.manifest import read_manifest
from layerwise.runtime.windows import Windows, split

from ..common import agreement, alternate, long_documents

BATCH = 32
VARIANTS = ("fused", "int8")
QUICK_LENGTHS = (2000, 4000)  # --quick: two documents, 16 windows


def document_lengths(count: int, shortest: int = 2000, longest: int = 10000) -> list[int]:
    """``count`` token counts spread evenly from ``shortest`` to ``longest`` (both when count > 1)."""
    return [int(n) for n in np.linspace(shortest, longest, count).round()] if count > 1 else [longest]


def torch_windows_mean(model: Any, tokenizer: Any, windows: Windows, batch_size: int) -> np.ndarray:
    """PyTorch over ``windows``, document by document, merged and mean-pooled per layer: [texts, layers, hidden]."""
    import torch

    owners = np.array([p.text for p in windows.placements])
    out: np.ndarray | None = None
    with torch.inference_mode():
        for text, whole in enumerate(windows.merged):
            rows = np.flatnonzero(owners == text).tolist()
            sums: Any = None
            counts = torch.zeros(len(whole.ids))
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                feeds = {
                    "input_ids": [windows.tokenized.ids[w] for w in chunk],
                    "token_type_ids": [windows.tokenized.type_ids[w] for w in chunk],
                }
                batch = tokenizer.pad(feeds, return_tensors="pt")
                states = torch.stack(model(**batch, output_hidden_states=True).hidden_states, dim=1)  # [windows, layers, seq, hidden]
                if sums is None:
                    sums = torch.zeros(states.shape[1], len(whole.ids), states.shape[-1])
                for k, w in enumerate(chunk):
                    place = windows.placements[w]
                    target = torch.from_numpy(place.target)
                    sums.index_add_(1, target, states[k][:, torch.from_numpy(place.source)])
                    counts.index_add_(0, target, torch.ones(len(target)))
            pooled = (sums / counts[None, :, None]).mean(dim=1).numpy()
            if out is None:
                out = np.empty((len(windows.merged), *pooled.shape), dtype=np.float32)
            out[text] = pooled
    assert out is not None
    return out


def run(
    bundle: str,
    model: Any,
    tokenizer: Any,
    threads: int,
    repeats: int = 5,
    lengths: Sequence[int] | None = None,
    variants: Sequence[str] = VARIANTS,
    stride: int | None = None,
) -> dict[str, Any]:
    """``lengths``: the documents' token counts (default: 8 from 2,000 to 10,000); ``stride``: None is the
    runtime's default (128, or half a window when that is smaller)."""
    built = read_manifest(bundle).variants_built_for("cpu")
    encoders = {v: layerwise.load(bundle, variant=v, provider="cpu", threads=threads) for v in variants if v in built}
    if not encoders:
        return {"skipped": f"none of {', '.join(variants)} is built for cpu in this bundle"}
    text_tokenizer = next(iter(encoders.values())).tokenizer
    documents = long_documents(text_tokenizer, document_lengths(8) if lengths is None else lengths)
    windows = split(text_tokenizer, documents, None, stride)
    stride = windows.stride  # the default resolved, passed explicitly to both sides
    doc_tokens = windows.output_lengths
    window_lengths = windows.tokenized.lengths

    outputs: dict[str, np.ndarray] = {}  # each contender's latest result: the accuracy check needs no extra run

    def pytorch() -> None:
        outputs["pytorch document loop"] = torch_windows_mean(model, tokenizer, split(text_tokenizer, documents, None, stride), BATCH)

    def chunked(name: str, encoder: Any) -> None:
        outputs[name] = encoder.embed(documents, layers="all", pool="mean", batch_size=BATCH, overflow="chunk", stride=stride)

    contenders = {"pytorch document loop": pytorch}
    contenders.update({f"layerwise {v}": (lambda n=f"layerwise {v}", e=e: chunked(n, e)) for v, e in encoders.items()})
    timings = alternate(contenders, repeats)
    reference = outputs["pytorch document loop"]
    rows = {}
    for name, timing in timings.items():
        encoder = encoders.get(name.removeprefix("layerwise "))
        rows[name] = {
            **timing,
            "texts_per_s": len(documents) / timing["median_s"],
            "tokens_per_s": sum(doc_tokens) / timing["median_s"],
            "windows": len(windows.placements) if encoder is None else encoder.last_stats.windows,
            **agreement(outputs[name], reference),
        }
    base = rows["pytorch document loop"]["median_s"]
    for row in rows.values():
        row["speedup_vs_pytorch"] = base / row["median_s"]
    return {
        "batch_size": BATCH,
        "threads": threads,
        "stride": stride,
        "max_length": windows.tokenized.limit,
        "documents": {
            "count": len(documents),
            "tokens": doc_tokens,
            "tokens_total": int(sum(doc_tokens)),
            "windows": len(windows.placements),
            "window_tokens_total": int(window_lengths.sum()),
        },
        "skipped_variants": {v: "not built for cpu in this bundle" for v in variants if v not in encoders},
        "contenders": rows,
    }
