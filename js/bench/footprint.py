"""The Python runtime's footprint, measured as bench/footprint.mjs measures the Node package.

Usage: python bench/footprint.py BUNDLE [VARIANT] [THREADS] -> one JSON line.
"""

import json
import resource
import statistics
import sys
import time

TEXT = "Layer-wise embeddings let a probe read syntax from the middle layers and semantics from the last ones."

bundle, variant, threads = (sys.argv[1:] + [None, None])[:3]
started = time.perf_counter()
import layerwise  # noqa: E402  (the import is part of a cold load)

enc = layerwise.load(bundle, variant=variant, provider="cpu", threads=int(threads or 2))
load_seconds = time.perf_counter() - started
started = time.perf_counter()
enc.embed([TEXT])
first_ms = (time.perf_counter() - started) * 1000
steady = []
for _ in range(20):
    started = time.perf_counter()
    enc.embed([TEXT])
    steady.append((time.perf_counter() - started) * 1000)
print(json.dumps({
    "runtime": f"python onnxruntime {layerwise.runtime.session.ort.__version__}", "variant": enc.info.variant, "threads": enc.info.threads,
    "loadSeconds": round(load_seconds, 3), "firstMs": round(first_ms, 1), "steadyMs": round(statistics.median(steady), 1),
    "peakRssMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
enc.close()
