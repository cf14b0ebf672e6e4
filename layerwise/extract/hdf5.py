"""Token-level extract output: one HDF5 file in the layout structural-probes and AllenNLP's ``elmo`` command read.

Layout of ``--output corpus.hdf5`` (``--pool none``):

- one dataset per input row, named by its global row number as a string (``f["0"]``, ``f["1"]``,
  ...), shape [layers, rows, hidden], float32 (or float16 with ``--dtype float16``), layers in
  the order asked. Rows are the text's tokens, special tokens included, as ``Encoder.embed_tokens``
  returns them; with ``--words``, its whitespace-separated words instead: each word the mean of
  its sub-word tokens' vectors, assigned by the tokenizer's character offsets (special tokens
  and words without a token, e.g. cut off by truncation, are left out: ``words`` says which).
- on each dataset, attributes: ``tokens`` (the sub-word token strings), ``offsets`` (int32
  [tokens, 2], character offsets into the text, end exclusive, (0, 0) for special tokens),
  ``truncated``, the id (``id``) when ``--id-column`` is given, and with ``--words``: ``words``,
  ``word_offsets`` (int32 [words, 2]) and ``token_word`` (int32 [tokens], the row of each
  token's word, -1 for none). The file's root holds only the row datasets (the loaders turn
  every key into an int); its attribute ``layerwise`` holds the run's metadata as JSON.

Resume: rows are written as part files (``part-*.h5``, each through a locked temporary
renamed into place) in a hidden folder beside the target (``.NAME.parts``), with extract's
spec and lock; when every row is there they are copied into a temporary file beside the
target, which is renamed over it, and the folder is removed. A kill at any point leaves
whole parts or a whole file: the rerun computes only the rows missing, and every row
appears exactly once. Not handled here: which rows to run (spec.py, inputs.py).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from ..io.atomic import atomic_path
from ..io.progress import progress_bar
from ..runtime import Encoder
from ..runtime.combine import l2_normalize
from ..runtime.errors import InputError
from ..runtime.windows import split
from .inputs import Plan, read_unit
from .local import without_done
from .parts import ExtractOptions
from .spec import Output

SUFFIXES = (".hdf5", ".h5")
PART_GLOB = "part-*.h5"
DTYPES = ("float32", "float16")
BATCH_BYTES = 256 * 2**20  # per-token vectors held at once (one embed call); a longer text alone may exceed it
_WORD = re.compile(r"\S+")


def is_hdf5(output: str) -> bool:
    return Path(output).suffix.lower() in SUFFIXES


def parts_folder(target: Path) -> Path:
    """The hidden folder beside ``target`` that holds its parts, spec and lock while it is written."""
    return target.parent / f".{target.name}.parts"


@contextmanager
def atomic_h5(target: Path) -> Iterator[h5py.File]:
    """An HDF5 file that becomes ``target`` only when the block ends without error (io/atomic.py)."""
    with atomic_path(target) as (_, temp), h5py.File(temp, "w", locking=False, libver=("v108", "latest")) as f:  # v108: attrs over 64 KB
        yield f


def done_rows(folder: Path) -> np.ndarray:
    """Sorted global rows already in complete parts (the Parquet twin is parts.done_rows)."""
    rows: list[int] = []
    for part in sorted(folder.glob(PART_GLOB)):
        with h5py.File(part, "r", locking=False) as f:
            rows += [int(name) for name in f]
    unique = np.unique(np.array(rows, dtype=np.int64))
    if len(unique) != len(rows):
        raise InputError(f"{folder} holds rows written twice; it was not written by one layerwise extract run: delete it")
    return unique


@dataclass(frozen=True)
class TokenRows:
    """One text's rows for its dataset, with the attributes that align them with the text."""

    vectors: np.ndarray  # [layers, rows, hidden]
    tokens: list[str]
    offsets: np.ndarray  # int32 [tokens, 2]
    truncated: bool
    words: list[str] | None = None
    word_offsets: np.ndarray | None = None  # int32 [words, 2]
    token_word: np.ndarray | None = None  # int32 [tokens]


