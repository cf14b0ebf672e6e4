"""The ``layerwise extract`` flags and their run; pyarrow, the runtime and Ray load only when it runs."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

from ..runtime.combine import COMBINERS
from ..runtime.options import BATCH_SIZE, CORPUS_OVERFLOWS, POOLS
from ..runtime.windows import STRIDE_DEFAULT_RULE

log = logging.getLogger("layerwise")
ENGINES = ("local", "ray")


def add_parser(verbs: Any, add_runtime_flags: Callable[[argparse.ArgumentParser], None], layers: Callable[[str], Any]) -> None:
    p = verbs.add_parser(
        "extract", help="embed a corpus into a Parquet dataset, or per-token vectors into one HDF5 file (resumable; local or Ray Data)"
    )
    p.add_argument("bundle")
    p.add_argument("--input", required=True, help="a .jsonl, .parquet or .txt file, a folder of them, or a glob")
    p.add_argument(
        "--output",
        required=True,
        help="folder of the Parquet dataset, or with --pool none a file ending in .hdf5 or .h5 (rerun with the same arguments to resume)",
    )
    p.add_argument(
        "--text-column", help="field holding the text (JSONL, Parquet; default: text); not for .txt files, which hold one text a line"
    )
    p.add_argument("--id-column", help="field to copy as the row's id (default: only the input row number, column 'row')")
    p.add_argument("--layers", type=layers, default="all", help="'all' or ints like 0,-4,-1 (negative counts from the end)")
    p.add_argument("--pool", choices=POOLS, default="mean", help="none: every token's vectors, to an .hdf5 --output")
    p.add_argument(
        "--words", action="store_true", help="with an .hdf5 --output: one row per whitespace-separated word (mean of its sub-word tokens)"
    )
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="with an .hdf5 --output: the stored vectors' type")
    p.add_argument("--combine", choices=[k for k in COMBINERS if k], help="one 'embedding' column instead of one per layer")
    p.add_argument("--normalize", action="store_true", help="L2-normalise each vector")
    p.add_argument(
        "--max-length", type=int, help="truncate to this many tokens (default: model maximum); column 'truncated' says which were cut"
    )
    p.add_argument(
        "--overflow",
        choices=CORPUS_OVERFLOWS,
        default="truncate",
        help=(
            "texts over --max-length: truncate (column 'truncated' says which), or chunk (embed the whole text as overlapping "
            "windows, merged)"
        ),
    )
    p.add_argument(
        "--stride", type=int, help=f"with --overflow chunk: tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})"
    )
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--rows-per-part", type=int, default=4096, help="input rows per unit of work (a part file, or a Ray read task)")
    p.add_argument("--engine", choices=ENGINES, default="local")
    p.add_argument("--ray-address", help="Ray cluster to join (default: start a local one, or RAY_ADDRESS)")
    p.add_argument("--actors", type=int, default=1, help="Ray actors, each with its own copy of the model")
    p.add_argument("--threads-per-actor", type=int, default=1, help="CPUs Ray gives each actor = ONNX Runtime intra-op threads")
    add_runtime_flags(p)
    p.set_defaults(run=run_extract, on_interrupt=": the parts written so far are kept; rerun the same command to compute only the rest")


def run_extract(args: argparse.Namespace) -> int:
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise ImportError(f"`layerwise extract` needs the extract extra ({e.name} is missing): pip install 'layerwise[extract]'") from e
    from ..extract.inputs import plan_inputs
    from ..extract.parts import output_schema
    from ..extract.spec import embed_options, open_output
    from ..runtime import load
    from ..runtime.errors import InputError
    from ..runtime.options import resolve_layers

    for flag in ("rows_per_part", "actors", "threads_per_actor"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if args.output.lower().endswith((".hdf5", ".h5")) or args.pool == "none":
        from .extract_hdf5 import run_extract_hdf5

        return run_extract_hdf5(args)
    if args.words or args.dtype != "float32":
        flag = "--words" if args.words else "--dtype"
        raise InputError(f"{flag} applies to per-token output only: add --pool none and an --output ending in .hdf5")
    plan = plan_inputs(args.input, args.text_column, args.id_column, args.rows_per_part)
    local = args.engine == "local"
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads if local else 1)
    layers = resolve_layers(args.layers, encoder.info.num_layers)
    options = embed_options(
        encoder, layers, args.pool, args.combine, args.normalize, args.max_length, args.batch_size, args.overflow, args.stride
    )
    schema = output_schema(options, encoder.info.hidden_size, plan.id_column, plan.id_type)
    with open_output(args.output, options, plan) as output:
        before = len(output.done)
        if local:
            from ..extract.local import extract_local

            written = extract_local(encoder, plan, options, output, schema)
        else:
            encoder.close()
            from ..ray.data import extract_ray

            written = extract_ray(
                args.bundle, plan, options, output, schema, encoder.info.provider, args.ray_address, args.actors, args.threads_per_actor
            )
    log.info("%s: %d rows written now, %d were already there, %d in all", args.output, written, before, plan.rows)
    return 0
