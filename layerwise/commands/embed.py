"""``layerwise embed``: texts in (arguments, text file, JSONL or stdin), embeddings out.

Output by suffix: ``.npy`` (pooled array), ``.npz`` (layout in ``io/npz.py``), ``.jsonl``
(one object per text); JSON on stdout without ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..io.atomic import atomic_write, check_writable
from ..io.jsonl import read_record
from ..io.npz import npz_pooled, npz_tokens, save_npz
from ..io.progress import progress_bar
from ..runtime import load
from ..runtime.errors import InputError
from ..runtime.options import resolve_layers

CHUNK = 1024  # texts per embed call when showing progress


def read_texts(args: argparse.Namespace) -> list[str]:
    """Texts from the arguments, --input FILE or stdin: one per line, or JSONL with a 'text' field."""
    if args.texts and args.input:
        raise InputError("give texts as arguments or with --input, not both")
    if args.texts:
        return list(args.texts)
    if args.input in (None, "-"):
        if args.input is None and sys.stdin.isatty():
            raise InputError("no texts: pass them as arguments, with --input FILE, or on stdin")
        return _parse_lines(sys.stdin.read().splitlines(), jsonl=args.input_format == "jsonl", name="stdin")
    path = Path(args.input)
    if not path.is_file():
        raise InputError(f"--input {args.input!r} does not exist")
    jsonl = args.input_format == "jsonl" or (args.input_format == "auto" and path.suffix == ".jsonl")
    return _parse_lines(path.read_text(encoding="utf-8").splitlines(), jsonl=jsonl, name=args.input)


def _parse_lines(lines: Iterable[str], jsonl: bool, name: str) -> list[str]:
    if not jsonl:
        return list(lines)
    texts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = read_record(line, f"{name} line {number}", column_flag=None)
        texts.append(record["text"])
    return texts


def _in_chunks(embed: Callable[[list[str]], Any], texts: list[str]) -> list[Any]:
    """``embed`` over the texts, in chunks with a progress bar when stderr is a terminal."""
    if not (sys.stderr.isatty() and len(texts) > CHUNK):
        return [embed(texts)]
    parts = []
    advance = progress_bar(len(texts))
    for start in range(0, len(texts), CHUNK):
        parts.append(embed(texts[start : start + CHUNK]))
        advance(len(texts[start : start + CHUNK]))
    return parts


def _write_json(embeddings: Any, layers: list[int]) -> None:
    json.dump({"layers": layers, "embeddings": embeddings}, sys.stdout)
    sys.stdout.write("\n")


def _write_jsonl(rows: Iterable[np.ndarray], f: IO[str]) -> None:
    for index, row in enumerate(rows):
        f.write(json.dumps({"index": index, "embedding": row.tolist()}) + "\n")


def write_pooled(result: np.ndarray, path: str | None, layers: list[int]) -> None:
    """Write ``embed`` output by the file's suffix (atomically: a killed run leaves no file), or JSON to stdout."""
    suffix = _suffix(path)
    if path is None:
        _write_json(result.tolist(), layers)
        return
    with atomic_write(path, text=suffix == ".jsonl") as f:
        if suffix == ".npy":
            np.save(f, result)
        elif suffix == ".npz":
            save_npz(f, npz_pooled(result, layers))
        else:
            _write_jsonl(result, f)


def write_tokens(result: list[np.ndarray], path: str | None, layers: list[int], combined: bool) -> None:
    """Write ``embed_tokens`` output by the file's suffix (atomically), or JSON to stdout."""
    suffix = _suffix(path, tokens=True)
    if path is None:
        _write_json([r.tolist() for r in result], layers)
        return
    with atomic_write(path, text=suffix == ".jsonl") as f:
        if suffix == ".npz":
            save_npz(f, npz_tokens(result, layers, combined))
        else:
            _write_jsonl(result, f)


def _suffix(path: str | None, tokens: bool = False) -> str | None:
    suffix = None if path is None else Path(path).suffix
    if suffix not in (None, ".npy", ".npz", ".jsonl"):
        raise InputError(f"--output {path!r}: use a .npy, .npz or .jsonl file name")
    if tokens and suffix == ".npy":
        raise InputError("per-token output (--pool none) has one array per text: write .npz or .jsonl")
    return suffix


def _overflow(args: argparse.Namespace) -> str | None:
    """--overflow, with the older --no-truncate as --overflow error."""
    if args.no_truncate and args.overflow not in (None, "error"):
        raise InputError(f"--no-truncate is --overflow error: pass one of them, not --overflow {args.overflow} with it")
    return "error" if args.no_truncate else args.overflow


def run_embed(args: argparse.Namespace) -> int:
    if args.output is not None:  # refuse a bad --output before any work: its suffix, its folder, its permissions
        _suffix(args.output, tokens=args.pool == "none")
        check_writable(args.output, "--output")
    texts = read_texts(args)
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    options = {
        "layers": args.layers,
        "combine": args.combine,
        "normalize": args.normalize,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "overflow": _overflow(args),
        "stride": args.stride,
    }
    layers = resolve_layers(args.layers, encoder.info.num_layers)
    if args.pool == "none":
        parts = _in_chunks(lambda chunk: encoder.embed_tokens(chunk, **options), texts)
        write_tokens([item for part in parts for item in part], args.output, layers, combined=args.combine is not None)
    else:
        parts = _in_chunks(lambda chunk: encoder.embed(chunk, pool=args.pool, **options), texts)
        write_pooled(np.concatenate(parts), args.output, layers)
    return 0
