"""``layerwise extract`` local vs Ray Data on the same corpus: texts/s end to end, and Ray's overhead.

Corpus: natural English sentences from the docstrings of the Python standard library (plus
the reference manual), deduplicated, as one JSONL file; all layers mean-pooled. Each engine
runs once as the CLI a user runs, start-up included (Ray: cluster start, actors, model
loads). A single run, not alternated: a rough figure for the closing note, not a benchmark.

Usage: python -m benchmarks.experiments.extract_engines BUNDLE [--texts 10000] [--variant int8]
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def stdlib_sentences(count: int) -> list[str]:
    """``count`` distinct prose sentences (5-80 words) from the standard library's docstrings."""
    seen: dict[str, None] = {}
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for raw in SENTENCE_END.split(ast.get_docstring(node) or ""):
                    sentence = " ".join(raw.split())
                    if sentence[:1].isupper() and sentence[-1:] in ".!?" and 5 <= len(sentence.split()) <= 80 and ">>>" not in sentence:
                        seen.setdefault(sentence)
                        if len(seen) == count:
                            return list(seen)
    raise ValueError(f"only {len(seen)} sentences found, {count} asked for")


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "layerwise.cli", "-q", *argv], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "corpus.jsonl"
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in stdlib_sentences(args.texts)))
        common = ["extract", args.bundle, "--input", str(source), "--layers", "all", "--pool", "mean", "--variant", args.variant]
        local = timed([*common, "--output", f"{tmp}/local"])
        print(json.dumps({"local_s": round(local, 1)}), flush=True)
        ray = timed([*common, "--output", f"{tmp}/ray", "--engine", "ray", "--actors", str(args.actors), "--threads-per-actor", "1"])
    result = {"texts": args.texts, "variant": args.variant, "local_s": round(local, 1), "ray_s": round(ray, 1),
              "local_texts_per_s": round(args.texts / local, 1), "ray_texts_per_s": round(args.texts / ray, 1),
              "ray_overhead": f"{ray / local - 1:+.0%}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
