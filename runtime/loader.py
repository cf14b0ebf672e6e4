"""``load``: open a bundle, pick the variant for the provider, and build a ready Encoder."""

from __future__ import annotations

import logging
import os

from .bundle import Bundle, open_bundle
from .encoder import Encoder
from .errors import BundleError, InputError, ProviderError
from .session import SessionConfig, physical_cores, resolve_provider
from .tokenize import TextTokenizer

log = logging.getLogger("layerwise")
PREFERENCE = {"cpu": ("int8", "fused", "fp32", "fp16"), "cuda": ("fp16", "fused", "fp32")}


def choose_variant(available: list[str], provider: str, requested: str | None) -> str:
    """The requested variant, checked; or the best one present for the provider."""
    if requested is not None:
        if requested not in available:
            raise BundleError(
                f"variant {requested!r} is not in this bundle (it has {', '.join(available)}); "
                f"export it with `layerwise export SOURCE --out BUNDLE --variants {requested} --force`"
            )
        if provider == "cuda" and requested == "int8":
            raise ProviderError("the int8 variant is built for the CPU provider; on CUDA use fp16, fused or fp32")
        return requested
    for variant in PREFERENCE[provider]:
        if variant in available:
            return variant
    raise ProviderError(
        f"this bundle has no variant that runs on {provider} (it has {', '.join(available)}); "
        "export fp16, fused or fp32 for CUDA"
    )


def load(
    bundle_dir: str | os.PathLike[str],
    variant: str | None = None,
    provider: str = "auto",
    threads: int | None = None,
) -> Encoder:
    """Load a bundle for serving embeddings.

    Args:
        bundle_dir: folder written by ``layerwise export``.
        variant: "fp32", "fused", "int8" or "fp16"; None picks int8 on CPU, fp16 on CUDA,
            else fused, else fp32.
        provider: "cpu", "cuda" or "auto" (CUDA when onnxruntime-gpu can use a GPU). Asking
            for "cuda" when it cannot run is an error, never a silent fall-back.
        threads: intra-op threads; None means the number of physical cores.

    Example:
        >>> enc = layerwise.load("bundles/minilm", provider="cpu")
        >>> enc.embed("hello", layers=-1).shape
        (1, 1, 384)
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InputError(f"threads must be a positive int or None, got {threads!r}")
    bundle = open_bundle(bundle_dir)
    resolved = resolve_provider(provider)
    if provider == "auto" and resolved == "cuda":
        try:
            return _build(bundle, "cuda", variant, threads)
        except ProviderError as e:
            log.warning("provider='auto': the CUDA provider cannot run this bundle here (%s); using the CPU provider", e)
            resolved = "cpu"
    return _build(bundle, resolved, variant, threads)


def _build(bundle: Bundle, provider: str, variant: str | None, threads: int | None) -> Encoder:
    manifest = bundle.manifest
    chosen = choose_variant(list(manifest.variants), provider, variant)
    config = SessionConfig(provider=provider, threads=threads or physical_cores())
    pad_id = int(manifest.raw["model"].get("pad_token_id") or 0)
    tokenizer = TextTokenizer(bundle.tokenizer_json(), manifest.max_length, pad_id)
    return Encoder(bundle, chosen, config, tokenizer)
