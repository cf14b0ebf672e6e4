"""``layerwise export``: a Hugging Face encoder checkpoint into a verified bundle, then its summary."""

from __future__ import annotations

import argparse
from typing import Any

from ..runtime.manifest import VARIANTS
from .flags import verb


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "export", "export an encoder checkpoint (BERT, RoBERTa, MPNet, ...: docs/export.md) to a verified bundle")
    p.add_argument("source", help="a local Hugging Face folder, or a hub id")
    p.add_argument("--out", required=True, help="bundle folder to create")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {','.join(VARIANTS)}")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--allow-pickle", action="store_true", help="accept pickle (.bin) weights: only for checkpoints you trust")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="VARIANT.METRIC=VALUE",
        help="override a parity bar, e.g. int8.pooled_cos_min=0.98",
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for the parity checks (default: physical cores)")
    p.add_argument(
        "--edge",
        action="store_true",
        help="compact edge bundle: int8 word embeddings in the int8 variant, ORT-format graphs, required_operators.config",
    )
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    try:
        from ..exporter import export
    except ImportError as e:
        raise ImportError(f"`layerwise export` needs the export extra ({e.name or e} is missing): pip install 'layerwise[export]'") from e
    from .inspect import describe

    variants = [part.strip() for part in args.variants.split(",") if part.strip()]
    export(args.source, args.out, variants=variants, force=args.force, allow_pickle=args.allow_pickle,
           thresholds=args.threshold, threads=args.threads, edge=args.edge)  # fmt: skip
    print(describe(args.out))
    return 0
