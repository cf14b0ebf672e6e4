"""Where a variant's time goes: ONNX Runtime's profiler, summed by operator type.

Runs the variant's full graph (every hidden state) on the batches ``embed`` would make of real
sentences (length-sorted, at most ``cpu_batch_tokens`` padded tokens each) on one thread, the way
batches run side by side, and prints each operator type's share of the kernel time.

Usage: python -m benchmarks.experiments.profile_ops BUNDLE [--variant int8] [--texts 256] [--threads 1] [--top 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import onnxruntime as ort

from layerwise.runtime.batching import cpu_batch_tokens
from layerwise.runtime.loader import load
from layerwise.runtime.tokenize import length_sorted_batches

from ..common import real_sentences


def op_times(bundle: str, variant: str, texts: list[str], threads: int) -> Counter[str]:
    """Kernel microseconds per operator type over one pass of ``texts``."""
    encoder = load(bundle, variant=variant, provider="cpu", threads=threads)
    batches = list(length_sorted_batches(encoder.tokenize(texts), 32, encoder.tokenizer.pad_id, cpu_batch_tokens(encoder.info.cpu)))
    graph = Path(bundle) / encoder.engine.manifest.variants[variant].graph.path
    with tempfile.TemporaryDirectory(prefix="layerwise-profile-") as tmp:
        options = encoder.engine.session_options()  # as the encoder's own (fused: no SkipLayerNorm re-fusion)
        options.enable_profiling, options.profile_file_prefix = True, str(Path(tmp) / variant)
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        for batch in batches:
            session.run(None, batch.feeds(encoder.engine.manifest.inputs))
        events = json.loads(Path(session.end_profiling()).read_text())
    times: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    times = op_times(args.bundle, args.variant, real_sentences(args.texts), args.threads)
    total = sum(times.values())
    print(f"{args.variant}: {total / 1000:.0f} ms of kernel time, {args.texts} sentences, {args.threads} thread(s)")
    for op, us in times.most_common(args.top):
        print(f"| {op} | {us / total:.1%} | {us / 1000:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
