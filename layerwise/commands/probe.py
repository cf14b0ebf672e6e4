"""The ``layerwise probe`` flags and their run; scikit-learn, scipy and matplotlib load only when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..runtime.manifest import POOLING_KINDS
from .flags import add_bundle, add_option_flags, add_runtime_flags, options_from_args, verb

PLOT_FORMATS = ("png", "svg", "pdf")


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "probe", "which layer? cross-validated linear probes of every layer and combination on a labelled .csv/.jsonl/.parquet")
    add_bundle(p)
    p.add_argument("data", help="a .csv, .tsv, .jsonl or .parquet file with a text column and a label column")
    p.add_argument("--text-column", default="text", help="column holding the texts")
    p.add_argument("--label-column", default="label", help="column holding the labels")
    p.add_argument(
        "--task",
        choices=["auto", "classification", "regression"],
        default="auto",
        help="auto: regression for non-integer numbers or more than 20 distinct integers, classification otherwise",
    )
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, the same for every row (stratified for classes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the probes")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of every probe (ridge alpha = 1/C)")
    add_option_flags(p, pools=POOLING_KINDS, pool_help="how each layer becomes one vector per text", combine=False, layers=False)
    p.add_argument("--json", dest="json_out", help="where to write the results as JSON (default: DATA's name + .probe.json, here)")
    p.add_argument(
        "--plot", help=f"where to draw score by layer ({', '.join(PLOT_FORMATS)} by suffix; default: DATA's name + .probe.png, here)"
    )
    add_runtime_flags(p)
    p.set_defaults(run=run_probe)


def _check_extra() -> None:
    try:
        import matplotlib  # noqa: F401
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ImportError(f"`layerwise probe` needs the probe extra ({e.name} is missing): pip install 'layerwise[probe]'") from e


def run_probe(args: argparse.Namespace) -> int:
    _check_extra()
    from ..io.atomic import atomic_write, check_writable
    from ..io.progress import progress_bar
    from ..probe.data import make_target, read_labelled
    from ..probe.run import probe
    from ..runtime import load
    from ..runtime.errors import InputError

    stem = Path(args.data).stem
    json_out = check_writable(args.json_out or f"{stem}.probe.json", "--json")
    plot_out = check_writable(args.plot or f"{stem}.probe.png", "--plot")
    fmt = plot_out.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise InputError(f"--plot {args.plot!r}: the suffix picks the format, one of {', '.join('.' + f for f in PLOT_FORMATS)}")
    data = read_labelled(args.data, args.text_column, args.label_column)
    make_target(data, args.task, args.folds, args.label_column)  # bad labels fail before the model loads
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    report = probe(
        encoder, data, args.task, options_from_args(args), args.folds, args.seed, args.C, args.label_column, args.bundle,
        progress_bar(len(data.texts)),
    )
    image = report.plot(fmt)
    print(report.text())
    with atomic_write(json_out, text=True) as f:
        f.write(report.to_json())
    with atomic_write(plot_out) as f:
        f.write(image)
    print(f"\nwrote {args.json_out or json_out.name} and {args.plot or plot_out.name}")
    return 0
