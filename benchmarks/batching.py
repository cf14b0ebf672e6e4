"""Job: the CPU batching defaults re-measured on this machine (they were tuned on one CPU family).

runtime/engine.py caps a CPU batch at ``cpu_batch_tokens(family)`` padded tokens and runs batches
side by side on one thread each. Here the default variant (what ``variant=None`` picks) embeds three text
sets with each cap, side by side, and with the default cap on intra-op threads instead; all
layers mean-pooled, batch size 32, configurations alternated round by round.
"""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.bench_hooks import batching
from layerwise.runtime.engine import cpu_batch_tokens

from .common import alternate, long_documents

CAPS = (256, 512, 1024, 2048, None)
BATCH = 32


def text_sets(tokenizer: Any, sentences: list[str]) -> dict[str, list[str]]:
    """Natural sentences, texts at the model's limit, and sentences with one such text in 32."""
    full = tokenizer.model_max_length
    long_texts = long_documents(tokenizer, [full] * max(4, len(sentences) // 16))
    mixed = list(sentences)
    for i, text in enumerate(long_texts[: len(sentences) // 32]):
        mixed.insert(i * 33 + 7, text)
    return {"sentences": sentences, f"{full}-token texts": long_texts, f"sentences with a few {full}-token texts": mixed}


def configuration_name(cap: int | None, side_by_side: bool) -> str:
    return f"cap {cap or 'none'}, {'side by side' if side_by_side else 'intra-op threads'}"


def run(bundle: str, sentences: list[str], threads: int, repeats: int = 5) -> dict[str, Any]:
    encoder = layerwise.load(bundle, provider="cpu", threads=threads)
    default_cap = cpu_batch_tokens(encoder.info.cpu)
    configurations = [(cap, True) for cap in CAPS] + [(default_cap, False)]
    sets = text_sets(encoder.tokenizer, sentences)
    results: dict[str, Any] = {}
    for set_name, texts in sets.items():
        def embed(cap: int | None, side_by_side: bool, texts: list[str] = texts) -> None:
            with batching(encoder, cap, side_by_side):
                encoder.embed(texts, layers="all", pool="mean", batch_size=BATCH)

        contenders = {configuration_name(c, s): (lambda c=c, s=s: embed(c, s)) for c, s in configurations}
        timings = alternate(contenders, repeats)
        rows = {name: {**t, "texts_per_s": len(texts) / t["median_s"]} for name, t in timings.items()}
        results[set_name] = {"texts": len(texts), "configurations": rows, "best": max(rows, key=lambda n: rows[n]["texts_per_s"])}
    return {
        "variant": encoder.info.variant,
        "threads": threads,
        "batch_size": BATCH,
        "default": configuration_name(default_cap, True),
        "sets": results,
    }
