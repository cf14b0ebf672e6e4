"""The flags every embedding verb shares (``embed``, ``extract``, ``probe``, ``bench``, ``serve``), declared once.

``add_option_flags`` adds the flags that map onto ``EmbedOptions`` (runtime/options.py) and
``options_from_args`` builds it from them, so each verb only says which choices and defaults
differ. ``add_runtime_flags`` adds --variant, --provider and --threads.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..runtime.combine import COMBINES
from ..runtime.manifest import PROVIDERS, VARIANTS
from ..runtime.options import BATCH_SIZE, OVERFLOWS, POOLS, EmbedOptions
from ..runtime.windows import STRIDE_DEFAULT_RULE

OVERFLOW_HELP = {
    "truncate": "cut",
    "error": "refuse",
    "chunk": "embed the whole text as overlapping windows, merged",
}


def layers_flag(text: str) -> str | list[int]:
    """``all`` or comma-separated ints (``0,-4,-1``); an empty item (``1,,2``) is refused."""
    if text.strip() == "all":
        return "all"
    parts = [part.strip() for part in text.split(",")]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes 'all' or comma-separated ints like 0,-1, got {text!r}") from None


def numbers_flag(text: str) -> list[float]:
    """Comma-separated numbers (``--weights 0.1,-2,3``)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated numbers like 0.5,-1,2, got {text!r}") from None


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` that shows each flag's default, unless its help says it already or it has none (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def verb(verbs: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A verb's parser, with defaults in its ``--help``."""
    return verbs.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", formatter_class=HelpFormatter)


def add_bundle(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="a bundle folder written by `layerwise export` (or its manifest.json)")


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, help="default: the fastest one built for the provider")
    parser.add_argument("--provider", choices=["auto", *PROVIDERS], default="auto", help="auto: CUDA when onnxruntime-gpu can use a GPU")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")


def add_option_flags(
    parser: argparse.ArgumentParser,
    pools: Sequence[str] = POOLS,
    pool_help: str = "none: per-token states",
    overflows: Sequence[str] = OVERFLOWS,
    overflow_default: str | None = None,
    combine: bool = True,
    layers: bool = True,
) -> None:
    """The flags of ``EmbedOptions``: --layers, --pool, --combine (and --weights/--gamma), --normalize,
    --max-length, --overflow, --stride, --batch-size."""
    if layers:
        parser.add_argument("--layers", type=layers_flag, default="all", help="'all' or ints like 0,-4,-1 (negative counts from the end)")
    parser.add_argument("--pool", choices=pools, default="mean", help=pool_help)
    if combine:
        parser.add_argument("--combine", choices=COMBINES, help="one vector instead of one per layer")
        parser.add_argument(
            "--weights",
            type=numbers_flag,
            help="with --combine scalar_mix: one weight per layer, softmax-normalised (as layerwise probe prints)",
        )
        parser.add_argument("--gamma", type=float, default=1.0, help="with --combine scalar_mix: the scale of the mix")
    parser.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    parser.add_argument("--max-length", type=int, help="tokens per text at most (default: the model maximum)")
    choices = "; ".join(f"{name}: {OVERFLOW_HELP[name]}" for name in overflows)
    parser.add_argument("--overflow", choices=overflows, default=overflow_default, help=f"texts over --max-length: {choices}")
    parser.add_argument(
        "--stride", type=int, help=f"with --overflow chunk: tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})"
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="texts per run at most")


def options_from_args(args: argparse.Namespace, **fixed: Any) -> EmbedOptions:
    """``EmbedOptions`` from the flags ``add_option_flags`` added (``fixed`` overrides some); refusals name the flags."""
    values = {
        "layers": tuple(args.layers) if isinstance(getattr(args, "layers", "all"), list) else getattr(args, "layers", "all"),
        "pool": args.pool,
        "combine": getattr(args, "combine", None),
        "normalize": args.normalize,
        "overflow": args.overflow,
        "max_length": args.max_length,
        "stride": args.stride,
        "batch_size": args.batch_size,
    }
    if values["combine"] == "scalar_mix" or getattr(args, "weights", None) is not None or getattr(args, "gamma", 1.0) != 1.0:
        values.update(weights=tuple(args.weights) if args.weights is not None else None, gamma=args.gamma)
    return EmbedOptions(**{**values, **fixed})
