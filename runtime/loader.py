"""``load``: open a bundle, pick the variant for the provider, and build a ready Encoder."""

from __future__ import annotations

import logging
import os

from .bundle import Bundle, open_bundle
from .encoder import Encoder
from .errors import BundleError, InputError, ProviderError
from .manifest import VARIANT_PROVIDERS, Manifest
from .session import SessionConfig, physical_cores, resolve_provider
from .tokenize import TextTokenizer

log = logging.getLogger("layerwise")
FASTEST_FIRST = ("int8", "fp16", "fused", "fp32")  # among the variants that run on a provider
WHY_DEFAULT = {  # what variant=None says in Encoder.info.variant_reason (figures: docs/benchmarks.md, benchmarks/results)
    "int8": "fastest on the CPU at the int8 accuracy bar (all layers of real sentences, vs the faster of fp32 and fused: "
    "2.2x on AVX-512 VNNI and on AMX, 1.3x on AVX2); its pair-bounded weights give the same integers on every CPU",
    "fp16": "fastest on CUDA",
    "fused": "fastest float variant in this bundle",
    "fp32": "the only variant in this bundle for this provider",
}


def choose_variant(manifest: Manifest, provider: str, requested: str | None) -> str:
    """The requested variant, checked against the providers the manifest records for it; or the
    fastest one present that runs on ``provider``, those built for it first (CPU: int8, fused,
    fp32, fp16; CUDA: fp16, fused, fp32)."""
    variants = manifest.variants
    if requested is not None:
        if requested not in variants:
            raise BundleError(
                f"variant {requested!r} is not in this bundle (it has {', '.join(variants)}); "
                f"export it with `layerwise export SOURCE --out BUNDLE --variants {requested} --force`"
            )
        runs_on = variants[requested].providers
        if provider not in runs_on:
            others = [name for name, v in variants.items() if provider in v.providers]
            raise ProviderError(
                f"the {requested} variant runs on {', '.join(runs_on)} only (as its manifest records), not {provider}; "
                f"on {provider} use {', '.join(others) or 'another variant (re-export the bundle with one)'}"
            )
        return requested
    runs_here = [name for name in FASTEST_FIRST if name in variants and provider in variants[name].providers]
    runs_here.sort(key=lambda name: variants[name].built_for != provider)  # stable: keeps FASTEST_FIRST within each group
    if not runs_here:
        fitting = [name for name, providers in VARIANT_PROVIDERS.items() if provider in providers]
        raise ProviderError(
            f"this bundle has no variant that runs on {provider} (it has {', '.join(variants)}); "
            f"export {', '.join(fitting)} for {provider}"
        )
    return runs_here[0]


def load(
    bundle_dir: str | os.PathLike[str],
    variant: str | None = None,
    provider: str = "auto",
    threads: int | None = None,
    cpu_arena: bool = False,
) -> Encoder:
    """Load a bundle for serving embeddings.

    Args:
        bundle_dir: folder written by ``layerwise export``.
        variant: "fp32", "fused", "int8" or "fp16"; None picks the fastest variant built for the
            provider (int8 on CPU, fp16 on CUDA), else fused, else fp32.
        provider: "cpu", "cuda" or "auto" (CUDA when onnxruntime-gpu can use a GPU). Asking
            for "cuda" when it cannot run is an error, never a silent fall-back.
        threads: intra-op threads; None means the number of physical cores.
        cpu_arena: ONNX Runtime's CPU memory arena; off by default, since its blocks stay held
            after long inputs (benchmarks/experiments/soak.py compares both).

    Example:
        >>> enc = layerwise.load("bundles/all-MiniLM-L6-v2", provider="cpu")
        >>> enc.embed("hello", layers=-1).shape
        (1, 1, 384)
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InputError(
            "{p:threads} must be a positive int, got {value} (leave it out for one per physical core)", parameter="threads", value=threads
        )
    bundle = open_bundle(bundle_dir)
    resolved = resolve_provider(provider)
    if provider == "auto" and resolved == "cuda":
        try:
            return _build(bundle, "cuda", variant, threads, cpu_arena)
        except ProviderError as e:
            log.warning("provider='auto': the CUDA provider cannot run this bundle here (%s); using the CPU provider", e)
            resolved = "cpu"
    return _build(bundle, resolved, variant, threads, cpu_arena)


def _build(bundle: Bundle, provider: str, variant: str | None, threads: int | None, cpu_arena: bool) -> Encoder:
    manifest = bundle.manifest
    chosen = choose_variant(manifest, provider, variant)
    config = SessionConfig(provider=provider, threads=threads or physical_cores(), cpu_arena=cpu_arena)
    tokenizer = TextTokenizer(bundle.tokenizer_json(), manifest.model.max_length, manifest.model.pad_token_id)
    reason = "requested" if variant is not None else f"default on {provider}: {WHY_DEFAULT[chosen]}"
    return Encoder(bundle, chosen, config, tokenizer, reason)