def pool_words(
    text: str, states: np.ndarray, offsets: np.ndarray, specials: np.ndarray
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Mean of each whitespace-separated word's sub-word rows: [layers, words, hidden], the words kept,
    their offsets, and each token's word row (-1 for special tokens).

    Example: "New York!" with tokens [CLS] new york ! [SEP] -> rows "New" (new) and "York!" (york, !).
    """
    spans = np.array([m.span() for m in _WORD.finditer(text)], dtype=np.int64).reshape(-1, 2)
    word = np.searchsorted(spans[:, 0], offsets[:, 0], side="right") - 1
    inside = ~specials & (word >= 0) & (offsets[:, 0] < spans[np.maximum(word, 0), 1])
    word = np.where(inside, word, -1)
    kept = np.unique(word[word >= 0])  # words that hold a token, in text order
    row = np.full(len(spans), -1, dtype=np.int64)
    row[kept] = np.arange(len(kept))
    token_word = np.where(word >= 0, row[np.maximum(word, 0)], -1)
    weights = np.zeros((len(kept), len(offsets)), dtype=np.float32)
    weights[token_word[token_word >= 0], np.flatnonzero(token_word >= 0)] = 1.0
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    pooled = np.einsum("wt,lth->lwh", weights, states).astype(np.float32)
    words = [text[s:e] for s, e in spans[kept]]
    return pooled, words, spans[kept].astype(np.int32), token_word.astype(np.int32)


def embed_rows(encoder: Encoder, texts: list[str], options: ExtractOptions, words: bool) -> list[TokenRows]:
    """Per-token (or per-word) vectors of ``texts`` with their tokens and offsets."""
    embed = options.embed
    chunk = embed.overflow == "chunk"
    states = encoder.embed_tokens(texts, options=replace(embed, normalize=embed.normalize and not words))
    alignments = encoder.token_offsets(texts, embed.max_length, overflow=embed.overflow, stride=embed.stride)
    tokenizer = encoder.tokenizer
    if chunk:
        encodings = split(tokenizer, texts, embed.max_length, embed.stride).merged
        truncated = [False] * len(texts)
    else:
        limit = tokenizer.check_limit(embed.max_length)
        whole, encodings = tokenizer.overflowing(texts, limit, 0)
        truncated = [len(w.ids) > limit for w in whole]
    rows = []
    for text, vectors, alignment, encoding, cut in zip(texts, states, alignments, encodings, truncated):
        offsets = alignment.offsets.astype(np.int32)
        if not (len(encoding.tokens) == len(offsets) == vectors.shape[1]):
            raise RuntimeError(f"token rows disagree for {text[:40]!r}: {len(encoding.tokens)} tokens, {vectors.shape[1]} vectors")
        if not words:
            rows.append(TokenRows(vectors, list(encoding.tokens), offsets, cut))
            continue
        pooled, kept, spans, token_word = pool_words(text, vectors, offsets, alignment.word_ids < 0)
        pooled = l2_normalize(pooled) if embed.normalize else pooled
        rows.append(TokenRows(pooled, list(encoding.tokens), offsets, cut, kept, spans, token_word))
    return rows


def write_row(f: h5py.File, row: int, r: TokenRows, row_id: str | int | None, dtype: str) -> None:
    """One text's dataset ``f[str(row)]`` with its attributes (the layout in this module's docstring)."""
    text_dtype = h5py.string_dtype()
    dataset = f.create_dataset(str(row), data=r.vectors.astype(dtype, copy=False))
    dataset.attrs["tokens"] = np.array(r.tokens, dtype=text_dtype)
    dataset.attrs["offsets"] = r.offsets
    dataset.attrs["truncated"] = r.truncated
    if row_id is not None:
        dataset.attrs["id"] = row_id
    if r.words is not None:
        dataset.attrs["words"] = np.array(r.words, dtype=text_dtype)
        dataset.attrs["word_offsets"] = r.word_offsets
        dataset.attrs["token_word"] = r.token_word


def _groups(encoder: Encoder, texts: list[str], options: ExtractOptions) -> Iterator[slice]:
    """Consecutive runs of texts whose per-token vectors fit in BATCH_BYTES (at least one text each)."""
    tokenized = encoder.tokenize(texts, options.embed.max_length, overflow="truncate")
    lengths = tokenized.full_lengths if options.embed.overflow == "chunk" else tokenized.lengths
    per_token = len(options.layers) * encoder.info.hidden_size * 4
    start, held = 0, 0
    for i, n in enumerate(lengths):
        if i > start and held + n * per_token > BATCH_BYTES:
            yield slice(start, i)
            start, held = i, 0
        held += n * per_token
    yield slice(start, len(texts))


def extract_hdf5(encoder: Encoder, plan: Plan, options: ExtractOptions, output: Output, words: bool, dtype: str) -> int:
    """Embed every missing row of ``plan`` into parts in ``output.path``; return the rows written."""
    work = list(output.missing(plan))
    advance: Callable[[int], None] = progress_bar(sum(u.stop - u.start - len(done) for u, done in work))
    written = 0
    for unit, done in work:
        table = without_done(read_unit(unit, plan), done)
        texts = table.column("text").to_pylist()
        first = table.column("row").to_pylist()
        ids = table.column(plan.id_column).to_pylist() if plan.id_column else None
        name = f"part-{unit.first_row:012d}-{uuid.uuid4().hex[:8]}.h5"
        with atomic_h5(output.path / name) as f:
            for group in _groups(encoder, texts, options):
                rows = embed_rows(encoder, texts[group], options, words)
                for k, r in enumerate(rows, group.start):
                    write_row(f, first[k], r, None if ids is None else ids[k], dtype)
                advance(len(rows))
        written += len(texts)
    return written


def merge(folder: Path, target: Path, metadata: dict) -> None:
    """Copy every part's datasets into one file renamed over ``target``, then remove ``folder``."""
    with atomic_h5(target) as out:
        out.attrs["layerwise"] = json.dumps(metadata, sort_keys=True)
        for part in sorted(folder.glob(PART_GLOB)):
            with h5py.File(part, "r", locking=False) as src:
                for name in src:
                    src.copy(src[name], out, name=name)
    shutil.rmtree(folder)


def finished_metadata(target: Path) -> dict | None:
    """The metadata of a complete output already at ``target`` (None if there is none, or it is not ours)."""
    try:
        with h5py.File(target, "r", locking=False) as f:
            return json.loads(f.attrs["layerwise"]) if "layerwise" in f.attrs else None
    except (OSError, ValueError):
        return None
