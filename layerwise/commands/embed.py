"""``layerwise embed``: texts in (arguments, text file, JSONL or stdin), embeddings out.

Output by suffix: ``.npy`` (pooled array), ``.npz`` (layout in ``io/npz.py``), ``.jsonl``
(one object per text); JSON on stdout without ``--output``.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from ..runtime.encoder import Encoder
from ..runtime.errors import InputError
from ..runtime.options import EmbedOptions
from ..runtime.tokenize import Tokenized, refuse_too_long
from ..runtime.windows import split
from .flags import add_bundle, add_option_flags, add_runtime_flags, options_from_args, verb


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "embed", "embed texts with a bundle")
    add_bundle(p)
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input, or pipe them on stdin)")
    p.add_argument("--input", help="text file, or - for stdin")
    p.add_argument(
        "--input-format",
        choices=["auto", "lines", "jsonl"],
        default="auto",
        help="one text per line, or JSON objects with a 'text' field; auto: jsonl for *.jsonl files",
    )
    add_option_flags(p)
    p.add_argument("--no-truncate", action="store_true", help="deprecated: --overflow error")
    p.add_argument("--output", help="write .npy, .npz or .jsonl (by suffix); JSON on stdout otherwise")
    add_runtime_flags(p)
    p.set_defaults(run=run_embed)

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
        except InputError as e:
            raise e.at(start) from e
        advance(end - start)
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
    """--overflow, with the deprecated --no-truncate as --overflow error."""
    if args.no_truncate:
        log.warning("warning: --no-truncate is deprecated and will be removed: pass --overflow error instead")
        if args.overflow not in (None, "error"):
            raise InputError(f"--no-truncate is --overflow error: pass one of them, not --overflow {args.overflow} with it")
    return "error" if args.no_truncate else args.overflow


def _tokenized(encoder: Encoder, texts: list[str], options: EmbedOptions) -> Tokenized:
    """All texts tokenized once, cut to the limit; the long ones refused (--overflow error) or
    reported (the default) over all texts, before anything runs."""
    tokenized = encoder.tokenize(texts, max_length=options.max_length, overflow="truncate")
    cut = tokenized.truncated
    if cut and options.overflow == "error":
        refuse_too_long(tokenized.full_lengths, tokenized.limit)
    if cut and options.overflow is None:
        log.warning(
            "warning: %d of %d texts were longer than %d tokens and were cut (first: text %d); "
            "--overflow chunk embeds them whole, --overflow error refuses them, --overflow truncate cuts without this warning",
            len(cut),
            len(texts),
            tokenized.limit,
            cut[0],
        )
    return tokenized


def run_embed(args: argparse.Namespace) -> int:
    options = options_from_args(args, overflow=_overflow(args))  # a bad flag fails before anything is read
    if args.output is not None:  # refuse a bad --output before any work: its suffix, its folder, its permissions
        _suffix(args.output, tokens=options.pool == "none")
        check_writable(args.output, "--output")
    texts = read_texts(args)
    encoder = load(args.bundle, variant=args.variant, provider=args.provider, threads=args.threads)
    layers = options.layer_indices(encoder.info.num_layers)
    if options.overflow == "chunk":  # the runtime splits each chunk's texts into windows itself
        split(encoder.tokenizer, [""], options.max_length, options.stride)  # a bad --max-length or --stride fails now
        source: list[str] | Tokenized = texts
        run = options
    else:
        source, run = _tokenized(encoder, texts, options), options.for_tokenized()

    def take(start: int, end: int) -> Any:
        return source[start:end] if isinstance(source, list) else source.rows(slice(start, end))

    if options.pool == "none":
        parts = _in_chunks(lambda start, end: encoder.embed_tokens(take(start, end), options=run), len(texts))
        write_tokens([item for part in parts for item in part], args.output, layers, combined=options.combine is not None)
    else:
        parts = _in_chunks(lambda start, end: encoder.embed(take(start, end), options=run), len(texts))
        write_pooled(np.concatenate(parts), args.output, layers)
    return 0
