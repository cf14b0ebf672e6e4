"""``layerwise score`` (BERTScore of candidate and reference files), ``layerwise baseline`` (a rescaling
baseline from a corpus) and ``layerwise maxsim`` (a query against documents), as the bert-score
CLI reads its files: one text a line, the i-th reference line belongs to the i-th candidate line.

Output by ``--output`` suffix: ``.json`` (the default on stdout), ``.jsonl`` (one object per
candidate), ``.tsv`` (one row per candidate and layer) or ``.npz`` (arrays); the corpus means and
the hash go to stderr as the package prints them, unless -q.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..io.atomic import atomic_write, check_writable
from ..io.npz import save_npz
from ..io.progress import progress_callback
from ..runtime.errors import InputError
from .flags import add_bundle, add_runtime_flags, layers_flag, verb

log = logging.getLogger("layerwise")
SUFFIXES = (".json", ".jsonl", ".tsv", ".npz")
SCORE_OVERFLOWS = ("truncate", "error")


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "score", "BERTScore of candidates against references, from any layer (equal to the bert-score package)")
    add_bundle(p)
    p.add_argument("--candidates", required=True, help="a text file, one candidate a line")
    p.add_argument(
        "--references", required=True, nargs="+", help="text files, one reference a line per candidate; several: the best counts"
    )
    p.add_argument("--layers", type=layers_flag, required=True, help="a layer like 4, several like 2,4, or 'all' (one row per layer)")
    idf = p.add_mutually_exclusive_group()
    idf.add_argument("--idf", action="store_true", help="weight tokens by idf counted over the references")
    idf.add_argument("--idf-sentences", help="weight tokens by idf counted over this file's lines instead")
    p.add_argument("--baseline", help="rescale with this baseline file (the package's LAYER,P,R,F format; `layerwise baseline` makes one)")
    p.add_argument(
        "--overflow", choices=SCORE_OVERFLOWS, help="texts over the model maximum: truncate (as the package, without its warning) or error"
    )
    p.add_argument("--batch-size", type=int, help="texts per run at most (default: the runtime's)")
    p.add_argument("--output", help=f"write {', '.join(SUFFIXES)} (by suffix); JSON on stdout otherwise")
    add_runtime_flags(p)
    p.set_defaults(run=run_score)

    p = verb(
        verbs, "baseline", "compute a BERTScore rescaling baseline for a bundle from a corpus (as the bert-score package made its own)"
    )
    add_bundle(p)
    p.add_argument("corpus", help="a text file, one sentence a line (the first million lines of fewer than 32 words are used)")
    p.add_argument("--out", required=True, help="the baseline file to write (LAYER,P,R,F), whole or not at all")
    p.add_argument("--seed", type=int, default=0, help="seed of the random candidate and reference halves")
    add_runtime_flags(p)
    p.set_defaults(run=run_baseline)

    p = verb(verbs, "maxsim", "MaxSim (ColBERT late interaction) of a query against documents, from any layer")
    add_bundle(p)
    p.add_argument("query", help="the query text")
    p.add_argument("--documents", required=True, help="a text file, one document a line")
    p.add_argument("--layers", type=layers_flag, default=[-1], help="a layer, or several with --combine")
    p.add_argument("--combine", choices=("concat", "sum", "mean"), help="one vector per token from several layers")
    p.add_argument("--matches", action="store_true", help="also give each query token's best document token")
    p.add_argument("--output", help="write .json (the default on stdout)")
    add_runtime_flags(p)
    p.set_defaults(run=run_maxsim)


def read_lines(path: str, flag: str) -> list[str]:
    """A text file's lines (a final newline ends the last one, it adds no empty text)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{flag} {path!r} is not a file: give a text file with one text a line")
    return file.read_text(encoding="utf-8").splitlines()


def _output(path: str | None, allowed: tuple[str, ...] = SUFFIXES) -> str | None:
    """The output's suffix, checked with the folder before any work (None: JSON on stdout)."""
    if path is None:
        return None
    suffix = Path(path).suffix
    if suffix not in allowed:
        raise InputError(f"--output {path!r}: use a file name ending in {', '.join(allowed)}")
    check_writable(path, "--output")
    return suffix


