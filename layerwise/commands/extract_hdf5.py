"""``layerwise extract --pool none --output corpus.hdf5``: per-token vectors into one HDF5 file (extract/hdf5.py says the layout).

Chosen by the --output suffix (.hdf5, .h5) or --pool none; the flags that only make sense for
a Parquet dataset, or only for HDF5, are refused with the fix before anything is read.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from ..runtime.errors import InputError
from .flags import options_from_args

log = logging.getLogger("layerwise")


def _check_flags(args: argparse.Namespace) -> None:
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".hdf5", ".h5"):
        raise InputError(
            f"--pool none writes per-token vectors to one HDF5 file: give an --output ending in .hdf5 or .h5, not {args.output!r}"
        )
    if args.pool != "none":
        raise InputError(
            f"an HDF5 --output holds per-token vectors: add --pool none (pooled vectors go to a Parquet folder), not --pool {args.pool}"
        )
    if args.combine:
        raise InputError("--combine does not apply to an HDF5 --output: it keeps every chosen layer apart, [layers, tokens, hidden]")
    if args.engine != "local":
        raise InputError("an HDF5 --output is written by the local engine only: leave out --engine ray")


def run_extract_hdf5(args: argparse.Namespace) -> int:
    _check_flags(args)
    try:
        import h5py  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise ImportError(f"an HDF5 `layerwise extract` needs the hdf5 extra ({e.name} is missing): pip install 'layerwise[hdf5]'") from e
    from ..extract import hdf5
    from ..extract.inputs import plan_inputs
    from ..extract.spec import differences, embed_options, open_output, spec_of
    from ..io.atomic import check_writable
    from ..runtime import load

    target = check_writable(args.output)
    plan = plan_inputs(args.input, args.text_column, args.id_column, args.rows_per_part)
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    options = embed_options(encoder, options_from_args(args), tokens={"words": args.words, "dtype": args.dtype})
    spec = spec_of(options, plan)
    folder = hdf5.parts_folder(target)
    if target.exists():
        finished = hdf5.finished_metadata(target)
        if finished is None or "spec" not in finished:
            raise InputError(f"--output {args.output!r} exists and was not written by layerwise extract; pass a new --output or delete it")
        diffs = differences(finished["spec"], spec)
        if diffs:
            raise InputError(
                f"--output {args.output!r} holds a finished run with other arguments or inputs ({'; '.join(diffs)}): pass a new "
                "--output, or delete it"
            )
        if folder.exists():  # a run killed after its file was renamed into place, before it removed its parts
            shutil.rmtree(folder)
        log.info("%s: complete already, %d rows", args.output, plan.rows)
        return 0
    with open_output(folder, options, plan, read_done=hdf5.done_rows) as output:
        before = len(output.done)
        written = hdf5.extract_hdf5(encoder, plan, options, output, args.words, args.dtype)
        hdf5.merge(folder, target, {**options.metadata, "rows": plan.rows, "spec": spec})
    log.info("%s: %d rows written now, %d were already there, %d in all", args.output, written, before, plan.rows)
    return 0
