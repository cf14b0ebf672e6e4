"""Memory soak: many requests of mixed lengths, batch sizes, layers and pooling; RSS over time.

Usage: python -m benchmarks.experiments.soak BUNDLE [--requests 300] [--variant fused]
Compares the runtime's settings (no CPU arena) with ONNX Runtime's default arena, each in
a fresh subprocess, and prints resident memory after load and every 50 requests.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

WORDS = "the of and to in a is that for it as was with be by on not he this are or his from".split()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def soak(bundle: str, variant: str, requests: int, arena: bool) -> dict:
    """Run the soak in this process; ``arena`` restores ONNX Runtime's default CPU arena."""
    from layerwise import load

    encoder = load(bundle, variant=variant, provider="cpu", cpu_arena=arena)
    rng = random.Random(0)
    marks, after_load, started = [], _rss_mb(), time.perf_counter()
    for i in range(requests):
        longest = rng.choice([1, 4, 16, 64, 200, 400])
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, longest))) for _ in range(rng.choice([1, 8, 32]))]
        layers, per_token = rng.choice(["all", -1, 2]), rng.choice([False, True])  # the draws of the published runs
        (encoder.embed_tokens if per_token else encoder.embed)(texts, layers=layers)
        if i % 50 == 49:
            marks.append(round(_rss_mb()))
    return {
        "arena": arena,
        "rss_after_load_mb": round(after_load),
        "rss_every_50_mb": marks,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--variant", default="fused")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--one", choices=["arena", "shipped"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(soak(args.bundle, args.variant, args.requests, arena=args.one == "arena")))
        return 0
    for setting in ("shipped", "arena"):
        command = [sys.executable, "-m", "benchmarks.experiments.soak", args.bundle, "--variant", args.variant]
        command += ["--requests", str(args.requests), "--one", setting]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        print(setting, out.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
