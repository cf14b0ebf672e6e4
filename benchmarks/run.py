"""``make bench``: every benchmark job in one run; results to benchmarks/results/<date>-<host>-<cpu family>.*

Usage: python -m benchmarks.run [MINILM_BUNDLE] [--models minilm,bert-base] [--jobs all_layers,...] [--quick] [--texts N]

Each model of ``--models`` (benchmarks/models.py) runs its own jobs: all-MiniLM-L6-v2 every job, on
the bundle given (``make bench`` exports it); the BERT-base-shaped model (random weights, built and
exported into benchmarks/.cache/ on first use) the all-layers and last-layer jobs against PyTorch
and the peers. ``--jobs`` keeps only the named ones of each model's jobs (a model left with none
is not loaded). Writes
<date>-<host>-<cpu family>.json (everything measured, with machine facts and each model's shape),
.md (tables, each headed by its model) and -latency.png / -throughput.png plots.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from layerwise.io.atomic import write_text_atomic
from layerwise.runtime.session import cuda_provider_installed, physical_cores

from . import report
from .common import machine, minilm_dir, real_sentences, results_stem
from .jobs import all_layers, batching, grid, layer_cut, long_docs, peers, roofline
from .models import MODELS, BenchModel, model_facts, parse_models, random_bert_bundle

JOBS = ("all_layers", "long_docs", "all_layers_peers", "peers", "batching", "grid", "layer_cut", "roofline", "gpu")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", help="the all-MiniLM-L6-v2 bundle (needed when --models has minilm)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument(
        "--jobs", default=None, help=f"comma-separated, from {', '.join(JOBS)}: only these of each model's jobs (default: all of them)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer texts and repeats (a smoke run, not for publishing)")
    parser.add_argument("--threads", type=int, default=physical_cores())
    defaults = "; ".join(f"{m.key} {m.texts}, {m.quick_texts} with --quick" for m in MODELS.values())
    parser.add_argument("--texts", type=int, default=None, help=f"how many real sentences for every model (default per model: {defaults})")
    args = parser.parse_args(argv)
    try:
        args.models = parse_models(args.models)
    except ValueError as e:
        parser.error(str(e))
    args.jobs = None if args.jobs is None else [j for j in args.jobs.split(",") if j]
    unknown = set(args.jobs or ()) - set(JOBS)
    if unknown or args.jobs == []:
        parser.error(f"unknown jobs {sorted(unknown) or args.jobs}; choose from {', '.join(JOBS)}")
    args.models = [m for m in args.models if jobs_of(m, args.jobs)]
    if not args.models:
        parser.error(
            f"no model runs --jobs {','.join(args.jobs or ())}: "
            + "; ".join(f"{m.key} runs {','.join(m.jobs or JOBS)}" for m in MODELS.values())
        )
    if args.bundle is None and any(m.shape is None for m in args.models):
        parser.error(
            "--models minilm needs its bundle: pass MINILM_BUNDLE (make bench exports bundles/all-MiniLM-L6-v2), or --models bert-base"
        )
    if args.threads < 1 or (args.texts is not None and args.texts < 1):
        parser.error("--threads and --texts must be >= 1")
    return args


def jobs_of(bench: BenchModel, asked: list[str] | None) -> list[str]:
    """The jobs ``bench`` runs: its own (every job if it names none), kept to ``asked`` if given."""
    own = bench.jobs or JOBS
    return list(own) if asked is None else [job for job in asked if job in own]


def prepare(bench: BenchModel, args: argparse.Namespace) -> tuple[Path, Path]:
    """(checkpoint folder, bundle folder) of one model: MiniLM's given bundle, or the random BERT built once."""
    if bench.shape is None:
        return minilm_dir(), Path(args.bundle)
    return random_bert_bundle(bench.shape, threads=args.threads)


def runners(
    bench: BenchModel, checkpoint: Path, bundle: str, model: Any, tokenizer: Any, texts: list[str], args: argparse.Namespace
) -> dict[str, Callable[[], dict]]:
    threads, repeats, quick = args.threads, (2 if args.quick else 5), args.quick
    peer_run = dict(peers=bench.peers, model_dir=checkpoint)
    return {
        "all_layers": lambda: all_layers.run(bundle, model, tokenizer, texts, threads, repeats),
        "long_docs": lambda: long_docs.run(bundle, model, tokenizer, threads, repeats, lengths=long_docs.QUICK_LENGTHS if quick else None),
        "all_layers_peers": lambda: peers.run(bundle, model, tokenizer, texts, threads, repeats, job="all_layers", **peer_run),
        "peers": lambda: peers.run(bundle, model, tokenizer, texts, threads, repeats, job="last_layer", **peer_run),
        "batching": lambda: batching.run(bundle, texts, threads, repeats),
        "grid": lambda: grid.run(bundle, threads, seconds=0.5 if quick else 2.0),
        "layer_cut": lambda: layer_cut.run(bundle, threads, repeats=repeats),
        "roofline": lambda: roofline.run(bundle, threads, texts, repeats=3 if quick else 9),
        "gpu": lambda: run_gpu(bundle, checkpoint),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"date": date.today().isoformat(), "host": socket.gethostname(), "machine": machine(), "models": {}}
    for bench in args.models:
        if bench.shape is not None:
            print(
                f"== {bench.key}: checkpoint and bundle (built into benchmarks/.cache on first use, which takes minutes)",
                file=sys.stderr,
                flush=True,
            )
        checkpoint, bundle = prepare(bench, args)
        model = AutoModel.from_pretrained(checkpoint).eval()
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        texts = real_sentences(args.texts or (bench.quick_texts if args.quick else bench.texts))
        entry = {"model": model_facts(model, bench), "checkpoint": str(checkpoint), "bundle": str(bundle), "jobs": {}}
        results["models"][bench.key] = entry
        run_job = runners(bench, checkpoint, str(bundle), model, tokenizer, texts, args)
        for job in jobs_of(bench, args.jobs):
            print(f"== {bench.key}: {job}", file=sys.stderr, flush=True)
            entry["jobs"][job] = run_job[job]()
        del model, run_job

    stem = results_stem(results["date"], results["host"], results["machine"]["cpu_family"])
    write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(results, indent=2) + "\n")
    text = report.markdown(results)
    write_text_atomic(stem.with_name(stem.name + ".md"), text)
    report.plots(results, stem)
    print(text)
    return 0


def run_gpu(bundle: str, checkpoint: Path) -> dict:
    if not cuda_provider_installed():
        return {"skipped": "no CUDA execution provider on this machine (onnxruntime-gpu and a GPU are needed)"}
    from .jobs import gpu

    return gpu.run(bundle, provider="cuda", source=str(checkpoint))


if __name__ == "__main__":
    sys.exit(main())
