"""``layerwise inspect``: a bundle's manifest as a short human summary and parity table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runtime.manifest import read_manifest


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
    raw = manifest.raw
    model, source, versions = raw["model"], raw.get("source", {}), raw.get("versions", {})
    lines = [
        f"bundle   {Path(bundle_dir)}  (format {raw['format']} v{raw['format_version']}, created {raw.get('created_utc', '?')})",
        f"source   {source.get('id_or_path')}  revision {source.get('revision') or 'unknown'}",
        f"model    {model['model_type']} {model.get('architecture', '')}: {manifest.num_layers} layers, hidden "
        f"{manifest.hidden_size}, max length {manifest.max_length}; default pooling {manifest.default_pooling.get('pool')}"
        f"{' + normalize' if manifest.default_pooling.get('normalize') else ''}",
        f"versions " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "| variant | MB | providers | fused operators | export s |",
        "|---|---|---|---|---|",
    ]
    for name, variant in manifest.variants.items():
        size = sum(f.bytes for f in variant.files) / 1e6
        ops = variant.report.get("fused_operators") or {}
        fused = ", ".join(f"{k} {v}" for k, v in ops.items() if v) or "-"
        providers = ",".join(variant.report.get("providers", []))
        lines.append(f"| {name} | {size:.1f} | {providers} | {fused} | {variant.report.get('export_seconds', '?')} |")
    lines += [
        "",
        "Parity against PyTorch (per hidden state; pooled = mean over real tokens):",
        "",
        "| variant | layer | max abs diff | token cos min | token cos mean | pooled cos min | pooled cos mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, variant in manifest.variants.items():
        lines += _parity_rows(name, variant.report.get("parity", {}))
    return "\n".join(lines)
