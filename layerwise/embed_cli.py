"""``layerwise embed``: texts in (arguments, text file, JSONL or stdin), embeddings out.

Output by suffix: ``.npy`` (pooled array), ``.npz`` (layout in ``formats.py``), ``.jsonl``
(one object per text); JSON on stdout without ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .formats import npz_arrays
from .runtime import load
from .runtime.errors import InputError
from .runtime.options import resolve_layers

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
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} line {number} is not valid JSON: {e.msg}") from e
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise InputError(f"{name} line {number} needs a string field 'text'")
        texts.append(record["text"])
    return texts


def _progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} texts")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _embed_all(encoder: Any, texts: list[str], options: dict[str, Any]) -> Any:
    show = sys.stderr.isatty() and len(texts) > CHUNK
    if not show:
        return encoder.embed(texts, **options)
    parts: list[Any] = []
    for start in range(0, len(texts), CHUNK):
        parts.append(encoder.embed(texts[start : start + CHUNK], **options))
        _progress(min(start + CHUNK, len(texts)), len(texts))
    if options["pool"] == "none":
        return [item for part in parts for item in part]
    return np.concatenate(parts)


def write_output(result: Any, path: str | None, layers: list[int], combined: bool) -> None:
    """Write embeddings by the file's suffix, or JSON to stdout."""
    tokens = isinstance(result, list)
    if path is None:
        payload = [r.tolist() for r in result] if tokens else result.tolist()
        json.dump({"layers": layers, "embeddings": payload}, sys.stdout)
        sys.stdout.write("\n")
        return
    suffix = Path(path).suffix
    if suffix == ".npy":
        if tokens:
            raise InputError("per-token output (--pool none) has one array per text: write .npz or .jsonl")
        np.save(path, result)
    elif suffix == ".npz":
        np.savez(path, **npz_arrays(result, layers, combined))
    elif suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for index, row in enumerate(result):
                f.write(json.dumps({"index": index, "embedding": row.tolist()}) + "\n")
    else:
        raise InputError(f"--output {path!r}: use a .npy, .npz or .jsonl file name")


def run_embed(args: argparse.Namespace) -> int:
    texts = read_texts(args)
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    options = {
        "layers": args.layers,
        "pool": args.pool,
        "combine": args.combine,
        "normalize": args.normalize,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "truncate": not args.no_truncate,
    }
    result = _embed_all(encoder, texts, options)
    write_output(result, args.output, resolve_layers(args.layers, encoder.info.num_layers), combined=args.combine is not None)
    return 0
