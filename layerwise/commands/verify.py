"""``layerwise verify``: re-check a bundle's variants on this machine, without torch."""

from __future__ import annotations

import argparse
from typing import Any

from ..runtime import load
from ..runtime.cpu import describe
from ..runtime.errors import InputError, ProviderError
from ..runtime.manifest import read_manifest
from .flags import add_bundle, add_runtime_flags, verb


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "verify", "re-check each variant's accuracy on this machine against the bundle's stored reference")
    add_bundle(p)
    p.add_argument("--texts", type=int, help="check only the first N reference texts (default: all)")
    add_runtime_flags(p)
    p.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Print each variant's per-layer table; exit 1 when any variant misses its bar."""
    if args.texts is not None and args.texts < 1:
        raise InputError(f"--texts is how many reference texts to check, at least 1, got {args.texts}; leave it out to check them all")
    cpu = describe()
    print(f"CPU: {cpu['cpu']} ({cpu['cpu_family_title']}; flags {' '.join(cpu['cpu_flags']) or '-'})")
    variants = [args.variant] if args.variant else list(read_manifest(args.bundle).variants)
    failed = []
    for variant in variants:
        try:
            encoder = load(args.bundle, variant=variant, provider=args.provider, threads=args.threads)
        except ProviderError as e:
            if args.variant:
                raise
            print(f"{variant}: not checked on provider {args.provider!r}: {e}")
            continue
        with encoder:
            report = encoder.verify(texts=args.texts)
        print(report.table())
        if not report.passed:
            failed.append(variant)
    if failed:
        print(f"FAILED: {', '.join(failed)} missed the bar on this machine; use another variant here (e.g. --variant fused)")
        return 1
    return 0