def run_score(args: argparse.Namespace) -> int:
    from ..runtime import load

    suffix = _output(args.output)
    candidates = read_lines(args.candidates, "--candidates")
    files = [read_lines(path, "--references") for path in args.references]
    for path, lines in zip(args.references, files):
        if len(lines) != len(candidates):
            raise InputError(
                f"--references {path!r} has {len(lines)} lines but --candidates {args.candidates!r} has {len(candidates)}: "
                "give one reference line per candidate line"
            )
    references: list[str] | list[list[str]] = files[0] if len(files) == 1 else [list(group) for group in zip(*files)]
    idf: bool | list[str] = read_lines(args.idf_sentences, "--idf-sentences") if args.idf_sentences else args.idf
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    layers = args.layers if args.layers == "all" or len(args.layers) > 1 else args.layers[0]
    result = encoder.bertscore(
        candidates, references, layers, idf=idf, baseline=args.baseline, overflow=args.overflow, batch_size=args.batch_size,
        progress=progress_callback(),
    )  # fmt: skip
    per_layer = [np.atleast_2d(s) for s in (result.precision, result.recall, result.f1)]
    means = {name: [float(row.mean(dtype=np.float64)) for row in values] for name, values in zip(("P", "R", "F"), per_layer)}
    payload = {"hash": result.hash, "layers": list(result.layers), "mean": means, "truncated_candidates": list(result.truncated_candidates)}
    _write_scores(payload, per_layer, args.output, suffix)
    for k, layer in enumerate(result.layers):
        log.info("%s layer %d P: %.6f R: %.6f F1: %.6f", result.hash, layer, means["P"][k], means["R"][k], means["F"][k])
    return 0


def _write_scores(payload: dict[str, Any], per_layer: list[np.ndarray], path: str | None, suffix: str | None) -> None:
    precision, recall, f1 = per_layer
    layers = payload["layers"]
    if suffix == ".npz":
        with atomic_write(path) as f:  # type: ignore[arg-type]
            save_npz(
                f, {"precision": precision, "recall": recall, "f1": f1, "layers": np.asarray(layers), "hash": np.asarray(payload["hash"])}
            )
        return
    if suffix in (None, ".json"):
        text = json.dumps({**payload, "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist()}) + "\n"
    elif suffix == ".jsonl":
        rows = [{"index": i, "layers": layers, "P": precision[:, i].tolist(), "R": recall[:, i].tolist(), "F": f1[:, i].tolist()}
                for i in range(precision.shape[1])]  # fmt: skip
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        lines = ["index\tlayer\tP\tR\tF"] + [
            f"{i}\t{layer}\t{precision[k, i]:.8g}\t{recall[k, i]:.8g}\t{f1[k, i]:.8g}"
            for i in range(precision.shape[1])
            for k, layer in enumerate(layers)
        ]
        text = "\n".join(lines) + "\n"
    _write_text(text, path)


def _write_text(text: str, path: str | None) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    f: IO[str]
    with atomic_write(path, text=True) as f:
        f.write(text)


def run_baseline(args: argparse.Namespace) -> int:
    from ..runtime import load
    from ..runtime.bertscore import compute_baseline

    check_writable(args.out, "--out")
    lines = read_lines(args.corpus, "corpus")
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    baseline = compute_baseline(encoder, lines, seed=args.seed, progress=progress_callback())
    baseline.save(args.out)
    log.info("wrote %s: the mean P, R, F of random pairs at hidden states 0..%d", args.out, len(baseline.values) - 1)
    return 0


def run_maxsim(args: argparse.Namespace) -> int:
    from ..runtime import load

    _output(args.output, (".json",))
    documents = read_lines(args.documents, "--documents")
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    layers = args.layers[0] if isinstance(args.layers, list) and len(args.layers) == 1 else args.layers
    result = encoder.maxsim(args.query, documents, layers, combine=args.combine, return_matches=args.matches)
    payload: dict[str, Any] = {"layers": list(result.layers), "query_tokens": list(result.query_tokens), "scores": result.scores.tolist()}
    if result.matches is not None:
        payload["matches"] = [
            {"positions": m.positions.tolist(), "tokens": list(m.tokens), "similarities": m.similarities.tolist()} for m in result.matches
        ]
    _write_text(json.dumps(payload) + "\n", args.output)
    return 0
