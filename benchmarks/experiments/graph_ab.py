"""One graph change at a time: a bundle variant against the same variant rewritten, in one process.

Each change (CHANGES) writes a copy of the bundle whose variant graph or session config differs in
one thing, then times ``embed`` on real sentences (all hidden states, mean-pooled) for the current
and the changed bundle, alternated round by round, and reports the speed ratio, the worst-layer
pooled cosine to the fp32 variant on those sentences and on odd text (``odd_texts``), and whether a
text's vector depends on the other texts of its call (each of the first ALONE texts embedded alone
against the same texts embedded together). This is how the int8 and fused forms the README lists
as tried were measured; rerun it on each CPU family (AMX, AVX2) before choosing a form there.

Usage: python -m benchmarks.experiments.graph_ab BUNDLE [--changes a,b] [--texts 256] [--repeats 5] [--write]
(``make bench-forms``: every change, 7 repeats, written to benchmarks/results/)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnx

import layerwise
from layerwise.exporter.reference import short_texts
from layerwise.io.atomic import write_text_atomic
from layerwise.runtime.manifest import read_manifest

from ..common import agreement, alternate, machine, real_sentences, results_stem
from .graph_rewrites import (
    Rewrite,
    int8_merged_qkv,
    int8_multi_head_attention,
    int8_per_tensor_activations,
    int8_static_scales,
    matmul_nbits,
)

ALONE = 32  # texts embedded one per call too: a form whose vectors depend on the batch's other texts shows it


def odd_texts() -> dict[str, list[str]]:
    """Sets of text unlike the calibration sentences, where fixed scales would clip: one-to-four-word
    queries, random code points, and other scripts, emoji, repeats, symbols and code (deterministic)."""
    rng = random.Random(0)
    lines = [
        "I love this 😍😍😍 so much!!! 🎉🎉 #blessed @friend http://example.com/a?b=c", "$$$ 1234567890 ====== ------ ......",
        "A" * 300, "the " * 120, "ZZZZZZZZ QQQQQQ XXXXXXX", "こんにちは世界、これは日本語の文です。", "Привет, мир! Это русский текст.",
        "مرحبا بالعالم", "def f(x):\n    return {k: v for k, v in x.items() if v is not None}  # SELECT * FROM t;",
    ]  # fmt: skip
    return {
        "queries": short_texts(real_sentences(64)),
        "random code points": ["".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(5, 80))) for _ in range(32)],
        "scripts, emoji, symbols, code": lines,
    }


def worst_set(encoder: Any, sets: dict[str, list[str]], references: dict[str, np.ndarray]) -> tuple[float, float, str]:
    """Over the sets: the lowest pooled cosine to the reference, and the lowest worst-layer mean with its set's name."""
    found = {name: agreement(encoder.embed(texts), references[name]) for name, texts in sets.items()}
    name = min(found, key=lambda n: found[n]["cos_mean_worst_layer"])
    return min(q["cos_min"] for q in found.values()), found[name]["cos_mean_worst_layer"], name


@dataclass(frozen=True)
class Change:
    """One thing changed in one variant: its graph (``rewrite``) or its session config."""

    variant: str
    what: str
    rewrite: Rewrite | None = None
    session_config: dict[str, str] | None = None  # None: the manifest's


CHANGES = {
    "matmulnbits-32": Change("int8", "MatMulNBits from the fp32 graph, 8-bit, block 32, accuracy level 4", matmul_nbits(32)),
    "matmulnbits-128": Change("int8", "MatMulNBits from the fp32 graph, 8-bit, block 128, accuracy level 4", matmul_nbits(128)),
    "merged-qkv": Change("int8", "Q, K and V in one MatMulIntegerToFloat and a Split", int8_merged_qkv),
    "per-tensor-activations": Change("int8", "one activation scale per tensor: scale and bias inside MatMulIntegerToFloat",
                                     int8_per_tensor_activations(down_projections=True)),
    "per-tensor-but-ffn-out": Change("int8", "as per-tensor-activations, but per-token where K > N (the FFN output)",
                                     int8_per_tensor_activations(down_projections=False)),
    "static-scales-but-ffn-out": Change("int8", "as per-tensor-but-ffn-out, with constant scales from the calibration sentences",
                                        int8_static_scales),
    "multi-head-attention": Change("int8", "each layer's float attention as one MultiHeadAttention with key lengths as its mask",
                                   int8_multi_head_attention),
    "denormals-as-zero": Change("int8", "session.set_denormal_as_zero=1", session_config={"session.set_denormal_as_zero": "1"}),
    "skip-norms-refused": Change("fused", "the fused graph without its session_config: ONNX Runtime fuses SkipLayerNormalization again",
                                 session_config={}),
}  # fmt: skip


