"""Layer-by-layer parity of an ONNX variant against PyTorch on real text.

For every hidden state: max |difference| over real tokens, min/mean cosine per token,
and min/mean cosine of the mean-pooled text vectors. A variant that misses a bar
fails the export, naming the layer, the metric and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ..runtime.combine import cosine
from .errors import ParityError


@dataclass(frozen=True)
class ParityBars:
    """The bars a variant must meet at every layer (None: not checked); ``--threshold`` overrides them."""

    max_abs: float | None = None
    token_cos_min: float | None = None
    pooled_cos_mean: float | None = None
    pooled_cos_min: float | None = None


DEFAULT_BARS = {
    "fp32": ParityBars(max_abs=1e-4),
    "fused": ParityBars(max_abs=1e-4),
    "int8": ParityBars(pooled_cos_mean=0.995, pooled_cos_min=0.99),
    "fp16": ParityBars(token_cos_min=0.999),
}


def bars_with_overrides(overrides: Sequence[str]) -> dict[str, ParityBars]:
    """Every variant's bars, with ``VARIANT.METRIC=VALUE`` threshold overrides applied, e.g. ``int8.pooled_cos_min=0.98``."""
    bars = dict(DEFAULT_BARS)
    metrics = [f.name for f in fields(ParityBars)]
    for item in overrides:
        try:
            key, value = item.split("=", 1)
            variant, metric = key.split(".", 1)
            number = float(value)
        except ValueError:
            raise ParityError(f"threshold {item!r} must look like VARIANT.METRIC=NUMBER, e.g. int8.pooled_cos_min=0.98") from None
        if variant not in bars or metric not in metrics:
            raise ParityError(
                f"threshold {item!r} names an unknown variant or metric; variants: {', '.join(bars)}; "
                f"metrics: {', '.join(metrics)}"
            )
        bars[variant] = replace(bars[variant], **{metric: number})
    return bars


@dataclass(frozen=True)
class LayerParity:
    layer: int
    max_abs: float
    token_cos_min: float
    token_cos_mean: float
    pooled_cos_min: float
    pooled_cos_mean: float


def _mean_pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float64)
    return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def compare(
    outputs: Sequence[Sequence[np.ndarray]], reference: Sequence[Sequence[np.ndarray]], masks: Sequence[np.ndarray]
) -> list[LayerParity]:
    """Compare per-batch, per-layer outputs with the reference; return one row per layer."""
    num_states = len(reference[0])
    rows = []
    for layer in range(num_states):
        max_abs, token_cos, pooled_cos = 0.0, [], []
        for out, ref, mask in zip(outputs, reference, masks):
            real = mask.astype(bool)
            got, want = out[layer], ref[layer]
            if not np.isfinite(got).all():
                max_abs = float("inf")
                token_cos.append(np.array([-1.0]))
                pooled_cos.append(np.array([-1.0]))
                continue
            max_abs = max(max_abs, float(np.abs(got[real] - want[real]).max()))
            token_cos.append(cosine(got[real], want[real]))
            pooled_cos.append(cosine(_mean_pool(got, mask), _mean_pool(want, mask)))
        tokens, pooled = np.concatenate(token_cos), np.concatenate(pooled_cos)
        rows.append(
            LayerParity(
                layer=layer,
                max_abs=max_abs,
                token_cos_min=float(tokens.min()),
                token_cos_mean=float(tokens.mean()),
                pooled_cos_min=float(pooled.min()),
                pooled_cos_mean=float(pooled.mean()),
            )
        )
    return rows


def failures(rows: Sequence[LayerParity], bars: ParityBars) -> list[str]:
    """Every (layer, metric) that misses its bar, worst first per metric."""
    problems = []
    if bars.max_abs is not None:
        bad = [r for r in rows if not r.max_abs <= bars.max_abs]
        problems += [f"layer {r.layer}: max abs difference {r.max_abs:.3g} > {bars.max_abs:g}" for r in bad]
    for metric in ("token_cos_min", "pooled_cos_mean", "pooled_cos_min"):
        bar = getattr(bars, metric)
        if bar is None:
            continue
        bad = [r for r in rows if not getattr(r, metric) >= bar]
        problems += [f"layer {r.layer}: {metric} {getattr(r, metric):.5f} < {bar:g} (short by {bar - getattr(r, metric):.5f})" for r in bad]
    return problems


def check(variant: str, rows: Sequence[LayerParity], bars: ParityBars) -> dict[str, Any]:
    """Raise ParityError if the variant misses a bar; else return the report for the manifest."""
    problems = failures(rows, bars)
    if problems:
        raise ParityError(
            f"variant {variant!r} is further from PyTorch than allowed on real text: "
            + "; ".join(problems[:6])
            + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
            + f". Override with --threshold {variant}.METRIC=VALUE if this is acceptable for your use"
        )
    return {"thresholds": {k: v for k, v in asdict(bars).items() if v is not None}, "layers": [asdict(r) for r in rows], "passed": True}
