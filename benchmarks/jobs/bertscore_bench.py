"""BERTScore: layerwise (fp32, fused, int8) against the bert-score package 0.3.13, same model, layers and pairs.

Runs inside benchmarks/.venv-bertscore (the package needs transformers < 4.58; bertscore_setup.sh also
installs layerwise there, editable), in one process, contenders alternating round by round
(``common.alternate``); medians of repeats:

    bash benchmarks/bertscore_setup.sh
    benchmarks/.venv-bertscore/bin/python -m benchmarks.jobs.bertscore_bench bundles/all-MiniLM-L6-v2 [--pairs 240]
        [--layers 2,4] [--repeats 5] [--threads N] [--quick] [--write]

Pairs: consecutive held-out sentences of the Python manual (``common.real_sentences``). Contenders per
layer: the package as a loop over corpora calls it, ``BERTScorer`` with the model loaded once (its
defaults: batch 64, the slow tokenizer), again with use_fast_tokenizer=True, and layerwise's
``bertscore`` on each CPU variant (encoder loaded once), all without idf. texts/s counts candidates and
references (2 per pair). Accuracy, from each contender's warm-up result: the largest and mean |F1 - the
package's F1| and the corpus-mean F1. The package's ``score()`` loads the model on every call: one such
call is timed apart. --write saves benchmarks/results/<date>-<host>-<cpu family>-bertscore.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from datetime import date
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from layerwise.io.atomic import write_text_atomic  # noqa: E402
from layerwise.runtime.loader import load  # noqa: E402
from layerwise.runtime.session import physical_cores  # noqa: E402

from ..common import alternate, machine, minilm_dir, real_sentences, results_stem  # noqa: E402

VARIANTS = ("fp32", "fused", "int8")  # the CPU variants (the bundle's own list is its manifest)
PACKAGE = "bert-score"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="a bundle of all-MiniLM-L6-v2 (or of --model-dir)")
    parser.add_argument("--model-dir", default=None, help="the checkpoint the bundle was exported from (default: MiniLM's)")
    parser.add_argument("--pairs", type=int, default=None, help="sentence pairs (default 240, 40 with --quick)")
    parser.add_argument("--layers", default="2,4", help="comma-separated layers, each timed on its own (default 2,4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5, 2 with --quick)")
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--quick", action="store_true", help="fewer pairs and repeats (a smoke run, not for publishing)")
    parser.add_argument("--write", action="store_true", help="save the results under benchmarks/results/")
    args = parser.parse_args(argv)
    args.pairs = args.pairs or (40 if args.quick else 240)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.layers = [int(layer) for layer in args.layers.split(",") if layer]
    return args


def contenders(args: argparse.Namespace, cands: list[str], refs: list[str], layer: int, encoders: dict[str, Any]) -> dict[str, Any]:
    """name -> a call returning F1 per pair (float64)."""
    import bert_score

    from layerwise.runtime.bertscore import bertscore

    out: dict[str, Any] = {}
    for name, fast in ((PACKAGE, False), (f"{PACKAGE} fast tokenizer", True)):
        scorer = bert_score.BERTScorer(model_type=args.model_dir, num_layers=layer, use_fast_tokenizer=fast)
        out[name] = lambda scorer=scorer: scorer.score(cands, refs)[2].numpy().astype(np.float64)
    for variant, enc in encoders.items():
        out[f"layerwise {variant}"] = lambda enc=enc: bertscore(enc, cands, refs, layers=layer, overflow="truncate").f1.astype(np.float64)
    return out


def cold_package_call(args: argparse.Namespace, cands: list[str], refs: list[str], layer: int) -> float:
    """One ``bert_score.score()`` call, which loads the model and tokenizer first, as every call of it does."""
    import bert_score

    started = time.perf_counter()
    bert_score.score(cands, refs, model_type=args.model_dir, num_layers=layer)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    sentences = real_sentences(2 * args.pairs)
    cands, refs = sentences[0::2], sentences[1::2]
    encoders = {v: load(args.bundle, variant=v, threads=args.threads) for v in VARIANTS}
    layers: dict[str, Any] = {}
    for layer in args.layers:
        print(f"== BERTScore at layer {layer}: {args.pairs} pairs, {args.repeats} rounds", file=sys.stderr, flush=True)
        calls = contenders(args, cands, refs, layer, encoders)
        first: dict[str, Any] = {}
        times = alternate(calls, args.repeats, keep=first)
        reference = first[PACKAGE]
        rows = {}
        for name, timing in times.items():
            diff = np.abs(first[name] - reference)
            rows[name] = {
                **timing,
                "texts_per_s": 2 * args.pairs / timing["median_s"],
                "speed_vs_package": times[PACKAGE]["median_s"] / timing["median_s"],
                "f1_max_abs_diff": float(diff.max()),
                "f1_mean_abs_diff": float(diff.mean()),
                "corpus_f1": float(first[name].mean()),
            }
        layers[str(layer)] = {"contenders": rows, "package_score_call_s": cold_package_call(args, cands, refs, layer)}
    for enc in encoders.values():
        enc.close()
    return {"pairs": args.pairs, "repeats": args.repeats, "threads": args.threads, "model_dir": args.model_dir, "layers": layers}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# BERTScore: layerwise against bert-score 0.3.13 ({results['date']}, {results['host']}, {results['machine']['cpu_family']})",
        "",
        f"{results['pairs']} held-out sentence pairs, {results['threads']} threads, median of {results['repeats']} alternating rounds; "
        "texts/s counts candidates and references; |dF1| against the package with its defaults.",
    ]
    for layer, entry in results["layers"].items():
        lines += [
            "",
            f"## Layer {layer}",
            "",
            "| contender | median s | texts/s | speed vs bert-score | max abs dF1 | mean abs dF1 | corpus F1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in entry["contenders"].items():
            lines.append(
                f"| {name} | {row['median_s']:.3f} | {row['texts_per_s']:.0f} | {row['speed_vs_package']:.1f}x | "
                f"{row['f1_max_abs_diff']:.1e} | {row['f1_mean_abs_diff']:.1e} | {row['corpus_f1']:.5f} |"
            )
        lines += ["", f"`bert_score.score()` once (it loads the model on every call): {entry['package_score_call_s']:.2f} s."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.model_dir = args.model_dir or str(minilm_dir())
    results = {"date": date.today().isoformat(), "host": socket.gethostname(), "machine": machine(), **run(args)}
    text = markdown(results)
    if args.write:
        stem = results_stem(results["date"], results["host"], results["machine"]["cpu_family"], "-bertscore")
        write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(results, indent=2) + "\n")
        write_text_atomic(stem.with_name(stem.name + ".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