def changed_bundle(bundle: Path, change: Change, out: Path) -> Path:
    """A copy of ``bundle`` at ``out`` with ``change`` applied to its variant (digests updated)."""
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["variants"][change.variant]
    if change.rewrite is not None and (model := change.rewrite(bundle)) is not None:
        graph = out / entry["graph"]["path"]
        onnx.save(model, str(graph))
        entry["graph"].update(bytes=graph.stat().st_size, sha256=hashlib.sha256(graph.read_bytes()).hexdigest())
    if change.session_config is not None:
        entry["session_config"] = change.session_config
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def measure(bundle: Path, names: list[str], texts: list[str], repeats: int) -> list[dict[str, Any]]:
    """Speed ratio and accuracy of each named change against the current variant, timed in the same rounds."""
    with layerwise.load(bundle, variant="fp32", provider="cpu") as fp32:
        odd = odd_texts()
        reference, odd_references = fp32.embed(texts), {name: fp32.embed(t) for name, t in odd.items()}
    variants = sorted({CHANGES[n].variant for n in names})
    encoders = {f"current {v}": layerwise.load(bundle, variant=v, provider="cpu") for v in variants}
    with tempfile.TemporaryDirectory(prefix="layerwise-ab-") as tmp:
        for name in names:
            copy = changed_bundle(bundle, CHANGES[name], Path(tmp) / name)
            encoders[name] = layerwise.load(copy, variant=CHANGES[name].variant, provider="cpu")
        results: dict[str, Any] = {}
        timings = alternate({k: (lambda e=e: e.embed(texts)) for k, e in encoders.items()}, repeats=repeats, keep=results)
        rows = []
        for label, encoder in encoders.items():
            variant = label.removeprefix("current ") if label.startswith("current ") else CHANGES[label].variant
            quality = agreement(results[label], reference)
            odd_min, odd_mean, odd_set = worst_set(encoder, odd, odd_references)
            alone = np.stack([encoder.embed([t])[0] for t in texts[:ALONE]])
            invariance = agreement(alone, encoder.embed(texts[:ALONE]))["cos_min"]
            rows.append({
                "change": label, "variant": variant, "what": CHANGES[label].what if label in CHANGES else "as exported",
                "texts_per_s": len(texts) / timings[label]["median_s"],
                "vs_current": timings[f"current {variant}"]["median_s"] / timings[label]["median_s"],
                "cos_min": quality["cos_min"], "cos_mean_worst_layer": quality["cos_mean_worst_layer"],
                "alone_vs_batched_cos_min": invariance,
                "odd_cos_min": odd_min, "odd_cos_mean_worst_layer": odd_mean, "odd_worst_set": odd_set,
            })  # fmt: skip
            encoder.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--changes", default=",".join(CHANGES), help=f"comma-separated, from {', '.join(CHANGES)} (default: all)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="also write benchmarks/results/<date>-<host>-<cpu family>-graph_ab.md")
    args = parser.parse_args(argv)
    names = [n for n in args.changes.split(",") if n]
    unknown = [n for n in names if n not in CHANGES]
    if unknown or not names:
        parser.error(f"unknown changes {unknown or names}; choose from {', '.join(CHANGES)}")
    missing = sorted({CHANGES[n].variant for n in names} - set(read_manifest(args.bundle).variants) - {"fp32"})
    if missing or "fp32" not in read_manifest(args.bundle).variants:
        parser.error(f"the bundle lacks variant(s) {', '.join(missing or ['fp32'])}; export them first")
    if args.texts < 1 or args.repeats < 1:
        parser.error("--texts and --repeats must be >= 1")
    facts = machine()
    versions = ", ".join(f"{k} {v}" for k, v in facts["versions"].items() if k in ("onnxruntime", "numpy"))
    lines = [
        f"{facts['cpu']} ({facts['cpu_family_title']}) [{' '.join(facts['cpu_flags'])}], {versions}; {args.texts} sentences, "
        f"all layers mean-pooled, median of {args.repeats} alternated rounds",
        "",
        f"| change | variant | texts/s | vs current | cos to fp32 min / worst-layer mean | odd text: min / worst set's worst-layer mean "
        f"| first {ALONE} alone vs batched, cos min | what |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in measure(args.bundle, names, real_sentences(args.texts), args.repeats):
        lines.append(
            f"| {r['change']} | {r['variant']} | {r['texts_per_s']:.0f} | {r['vs_current']:.3f}x | "
            f"{r['cos_min']:.5f} / {r['cos_mean_worst_layer']:.5f} | {r['odd_cos_min']:.5f} / {r['odd_cos_mean_worst_layer']:.5f} "
            f"({r['odd_worst_set']}) | {r['alone_vs_batched_cos_min']:.5f} | {r['what']} |"
        )  # fmt: skip
    print("\n".join(lines))
    if args.write:
        stem = results_stem(date.today().isoformat(), socket.gethostname(), facts["cpu_family"], "-graph_ab")
        command = " ".join(["python -m benchmarks.experiments.graph_ab", *(argv if argv is not None else sys.argv[1:])])
        write_text_atomic(stem.with_name(stem.name + ".md"), f"# One change at a time\n\n`{command}`\n\n" + "\n".join(lines) + "\n")
        print(f"\nwritten: {stem.name}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
