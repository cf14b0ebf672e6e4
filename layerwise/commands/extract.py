"""The ``layerwise extract`` flags and their run; pyarrow, the runtime and Ray load only when it runs."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..runtime.options import CORPUS_OVERFLOWS
from .flags import add_bundle, add_option_flags, add_runtime_flags, options_from_args, verb

log = logging.getLogger("layerwise")
ENGINES = ("local", "ray")


def add_parser(verbs: Any) -> None:
    p = verb(
        verbs, "extract", "embed a corpus into a Parquet dataset, or per-token vectors into one HDF5 file (resumable; local or Ray Data)"
    )
    add_bundle(p)
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
    add_option_flags(
        p, pool_help="none: every token's vectors, to an .hdf5 --output", overflows=CORPUS_OVERFLOWS, overflow_default="truncate"
    )
    p.add_argument(
        "--words", action="store_true", help="with an .hdf5 --output: one row per whitespace-separated word (mean of its sub-word tokens)"
    )
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="with an .hdf5 --output: the stored vectors' type")
    p.add_argument("--rows-per-part", type=int, default=4096, help="input rows per unit of work (a part file, or a Ray read task)")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local: this process; ray: Ray Data actors")
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
    options = embed_options(encoder, options_from_args(args))
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
