"""Batches balanced over the side-by-side threads against the earlier rule, side by side in one process.

The earlier rule cut a call into ``side_by_side`` batches only when the token cap made fewer; a call
the cap cut unevenly (12 sentences -> 11 texts and 1) left a thread idle. ``runtime/tokenize.py``
now cuts every spread call into a multiple of the threads, of about equal tokens within the caps.
Two tables: calls of 1 to 32 texts (last layer pooled, the server's regime) and the batching job's
three large text sets (all layers mean-pooled, batch 32). The earlier rule is rebuilt here to
compare; alternated round by round, medians.

Usage: python -m benchmarks.experiments.balanced_batches BUNDLE [--repeats 11]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import layerwise
from layerwise.runtime import tokenize

from ..common import alternate, machine, real_sentences
from ..jobs.batching import CALL_SIZES, CALL_TEXTS, text_sets

BALANCED = tokenize._balanced_groups


def earlier_rule(order: Any, lengths: Any, groups: list[Any], spread: int, batch_size: int, max_tokens: int | None) -> list[Any]:
    """Before balancing: an even cut only when the cap made fewer batches than threads."""
    parts = min(spread, len(order))
    return tokenize._even_groups(order, lengths, parts) if len(groups) < parts else groups


def compare(contender: Callable[[Callable[..., Any]], Any], repeats: int, texts: int) -> tuple[float, float]:
    """texts/s with the earlier rule and balanced, alternated."""
    timings = alternate({"earlier": lambda: contender(earlier_rule), "balanced": lambda: contender(BALANCED)}, repeats, settle=1)
    return texts / timings["earlier"]["median_s"], texts / timings["balanced"]["median_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    encoder = layerwise.load(args.bundle, provider="cpu", threads=2)
    cpu = machine()
    print(
        f"{cpu['cpu']} ({cpu['cpu_family_title']}; flags {' '.join(cpu['cpu_flags'])}); {encoder.info.variant}, "
        f"{encoder.info.threads} threads, {encoder.batching}"
    )
    sentences = real_sentences(512)

    def using(rule: Callable[..., Any], run: Callable[[], None]) -> None:
        tokenize._balanced_groups = rule
        try:
            run()
        finally:
            tokenize._balanced_groups = BALANCED

    print("\n| texts per call | earlier rule texts/s | balanced texts/s | ratio |\n|---|---|---|---|")
    calls = sentences[:CALL_TEXTS]
    for size in CALL_SIZES:

        def small(rule: Callable[..., Any], size: int = size) -> None:
            using(rule, lambda: [encoder.embed(calls[s : s + size], layers=-1, pool="mean") for s in range(0, CALL_TEXTS, size)])

        before, after = compare(small, args.repeats, CALL_TEXTS)
        print(f"| {size} | {before:.1f} | {after:.1f} | {after / before:.2f}x |", flush=True)

    print("\n| text set | earlier rule texts/s | balanced texts/s | ratio |\n|---|---|---|---|")
    for name, texts in text_sets(encoder.tokenizer, sentences).items():

        def large(rule: Callable[..., Any], texts: list[str] = texts) -> None:
            using(rule, lambda: encoder.embed(texts, layers="all", pool="mean", batch_size=32))

        before, after = compare(large, max(3, args.repeats // 2), len(texts))
        print(f"| {name} ({len(texts)}) | {before:.1f} | {after:.1f} | {after / before:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
