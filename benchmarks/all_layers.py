"""Job 1: all hidden states, mean-pooled per layer, on real sentences: layerwise vs PyTorch eager.

PyTorch runs two ways: the plain loop users write (input order, each batch padded to its
longest) and a length-sorted loop. Every contender is warmed up, then all run alternately.
"""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.manifest import read_manifest

from .common import agreement, alternate, length_stats, torch_all_layers_mean

BATCH = 32


def run(bundle: str, model: Any, tokenizer: Any, texts: list[str], threads: int, repeats: int = 5) -> dict[str, Any]:
    reference = torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False)
    encoders = {
        v: layerwise.load(bundle, variant=v, provider="cpu", threads=threads) for v in read_manifest(bundle).variants_built_for("cpu")
    }
    contenders = {
        "pytorch plain loop": lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False),
        "pytorch sorted loop": lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=True),
    }
    contenders.update({f"layerwise {v}": (lambda e=e: e.embed(texts, batch_size=BATCH)) for v, e in encoders.items()})
    timings = alternate(contenders, repeats)
    rows = {}
    for name, timing in timings.items():
        if name.startswith("layerwise"):
            output = encoders[name.removeprefix("layerwise ")].embed(texts, batch_size=BATCH)
        else:
            output = torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=name.endswith("sorted loop"))
        rows[name] = {**timing, "texts_per_s": len(texts) / timing["median_s"], **agreement(output, reference)}
    plain, ordered = rows["pytorch plain loop"]["median_s"], rows["pytorch sorted loop"]["median_s"]
    for row in rows.values():
        row["speedup_vs_plain"] = plain / row["median_s"]
        row["speedup_vs_sorted"] = ordered / row["median_s"]
    return {"batch_size": BATCH, "threads": threads, "texts": length_stats(tokenizer, texts, BATCH), "contenders": rows}
