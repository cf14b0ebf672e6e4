"""The CPU batching defaults re-measured on this machine (they were tuned on one CPU family).

runtime/batching.py caps a CPU batch at ``cpu_batch_tokens(family)`` padded tokens and runs batches
side by side on one thread each. Here the default variant (what ``variant=None`` picks) embeds three text
sets with each cap, side by side, and with the default cap on intra-op threads instead; all
layers mean-pooled, batch size 32, configurations alternated round by round. Then the small-call
regime (``call_sizes``): the same sentences in calls of 1 to 32 texts, last layer pooled (a
server's runs at moderate concurrency), spread (cut into a multiple of the threads of about equal
tokens, side by side) or cut by the caps alone (one batch on intra-op threads when it fits one); over
the sizes whose calls fit one batch, the smallest at which spreading pays, and from which it loses at
no larger size, is the family's ``spread_from``.
"""

from __future__ import annotations

from dataclasses import replace as dataclass_replace
from typing import Any

import layerwise
from layerwise.runtime.batching import Batching, cpu_batch_tokens

from ..common import alternate, long_documents

CAPS = (256, 512, 1024, 2048, None)
BATCH = 32
CALL_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
CALL_TEXTS = 96  # texts per timed pass, in calls of each size
PAYS = 1.05  # spreading must be this much faster to count as paying
LOSES = 0.95  # and this much slower to count as losing (between the two: noise)


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
            with encoder.use_batching(Batching(cap, encoder.info.threads if side_by_side else 1, encoder.batching.spread_from)):
                encoder.embed(texts, layers="all", pool="mean", batch_size=BATCH)

        contenders = {configuration_name(c, s): (lambda c=c, s=s: embed(c, s)) for c, s in configurations}
        timings = alternate(contenders, repeats)
        rows = {name: {**t, "texts_per_s": len(texts) / t["median_s"]} for name, t in timings.items()}
        results[set_name] = {"texts": len(texts), "configurations": rows, "best": max(rows, key=lambda n: rows[n]["texts_per_s"])}
    return {
        "call_sizes": call_sizes(encoder, sentences, repeats),
        "variant": encoder.info.variant,
        "threads": threads,
        "batch_size": BATCH,
        "default": configuration_name(default_cap, True),
        "sets": results,
    }


def call_sizes(encoder: Any, sentences: list[str], repeats: int) -> dict[str, Any]:
    """texts/s for calls of each size in CALL_SIZES, spread (balanced, side by side) vs cut by the caps alone.

    Only the sizes whose calls fit one batch decide ``spread_from`` (one batch on intra-op threads against
    spreading): the smallest such size at which spreading pays and from which it loses at no larger one
    (None: at no size). For larger calls the ratio is what balancing the batches over the threads gains.
    """
    default = encoder.batching
    ways = {"spread": dataclass_replace(default, spread_from=1), "one batch": dataclass_replace(default, spread_from=None)}
    texts = (sentences * (CALL_TEXTS // max(len(sentences), 1) + 1))[:CALL_TEXTS]
    rows: dict[int, dict[str, Any]] = {}
    for size in CALL_SIZES:
        def embed(way: Batching, size: int = size) -> int:
            batches = 0
            with encoder.use_batching(way):
                for start in range(0, CALL_TEXTS, size):
                    encoder.embed(texts[start : start + size], layers=-1, pool="mean")
                    batches = max(batches, encoder.last_stats.batches)
            return batches

        kept: dict[str, Any] = {}
        timings = alternate({name: (lambda w=way: embed(w)) for name, way in ways.items()}, repeats, settle=1, keep=kept)
        per_s = {name: CALL_TEXTS / t["median_s"] for name, t in timings.items()}
        rows[size] = {f"{name} texts_per_s": round(v, 1) for name, v in per_s.items()}
        rows[size]["ratio"] = round(per_s["spread"] / per_s["one batch"], 3)
        rows[size]["one_batch_fits"] = size > 1 and kept["one batch"] == 1  # every call of this size is one batch unspread
    deciding = [size for size in CALL_SIZES if rows[size]["one_batch_fits"]]
    paying = [size for size in deciding if rows[size]["ratio"] >= PAYS and all(rows[s]["ratio"] > LOSES for s in deciding if s >= size)]
    return {"sizes": rows, "spread_from": min(paying) if paying else None, "default_spread_from": default.spread_from}
