"""Re-check a variant on this machine against reference vectors stored in the bundle.

The exporter stores PyTorch's mean-pooled hidden states (every layer) for a small set of
real texts in ``verification.npz``, and each variant's bars in the manifest. ``verify``
embeds the same texts through the Encoder exactly as users do and compares layer by
layer, so a CPU whose kernels give other numbers (int8 on x86 without VNNI, say) is
caught without torch. No reference in the bundle: re-export it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .combine import cosine
from .errors import BundleError, InputError


@dataclass(frozen=True)
class LayerCheck:
    """One hidden state's agreement with the stored reference."""

    layer: int
    pooled_max_abs: float
    pooled_cos_mean: float
    pooled_cos_min: float


@dataclass(frozen=True)
class VerifyReport:
    """Per-layer agreement of one variant, its bars and what missed them."""

    variant: str
    texts: int
    bars: dict[str, float]
    layers: tuple[LayerCheck, ...]
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """The per-layer table ``layerwise verify`` prints."""
        bars = ", ".join(f"{k} {'<=' if k == 'pooled_max_abs' else '>='} {v}" for k, v in self.bars.items())
        lines = [f"{self.variant}: {self.texts} texts, bars: {bars}", "  layer  max_abs    cos_mean  cos_min"]
        lines += [f"  {r.layer:>5}  {r.pooled_max_abs:.2e}  {r.pooled_cos_mean:.5f}   {r.pooled_cos_min:.5f}" for r in self.layers]
        lines.append("  PASS" if self.passed else "  FAIL: " + "; ".join(self.failures))
        return "\n".join(lines)


def read_reference(data: bytes) -> tuple[list[str], np.ndarray]:
    """(texts, float32 [texts, hidden states, hidden]) from verified ``verification.npz`` bytes."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            texts = json.loads(npz["texts_json"].tobytes().decode("utf-8"))
            return [str(t) for t in texts], np.asarray(npz["reference"], dtype=np.float32)
    except (ValueError, KeyError, OSError, UnicodeDecodeError) as e:
        raise BundleError(f"the bundle's verification reference is unreadable ({e}); re-export the bundle") from e


def compare(got: np.ndarray, want: np.ndarray, bars: dict[str, float], variant: str) -> VerifyReport:
    """Compare pooled [texts, layers, hidden] arrays layer by layer and apply the bars."""
    rows, failures = [], []
    for layer in range(want.shape[1]):
        cos = cosine(got[:, layer], want[:, layer])
        row = LayerCheck(layer, float(np.abs(got[:, layer] - want[:, layer]).max()), float(cos.mean()), float(cos.min()))
        rows.append(row)
        for metric, bar in bars.items():
            value = getattr(row, metric)
            if value > bar if metric == "pooled_max_abs" else value < bar:
                failures.append(f"layer {layer}: {metric} {value:.5g} misses {bar}")
    return VerifyReport(variant, int(want.shape[0]), dict(bars), tuple(rows), tuple(failures))


def verify(
    embed: Callable[[list[str]], np.ndarray], variant: str, reference: bytes, bars: dict[str, float], texts: int | None = None
) -> VerifyReport:
    """Embed the reference texts (the first ``texts`` of them, or all) with ``embed`` (every layer, mean-pooled,
    [texts, layers, hidden]) and check the bars. ``Encoder.verify`` passes its own ``embed``; this module
    imports no Encoder, so the two do not import each other."""
    words, want = read_reference(reference)
    if texts is not None:
        if isinstance(texts, bool) or not isinstance(texts, int) or texts < 1:
            raise InputError(
                f"texts is how many reference texts to check, an int of at least 1, got {texts!r}; pass None to check them all"
            )
        words, want = words[:texts], want[:texts]
    return compare(embed(words), want, bars, variant)
