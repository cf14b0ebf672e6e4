"""``layerwise embed``: texts in (arguments, text file, JSONL or stdin), embeddings out.

Output by suffix: ``.npy`` (pooled array), ``.npz`` (layout in ``io/npz.py``), ``.jsonl``
(one object per text); JSON on stdout without ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..io.atomic import atomic_write, check_writable
from ..io.jsonl import read_record
from ..io.npz import npz_pooled, npz_tokens, save_npz
from ..io.progress import progress_bar
from ..runtime import load
from ..runtime.encoder import Encoder
from ..runtime.errors import InputError, LayerwiseError
from ..runtime.options import check_batch_size, resolve_layers
from ..runtime.tokenize import Tokenized
from ..runtime.windows import check_stride

CHUNK = 1024  # texts per embed call when showing progress
log = logging.getLogger("layerwise.embed")


def read_texts(args: argparse.Namespace) -> list[str]:
    """Texts from the arguments, --input FILE or stdin: one per line, or JSONL with a 'text' field.

    An empty argument is a text (embedded as the tokenizer encodes it: [CLS] [SEP]), so output rows
    always line up with the arguments; no text at all is an error.
    """
    if args.texts and args.input:
        raise InputError("give texts as arguments or with --input, not both")
    if args.texts:
        return list(args.texts)
    if args.input in (None, "-"):
        if args.input is None and sys.stdin.isatty():
            raise InputError("no texts: pass them as arguments, with --input FILE, or on stdin")
        texts = _parse_lines(sys.stdin.read().splitlines(), jsonl=args.input_format == "jsonl", name="stdin")
        name = "stdin"
    else:
        path = Path(args.input)
        if not path.is_file():
            raise InputError(f"--input {args.input!r} does not exist")
        jsonl = args.input_format == "jsonl" or (args.input_format == "auto" and path.suffix == ".jsonl")
        texts = _parse_lines(path.read_text(encoding="utf-8").splitlines(), jsonl=jsonl, name=args.input)
        name = f"--input {args.input!r}"
    if not texts:
        raise InputError(f"{name} holds no texts: give at least one line (or JSONL record) to embed")
    return texts


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


def _in_chunks(embed: Callable[[int, int], Any], total: int) -> list[Any]:
    """``embed(start, end)`` over all ``total`` texts, in chunks with a progress bar when stderr is a
    terminal. An error in a chunk names the text by its index among all texts."""
    if not (sys.stderr.isatty() and total > CHUNK):
        return [embed(0, total)]
    parts = []
    advance = progress_bar(total)
    for start in range(0, total, CHUNK):
        end = min(start + CHUNK, total)
        try:
            parts.append(embed(start, end))
        except LayerwiseError as e:
            raise _renumbered(e, start) from e
        advance(end - start)
    return parts


def _renumbered(error: LayerwiseError, start: int) -> LayerwiseError:
    """The same error, its "text N" counted from the first text of all rather than of its chunk."""
    message = re.sub(r"\btext (\d+)", lambda m: f"text {int(m.group(1)) + start}", str(error), count=1)
    return type(error)(message)


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


def _check_numbers(args: argparse.Namespace, encoder: Encoder) -> None:
    """--batch-size, --max-length and --stride, checked by the runtime's own rules before any work and
    refused by their flag names (the runtime's messages name its Python arguments)."""
    limit = args.max_length or encoder.info.max_length
    checks = [
        (lambda: check_batch_size(args.batch_size), f"--batch-size must be at least 1, got {args.batch_size}"),
        (
            lambda: encoder.tokenizer.check_limit(args.max_length),
            f"--max-length must be from 2 to the model maximum {encoder.info.max_length}, got {args.max_length}",
        ),
    ]
    if args.stride is not None and args.overflow == "chunk":
        content = limit - encoder.tokenizer.special_tokens
        checks.append((
            lambda: check_stride(args.stride, content),
            f"--stride must be from 0 to {content - 1} (windows hold {content} tokens besides the special ones, and "
            f"consecutive windows must advance), got {args.stride}; pass a smaller --stride or a larger --max-length",
        ))  # fmt: skip
    for check, message in checks:
        try:
            check()
        except InputError:
            raise InputError(message) from None


def _tokenized(encoder: Encoder, texts: list[str], max_length: int | None, overflow: str | None) -> Tokenized:
    """All texts tokenized once, cut to the limit; the long ones refused (--overflow error) or
    reported (the default) over all texts, in the CLI's own flags, before anything runs."""
    tokenized = encoder.tokenize(texts, max_length=max_length, truncate=True)
    cut = tokenized.truncated
    if cut and overflow == "error":
        first = cut[0]
        raise InputError(
            f"text {first} has {tokenized.full_lengths[first]} tokens, more than the maximum {tokenized.limit} "
            f"({len(cut)} of {len(texts)} texts too long); pass --overflow truncate to cut them, "
            "--overflow chunk to embed them whole, or shorten them"
        )
    if cut and overflow is None:
        log.warning(
            "warning: %d of %d texts were longer than %d tokens and were cut (first: text %d); "
            "--overflow truncate cuts without this warning, --overflow error refuses them, --overflow chunk embeds them whole",
            len(cut),
            len(texts),
            tokenized.limit,
            cut[0],
        )
    return tokenized


def run_embed(args: argparse.Namespace) -> int:
    if args.output is not None:  # refuse a bad --output before any work: its suffix, its folder, its permissions
        _suffix(args.output, tokens=args.pool == "none")
        check_writable(args.output, "--output")
    texts = read_texts(args)
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    _check_numbers(args, encoder)
    layers = resolve_layers(args.layers, encoder.info.num_layers)
    overflow = _overflow(args)
    options: dict[str, Any] = {"layers": args.layers, "combine": args.combine, "normalize": args.normalize, "batch_size": args.batch_size}
    if overflow == "chunk":  # the runtime splits each chunk's texts into windows itself
        options.update(overflow="chunk", max_length=args.max_length, stride=args.stride)
        source: list[str] | Tokenized = texts
    else:
        if args.stride is not None:
            raise InputError(
                "--stride sets the overlap of --overflow chunk's windows: pass --overflow chunk with it, or leave --stride out"
            )
        source = _tokenized(encoder, texts, args.max_length, overflow)

    def take(start: int, end: int) -> Any:
        return source[start:end] if isinstance(source, list) else _slice(source, start, end)

    if args.pool == "none":
        parts = _in_chunks(lambda start, end: encoder.embed_tokens(take(start, end), **options), len(texts))
        write_tokens([item for part in parts for item in part], args.output, layers, combined=args.combine is not None)
    else:
        parts = _in_chunks(lambda start, end: encoder.embed(take(start, end), pool=args.pool, **options), len(texts))
        write_pooled(np.concatenate(parts), args.output, layers)
    return 0


def _slice(t: Tokenized, start: int, end: int) -> Tokenized:
    """Texts start..end-1 of a Tokenized."""
    part = slice(start, end)
    return replace(t, texts=t.texts[part], ids=t.ids[part], type_ids=t.type_ids[part], full_lengths=t.full_lengths[part])
