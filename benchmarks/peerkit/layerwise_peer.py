"""layerwise itself as a contender, one per CPU variant in the bundle, timed in the same rounds as the peers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from .base import JOBS, Context, Peer, Spec, versions


def build_layerwise(ctx: Context, variant: str) -> Peer:
    """layerwise.load(bundle, variant) on the CPU: every layer (or the last), mean-pooled over real tokens."""
    import layerwise  # installed editable (no deps) into this venv by peers_setup.sh

    encoder = layerwise.load(ctx.require_bundle(), variant=variant, provider="cpu", threads=ctx.threads)
    if ctx.job == "last_layer":
        embed, what = (
            (lambda texts: encoder.embed(texts, layers=-1, pool="mean", batch_size=ctx.batch_size)[:, 0]),
            "layers=-1, pool='mean'",
        )
    else:
        embed, what = (lambda texts: encoder.embed(texts, pool="mean", batch_size=ctx.batch_size)), "layers='all', pool='mean'"
    return Peer(
        embed=embed,
        threads_controlled=True,
        notes=(
            f"layerwise.load(bundle, variant={variant!r}, provider='cpu', threads={ctx.threads}).embed({what}); "
            f"length-sorted batching, order restored; raw (not normalized); truncates at the bundle's max_length={encoder.info.max_length}"
        ),
        versions=versions("layerwise", "onnxruntime", "tokenizers"),
    )


def layerwise_specs(bundle: Path) -> dict[str, Spec]:
    """One contender per variant of the bundle built for the CPU, for both jobs."""
    from layerwise.runtime.manifest import read_manifest

    present = read_manifest(bundle).variants_built_for("cpu")
    if not present:
        raise ValueError(f"{bundle} has no variant built for the CPU")
    return {f"layerwise-{v}": Spec(partial(build_layerwise, variant=v), jobs=JOBS) for v in present}
