"""``layerwise inspect``: a bundle's manifest as a short human summary and parity table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..runtime.manifest import FORMAT, MANIFEST_NAME, read_manifest
from .flags import add_bundle, verb


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "inspect", "print a bundle's manifest summary and parity table")
    add_bundle(p)
    p.set_defaults(run=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    bundle = Path(args.bundle)
    print(describe(bundle.parent if bundle.name == MANIFEST_NAME and bundle.is_file() else bundle))  # the manifest names its bundle
    return 0


def _parity_rows(variant: str, report: dict[str, Any]) -> list[str]:
    rows = []
    for r in report.get("layers", []):
        rows.append(
            f"| {variant} | {r['layer']} | {r['max_abs']:.2e} | {r['token_cos_min']:.6f} | {r['token_cos_mean']:.6f} "
            f"| {r['pooled_cos_min']:.6f} | {r['pooled_cos_mean']:.6f} |"
        )
    return rows


def describe(bundle_dir: str | Path) -> str:
    """Manifest summary, one line per variant, then the per-layer parity table (Markdown)."""
    manifest = read_manifest(bundle_dir)
    model, source, pooling = manifest.model, manifest.source, manifest.default_pooling
    lines = [
        f"bundle   {Path(bundle_dir)}  (format {FORMAT} v{manifest.format_version}, created {manifest.created_utc or '?'})",
        f"source   {source.id_or_path}  revision {source.revision or 'unknown'}",
        f"model    {model.model_type} {model.architecture}: {model.num_layers} layers, hidden "
        f"{model.hidden_size}, max length {model.max_length}; default pooling {pooling.get('pool')}"
        f"{' + normalize' if pooling.get('normalize') else ''}",
        "inputs   " + ", ".join(f"{i.name} ({i.role})" for i in manifest.inputs),
        "versions " + ", ".join(f"{k} {v}" for k, v in manifest.versions.items()),
        "",
        "| variant | MB | providers | fused operators | export s |",
        "|---|---|---|---|---|",
    ]
    for name, variant in manifest.variants.items():
        size = sum(f.bytes for f in variant.files) / 1e6
        given_back = variant.build.details.get("skip_layer_norm_unfused", {}).get("count")
        fused = ", ".join(
            f"{k} {v}" + (" (as Add + LayerNormalization on the CPU)" if k == "SkipLayerNormalization" and given_back else "")
            for k, v in variant.build.fused_operators.items()
            if v
        ) or "-"
        lines.append(f"| {name} | {size:.1f} | {','.join(variant.providers)} | {fused} | {variant.export_seconds} |")
    lines += [
        "",
        "Parity against PyTorch (per hidden state; pooled = mean over real tokens):",
        "",
        "| variant | layer | max abs diff | token cos min | token cos mean | pooled cos min | pooled cos mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, variant in manifest.variants.items():
        lines += _parity_rows(name, variant.parity)
    return "\n".join(lines)
