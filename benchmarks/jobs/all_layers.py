"""All hidden states, mean-pooled per layer, on real sentences: layerwise vs PyTorch eager.

PyTorch runs two ways: the plain loop users write (input order, each batch padded to its
longest) and a length-sorted loop; on AMX also the sorted loop under bf16 autocast (elsewhere it
is listed as not applicable: peerkit/torch_peers.py holds the rule). Every contender is warmed up, then
all run alternately; the warm-up outputs are scored against the plain loop's.
"""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.cpu import describe
from layerwise.runtime.manifest import read_manifest

from ..common import agreement, alternate, length_stats, torch_all_layers_mean
from ..peerkit.torch_peers import bf16_autocast_skip_reason

BATCH = 32
PLAIN, SORTED, BF16 = "pytorch plain loop", "pytorch sorted loop", "pytorch sorted loop, bf16 autocast"


def run(
    bundle: str, model: Any, tokenizer: Any, texts: list[str], threads: int, repeats: int = 5, family: str | None = None
) -> dict[str, Any]:
    """``family``: the CPU family deciding the bf16 contender (default: this machine's, runtime/cpu.py)."""
    family = family or describe()["cpu_family"]
    encoders = {
        v: layerwise.load(bundle, variant=v, provider="cpu", threads=threads) for v in read_manifest(bundle).variants_built_for("cpu")
    }
    contenders = {
        PLAIN: lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False),
        SORTED: lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=True),
    }
    not_applicable = {}
    reason = bf16_autocast_skip_reason(family)
    if reason is None:
        contenders[BF16] = lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=True, bf16=True)
    else:
        not_applicable[BF16] = reason
    contenders.update({f"layerwise {v}": (lambda e=e: e.embed(texts, batch_size=BATCH)) for v, e in encoders.items()})
    outputs: dict[str, Any] = {}
    timings = alternate(contenders, repeats, keep=outputs)
    reference = outputs[PLAIN]
    rows = {
        name: {**timing, "texts_per_s": len(texts) / timing["median_s"], **agreement(outputs[name], reference)}
        for name, timing in timings.items()
    }
    plain, ordered = rows[PLAIN]["median_s"], rows[SORTED]["median_s"]
    for row in rows.values():
        row["speedup_vs_plain"] = plain / row["median_s"]
        row["speedup_vs_sorted"] = ordered / row["median_s"]
    texts_facts = length_stats(tokenizer, texts, BATCH)
    return {
        "batch_size": BATCH,
        "threads": threads,
        "cpu_family": family,
        "texts": texts_facts,
        "contenders": rows,
        "not_applicable": not_applicable,
    }
