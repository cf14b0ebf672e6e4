"""The ``layerwise`` command: one verb per module in ``layerwise/commands/``, each adding its own flags.

Errors are printed as one line naming the fix, with exit status 2 (bad input) or 1 (a file that
cannot be read or written); an ``InputError`` is worded in flag names (runtime/errors.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from ._version import __version__
from .commands import bench, embed, export, extract, inspect, probe, score, serve, triton, verify
from .io.streams import LossyStreamHandler, quiet_broken_pipe
from .runtime.errors import InputError, LayerwiseError, cli_wording

VERBS = (export, inspect, verify, embed, score, bench, serve, extract, probe, triton)  # in --help's order (score adds baseline, maxsim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="layerwise", description="Every encoder layer's embeddings, fast, anywhere ONNX Runtime runs.")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only results and errors")
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs (layerwise VERB --help for each)")
    for module in VERBS:
        module.add_parser(verbs)
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
    parser = build_parser()
    args = parser.parse_args(_attach_layer_values(sys.argv[1:] if argv is None else argv))
    if args.verb is None:  # bare `layerwise`: what it can do, not "the following arguments are required"
        parser.print_help()
        return 2
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
    except InputError as e:
        return _report(f"error: {e.render(cli_wording())}", 2)
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
