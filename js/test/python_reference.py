"""Reference vectors from the Python runtime for the JavaScript tests, computed at test time.

Usage: python python_reference.py SPEC.json OUT.json, where SPEC holds the bundle folder,
the texts and the cases ({variant, method: "embed" | "embed_tokens", options in the JS
spelling}). OUT holds, per case, {dims, data: base64 float32 little-endian} (a list of them
for per-token output), plus the constants the JS package mirrors, so a drift fails a test.
"""

from __future__ import annotations

import base64
import json
import sys

import numpy as np

import warnings

import layerwise
from layerwise.runtime import TruncationWarning, engine, loader, manifest, options

NAMES = {"batchSize": "batch_size", "maxLength": "max_length"}


def _array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dims": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _run(enc, method: str, texts: list[str], opts: dict) -> object:
    kwargs = {NAMES.get(k, k): v for k, v in opts.items()}
    if method == "embed_tokens":
        return [_array(t) for t in enc.embed_tokens(texts, **kwargs)]
    return _array(enc.embed(texts, **kwargs))


def main(spec_path: str, out_path: str) -> None:
    warnings.simplefilter("ignore", TruncationWarning)  # truncation is compared, not warned about
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    encoders: dict[str, object] = {}
    results = []
    for case in spec["cases"]:
        variant = case["variant"]
        if variant not in encoders:
            encoders[variant] = layerwise.load(spec["bundle"], variant=variant, provider="cpu", threads=spec.get("threads", 1))
        enc = encoders[variant]
        results.append({"result": _run(enc, case["method"], spec["texts"], case.get("options", {})), "truncated": list(enc.last_stats.truncated_indices)})
    ids = next(iter(encoders.values())).tokenize(spec["texts"]).ids  # the ids the JS tokenizer must reproduce
    constants = {
        "FORMAT_VERSION": manifest.FORMAT_VERSION,
        "VARIANTS": list(manifest.VARIANTS),
        "POOLING_KINDS": list(manifest.POOLING_KINDS),
        "INPUT_NAMES": list(manifest.INPUT_NAMES),
        "BATCH_TOKENS_CPU": engine.BATCH_TOKENS_CPU,
        "COMBINES": [k for k in options.COMBINERS],
        "FASTEST_FIRST": list(loader.FASTEST_FIRST),
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"cases": results, "ids": ids, "constants": constants}, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
