"""``make bench``: every benchmark job in one run; results to benchmarks/results/<date>-<host>-<cpu family>.*

Usage: python -m benchmarks.run BUNDLE [--quick] [--texts N]
       [--jobs all_layers,long_docs,all_layers_peers,peers,batching,grid,layer_cut,roofline,gpu]
Writes <date>-<host>-<cpu family>.json (everything measured, with machine facts), .md (tables) and
-latency.png / -throughput.png plots.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from datetime import date

import torch
from transformers import AutoModel, AutoTokenizer

from layerwise.io.atomic import write_text_atomic
from layerwise.runtime.session import cuda_provider_installed, physical_cores

from . import all_layers, batching, grid, layer_cut, long_docs, peers, report, roofline
from .common import machine, minilm_dir, real_sentences, results_stem

JOBS = ("all_layers", "long_docs", "all_layers_peers", "peers", "batching", "grid", "layer_cut", "roofline", "gpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--quick", action="store_true", help="fewer texts and repeats (a smoke run, not for publishing)")
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--texts", type=int, default=None, help="how many real sentences (default 512; 128 with --quick)")
    args = parser.parse_args(argv)
    jobs = [j for j in args.jobs.split(",") if j]
    unknown = set(jobs) - set(JOBS)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {', '.join(JOBS)}")

    torch.set_num_threads(args.threads)
    texts = real_sentences(args.texts or (128 if args.quick else 512))
    repeats = 2 if args.quick else 5
    model = AutoModel.from_pretrained(minilm_dir()).eval()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    results = {"date": date.today().isoformat(), "host": socket.gethostname(), "machine": machine(), "bundle": args.bundle, "jobs": {}}
    runners = {
        "all_layers": lambda: all_layers.run(args.bundle, model, tokenizer, texts, args.threads, repeats),
        "long_docs": lambda: long_docs.run(
            args.bundle, model, tokenizer, args.threads, repeats, lengths=long_docs.QUICK_LENGTHS if args.quick else None
        ),
        "all_layers_peers": lambda: peers.run(args.bundle, model, tokenizer, texts, args.threads, repeats, job="all_layers"),
        "peers": lambda: peers.run(args.bundle, model, tokenizer, texts, args.threads, repeats, job="last_layer"),
        "batching": lambda: batching.run(args.bundle, texts, args.threads, repeats),
        "grid": lambda: grid.run(args.bundle, args.threads, seconds=0.5 if args.quick else 2.0),
        "layer_cut": lambda: layer_cut.run(args.bundle, args.threads, repeats=repeats),
        "roofline": lambda: roofline.run(args.bundle, args.threads, texts, repeats=3 if args.quick else 9),
        "gpu": lambda: run_gpu(args.bundle),
    }
    for job in jobs:
        print(f"== {job}", file=sys.stderr, flush=True)
        results["jobs"][job] = runners[job]()

    stem = results_stem(results["date"], results["host"], results["machine"]["cpu_family"])
    write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(results, indent=2) + "\n")
    text = report.markdown(results)
    write_text_atomic(stem.with_name(stem.name + ".md"), text)
    report.plots(results, stem)
    print(text)
    return 0


def run_gpu(bundle: str) -> dict:
    if not cuda_provider_installed():
        return {"skipped": "no CUDA execution provider on this machine (onnxruntime-gpu and a GPU are needed)"}
    from . import gpu

    return gpu.run(bundle, provider="cuda", source=str(minilm_dir()))


if __name__ == "__main__":
    sys.exit(main())
