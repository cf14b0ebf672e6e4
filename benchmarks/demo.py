"""The main job, end to end: a bundle's parity table, then every CPU variant next to PyTorch.

Usage: python -m benchmarks.demo BUNDLE   (``make demo`` exports the bundled MiniLM first)
Embeds real sentences with all hidden states mean-pooled per layer, batch 32, and prints
throughput and agreement with PyTorch eager ``output_hidden_states=True`` from the same run.
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

import layerwise
from layerwise.commands.inspect import describe
from layerwise.runtime.manifest import read_manifest
from layerwise.runtime.session import physical_cores

from .common import agreement, alternate, length_stats, machine, minilm_dir, real_sentences, torch_all_layers_mean

TEXTS = 256
BATCH = 32


def main(bundle: str) -> None:
    print(describe(bundle))
    threads = physical_cores()
    torch.set_num_threads(threads)
    transformers_logging.disable_progress_bar()  # no loading bar between the tables
    model = AutoModel.from_pretrained(minilm_dir()).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    texts = real_sentences(TEXTS)
    reference = torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False)
    encoders = {
        v: layerwise.load(bundle, variant=v, provider="cpu", threads=threads) for v in read_manifest(bundle).variants_built_for("cpu")
    }
    contenders = {"pytorch (plain loop)": lambda: torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False)}
    contenders.update({f"layerwise {v}": (lambda e=e: e.embed(texts, batch_size=BATCH)) for v, e in encoders.items()})
    timings = alternate(contenders, repeats=3)

    facts = machine()
    stats = length_stats(tokenizer, texts, BATCH)
    print(
        f"\nAll {encoders['fp32'].info.num_layers + 1} hidden states, mean-pooled, {TEXTS} real sentences "
        f"(mean {stats['tokens_mean']:.0f} tokens), batch {BATCH}, {threads} threads, {facts['cpu']} ({facts['cpu_family_title']}) "
        f"[{' '.join(facts['cpu_flags'])}]; median of 3 alternated runs\n"
    )
    print(
        "| contender | texts/s | ms per batch of 32 | vs PyTorch | worst-layer pooled cos min | worst-layer pooled cos mean | max abs "
        "diff |"
    )
    print("|---|---|---|---|---|---|---|")
    base = timings["pytorch (plain loop)"]["median_s"]
    for name, timing in timings.items():
        variant = name.removeprefix("layerwise ")
        if name.startswith("layerwise"):
            quality = agreement(encoders[variant].embed(texts, batch_size=BATCH), reference)
            cells = f"{quality['cos_min']:.5f} | {quality['cos_mean_worst_layer']:.5f} | {quality['max_abs']:.1e}"
        else:
            cells = "reference | reference | -"
        per_batch_ms = 1e3 * timing["median_s"] * BATCH / TEXTS
        print(f"| {name} | {TEXTS / timing['median_s']:.0f} | {per_batch_ms:.0f} | {base / timing['median_s']:.2f}x | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bundles/all-MiniLM-L6-v2")
