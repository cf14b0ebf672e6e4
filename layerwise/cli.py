"""The ``layerwise`` command: export, inspect, verify, embed, bench, serve, extract and triton.

Each verb parses its flags here (extract and triton in their own modules) and runs in
``layerwise/commands/<verb>.py`` (export and serve call the library directly); errors are printed as one line
naming the fix, with exit status 2 (bad input) or 1 (a file that cannot be read or written).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .commands.extract import add_parser as add_extract_parser
from .commands.probe import add_parser as add_probe_parser
from .commands.triton import add_parser as add_triton_parser
from .io.streams import LossyStreamHandler, quiet_broken_pipe
from .runtime.errors import InputError, LayerwiseError
from .runtime.manifest import MANIFEST_NAME, PROVIDERS, VARIANTS
from .runtime.options import BATCH_SIZE, OVERFLOWS, POOLS
from .runtime.windows import STRIDE_DEFAULT_RULE
from .server.settings import API_KEY_ENV
from .server.settings import default as server_default

# The serve flags that set a number in server/settings.py's Settings (their defaults live there alone).
SERVE_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("max_batch_tokens", int, "tokens in one batched run (at least the model's max length)"),
    ("max_batch_requests", int, "requests merged into one run at most"),
    ("max_wait_ms", float, "longest a request waits for others to join its run, only while more are arriving"),
    ("max_client_batch_size", int, "inputs per request (more: 422)"),
    ("max_concurrent_requests", int, "requests admitted at once (more: 429 at once)"),
    ("payload_limit", int, "request body bytes (more: 413, before parsing)"),
    ("graceful_timeout", float, "seconds in-flight requests get on SIGTERM/SIGINT"),
    ("keep_alive_timeout", float, "close a connection idle this many seconds"),
    ("header_timeout", float, "seconds a request head may take (then 408 and close)"),
    ("body_timeout", float, "seconds a request body may take after its head (then 408 and close)"),
)

def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _layers(text: str) -> str | list[int]:
    if text == "all":
        return "all"
    try:
        return [int(part) for part in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes 'all' or comma-separated ints like 0,-1, got {text!r}") from None


def _add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, help="default: the fastest one built for the provider")
    parser.add_argument("--provider", choices=["auto", *PROVIDERS], default="auto")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")


def _export(args: argparse.Namespace) -> int:
    from . import export

    export(
        args.source,
        args.out,
        variants=_csv(args.variants),
        force=args.force,
        allow_pickle=args.allow_pickle,
        thresholds=args.threshold,
        threads=args.threads,
        edge=args.edge,
    )
    from .commands.inspect import describe

    print(describe(args.out))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .commands.inspect import describe

    bundle = Path(args.bundle)
    print(describe(bundle.parent if bundle.name == MANIFEST_NAME and bundle.is_file() else bundle))  # the manifest names its bundle
    return 0


def _embed(args: argparse.Namespace) -> int:
    from .commands.embed import run_embed

    return run_embed(args)


def _verify(args: argparse.Namespace) -> int:
    from .commands.verify import run_verify

    return run_verify(args)


def _bench(args: argparse.Namespace) -> int:
    from .commands.bench import run_bench

    return run_bench(args)


def _serve(args: argparse.Namespace) -> int:
    ray_only = [
        flag
        for flag, given in (("--replicas", args.replicas != 1), ("--autoscale", args.autoscale), ("--ray-address", args.ray_address))
        if given
    ]
    if ray_only and not args.ray:
        raise InputError(f"{', '.join(ray_only)} only apply with --ray; add --ray to serve on Ray Serve, or leave them out")
    if args.ray:
        from .ray.serve import serve_on_ray

        return serve_on_ray(args)
    try:
        from .server.app import serve
    except ImportError as e:
        print(f"error: `layerwise serve` needs the serve extra ({e.name} is missing): pip install 'layerwise[serve]'", file=sys.stderr)
        return 2
    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="layerwise", description="Every encoder layer's embeddings, fast, anywhere ONNX Runtime runs.")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    verbs = parser.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser(
        "export", help="export an encoder checkpoint (BERT, RoBERTa, MPNet, ...: see README 'Encoder families') to a verified bundle"
    )
    p.add_argument("source", help="local Hugging Face folder or hub id")
    p.add_argument("--out", required=True, help="bundle folder to create")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {','.join(VARIANTS)}")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--allow-pickle", action="store_true", help="accept pickle (.bin) weights: only for checkpoints you trust")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="VARIANT.METRIC=VALUE",
        help="override a parity bar, e.g. int8.pooled_cos_min=0.98",
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for the parity checks")
    p.add_argument(
        "--edge",
        action="store_true",
        help="compact edge bundle: int8 word embeddings in the int8 variant, ORT-format graphs, required_operators.config",
    )
    p.set_defaults(run=_export)

    p = verbs.add_parser("inspect", help="print a bundle's manifest summary and parity table")
    p.add_argument("bundle")
    p.set_defaults(run=_inspect)

    p = verbs.add_parser("verify", help="re-check each variant's accuracy on this machine against the bundle's stored reference")
    p.add_argument("bundle")
    p.add_argument("--texts", type=int, help="check only the first N reference texts (default: all)")
    _add_runtime_flags(p)
    p.set_defaults(run=_verify)

    p = verbs.add_parser("embed", help="embed texts with a bundle")
    p.add_argument("bundle")
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input, or pipe them on stdin)")
    p.add_argument("--input", help="text file, or - for stdin")
    p.add_argument(
        "--input-format",
        choices=["auto", "lines", "jsonl"],
        default="auto",
        help="one text per line, or JSON objects with a 'text' field; auto: jsonl for *.jsonl files",
    )
    p.add_argument("--layers", type=_layers, default="all", help="'all' or ints like 0,-4,-1 (negative counts from the end)")
    p.add_argument("--pool", choices=POOLS, default="mean", help="none: per-token states")
    p.add_argument("--combine", choices=["concat", "sum", "mean"])
    p.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--max-length", type=int, help="truncate to this many tokens (default: model maximum)")
    p.add_argument("--no-truncate", action="store_true", help="fail on texts longer than the maximum instead of cutting them")
    p.add_argument(
        "--overflow",
        choices=OVERFLOWS,
        help=(
            "texts over --max-length: truncate (the default, with a warning), error, or chunk (embed the whole text as overlapping "
            "windows, merged)"
        ),
    )
    p.add_argument(
        "--stride", type=int, help=f"with --overflow chunk: tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})"
    )
    p.add_argument("--output", help="write .npy, .npz or .jsonl (by suffix); JSON on stdout otherwise")
    _add_runtime_flags(p)
    p.set_defaults(run=_embed)

    p = verbs.add_parser("bench", help="latency and throughput of a bundle on this machine")
    p.add_argument("bundle")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--seq-lens", default="16,128,512")
    p.add_argument("--layers", type=_layers, default="all")
    p.add_argument("--pool", choices=POOLS, default="mean", help="none: per-token states")
    p.add_argument("--seconds", type=float, default=3.0, help="time budget per cell, after warm-up")
    p.add_argument("--json", dest="json_out", help="also write the results as JSON to this file (- for stdout)")
    _add_runtime_flags(p)
    p.set_defaults(run=_bench)

    p = verbs.add_parser("serve", help="HTTP embedding server (TEI and OpenAI compatible)")
    p.add_argument("bundle")
    p.add_argument("--host", default=server_default("host"))
    p.add_argument("--port", type=int, default=server_default("port"))
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (also read from {API_KEY_ENV})")
    for name, kind, text in SERVE_FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=server_default(name), help=text)
    p.add_argument("--auto-truncate", action="store_true", help="cut too-long inputs unless a request sends truncate=false")
    ray = p.add_argument_group("Ray Serve", "only with --ray")
    ray.add_argument("--ray", action="store_true", help="serve as Ray Serve replicas (--threads CPUs each); needs 'layerwise[ray]'")
    ray.add_argument("--replicas", type=int, default=1, help="with --ray: replicas, each with its own Encoder")
    ray.add_argument("--autoscale", metavar="MIN..MAX", help="with --ray: let Ray Serve scale between MIN and MAX replicas")
    ray.add_argument("--ray-address", help="with --ray: cluster to join (default: start a local one, or RAY_ADDRESS)")
    _add_runtime_flags(p)
    p.set_defaults(run=_serve)

    add_extract_parser(verbs, _add_runtime_flags, _layers)
    add_probe_parser(verbs, _add_runtime_flags)
    add_triton_parser(verbs)
    return parser


def _attach_layer_values(argv: Sequence[str]) -> list[str]:
    """``--layers -4,-1`` -> ``--layers=-4,-1``: argparse would take "-4,-1" for an option."""
    args: list[str] = []
    pending = False
    for arg in argv:  # every other argument passes through unchanged: an empty text is a text
        if pending and arg.startswith("-"):
            args[-1] = f"--layers={arg}"
        else:
            args.append(arg)
        pending = arg == "--layers" and not pending
    return args


def main(argv: Sequence[str] | None = None) -> int:
    # SIGPIPE stays ignored (Python's default): at its default, a client resetting its connection
    # would end `layerwise serve` (io/streams.py). A closed stdout ends short commands quietly below.
    args = build_parser().parse_args(_attach_layer_values(sys.argv[1:] if argv is None else argv))
    handler = LossyStreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, handlers=[handler])
    for noisy in ("onnx_model", "onnx_model_bert", "fusion_base", "fusion_utils"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except BrokenPipeError:  # `layerwise inspect B | head`: the reader has what it wanted
        return quiet_broken_pipe()
    except OSError as e:  # first: an unwritable --output (io.atomic.OutputError) is a file problem too
        return _report(f"error: {e}", 1)
    except (LayerwiseError, ImportError) as e:
        return _report(f"error: {e}", 2)
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback; 130 as a shell reports SIGINT
        newline = "\n" if sys.stderr.isatty() else ""  # after the ^C and any progress bar on the terminal
        return _report(f"{newline}interrupted{getattr(args, 'on_interrupt', '')}", 130)


def _report(line: str, status: int) -> int:
    """Print ``line`` on stderr (unless stderr is gone too) and give back ``status``."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
