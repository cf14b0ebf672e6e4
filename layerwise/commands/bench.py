"""``layerwise bench``: latency percentiles and throughput of a bundle on this machine."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..io.atomic import check_writable, write_text_atomic
from ..runtime import load
from ..runtime.cpu import describe
from ..runtime.errors import InputError
from ..runtime.options import POOLS
from .flags import add_bundle, add_runtime_flags, layers_flag, verb
from .latency import measure_grid


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "bench", "latency and throughput of a bundle on this machine")
    add_bundle(p)
    p.add_argument("--batch-sizes", default="1,8,32", help="comma-separated texts per batch")
    p.add_argument("--seq-lens", default="16,128,512", help="comma-separated tokens per text")
    p.add_argument("--layers", type=layers_flag, default="all", help="'all' or ints like 0,-4,-1 (negative counts from the end)")
    p.add_argument("--pool", choices=POOLS, default="mean", help="none: per-token states")
    p.add_argument("--seconds", type=float, default=3.0, help="time budget per cell, after warm-up")
    p.add_argument("--json", dest="json_out", help="also write the results as JSON to this file (- for stdout)")
    add_runtime_flags(p)
    p.set_defaults(run=run_bench)


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{flag} takes comma-separated positive ints, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{flag} takes comma-separated positive ints, got {text!r}")
    return values


def run_bench(args: argparse.Namespace) -> int:
    batch_sizes, seq_lens = _ints(args.batch_sizes, "--batch-sizes"), _ints(args.seq_lens, "--seq-lens")
    if args.json_out and args.json_out != "-":
        check_writable(args.json_out, "--json")
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    info = encoder.info
    too_long = [s for s in seq_lens if s > info.max_length]
    if too_long:
        raise InputError(
            f"--seq-lens {','.join(map(str, too_long))}: above the model maximum {info.max_length} tokens; pass lengths from 1 to "
            f"{info.max_length}"
        )
    cells = measure_grid(encoder, batch_sizes, seq_lens, args.layers, args.pool, args.seconds)
    cpu = describe()
    print(
        f"{info.model_type} {info.num_layers} layers, variant {info.variant} on {info.provider}, {info.threads} threads; "
        f"layers={args.layers} pool={args.pool}"
    )
    print(f"CPU: {cpu['cpu']} ({cpu['cpu_family_title']}; flags {' '.join(cpu['cpu_flags'])})")
    print("| batch | seq | p50 ms | p90 ms | p99 ms | sequences/s | tokens/s | runs |")
    print("|---|---|---|---|---|---|---|---|")
    for c in cells:
        print(
            f"| {c['batch_size']} | {c['seq_len']} | {c['p50_ms']:.2f} | {c['p90_ms']:.2f} | {c['p99_ms']:.2f} | "
            f"{c['sequences_per_s']:.1f} | {c['tokens_per_s']:.0f} | {c['repeats']} |"
        )
    if args.json_out:
        payload = {"info": {k: v for k, v in vars(info).items()}, "cpu": cpu, "layers": args.layers, "pool": args.pool, "cells": cells}
        text = json.dumps(payload, indent=2)
        if args.json_out == "-":
            print(text)
        else:
            write_text_atomic(args.json_out, text + "\n")
    return 0
