"""MaxSim (ColBERT's late interaction) from any layer: for each query token its best cosine among a
document's tokens, summed over the query's tokens.

Special tokens as ColBERT (stanford-futuredata/ColBERT, ``colbert/modeling/colbert.py``) treats them:
every query token counts, [CLS] and [SEP] included; a document's [CLS] and [SEP] are ordinary match
targets, but its punctuation is not (``mask_punctuation``: the ids of each ``string.punctuation``
character tokenized alone, the first id when it splits, are skipped). Not copied from ColBERT:
its [Q]/[D] marker tokens and the [MASK] padding of queries (both belong to a model trained with
them), its linear projection (raw hidden states here), and its 32/180-token limits (the model
maximum here; ``overflow="chunk"`` scores long documents whole, window by window).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError, UntokenizableText
from .options import resolve_layers
from .score_inputs import TokenEncoder

DOCUMENTS_PER_CHUNK = 512  # documents embedded at a time: bounds memory for a long list


@dataclass(frozen=True)
class MaxSimMatch:
    """For each query token, the document token it matched best."""

    positions: np.ndarray  # int64 [query tokens]: into the document's tokens, special tokens included
    tokens: tuple[str, ...]  # those tokens
    similarities: np.ndarray  # float32 [query tokens]


@dataclass(frozen=True)
class MaxSim:
    scores: np.ndarray  # float32 [documents]
    layers: tuple[int, ...]  # hidden states used, 0..L
    query_tokens: tuple[str, ...]
    matches: tuple[MaxSimMatch, ...] | None  # one per document, when asked


def punctuation_ids(encoder: TokenEncoder) -> np.ndarray:
    """ColBERT's skiplist: the first token id of each punctuation character tokenized alone."""
    encodings = encoder.tokenizer.tokens(list(string.punctuation), add_special_tokens=False)
    return np.unique([e.ids[0] for e in encodings if e.ids])


def maxsim(
    encoder: TokenEncoder,
    query: str,
    documents: Sequence[str],
    layers: int | Sequence[int] = -1,
    *,
    combine: str | None = None,
    normalize: bool = True,
    skip_punctuation: bool = True,
    return_matches: bool = False,
    overflow: str | None = None,
    batch_size: int | None = None,
) -> MaxSim:
    """Score documents against one query with the token vectors of ``layers`` (several need ``combine``:
    "concat", "sum" or "mean"). normalize=False uses dot products instead of cosines. ``overflow`` as
    for ``embed_tokens`` ("chunk" scores a long document whole).

    Example:
        >>> maxsim(enc, "cat on a mat", ["the cat sat on the mat", "stock prices fell"], layers=-1).scores
        array([5.1..., 2.3...], dtype=float32)
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if not isinstance(documents, (list, tuple)) or not all(isinstance(d, str) for d in documents):
        raise TypeError("documents must be a list of str")
    if not documents:
        raise InputError("no documents were given: give at least one document to score the query against")
    chosen = resolve_layers(layers, encoder.info.num_layers)
    if len(chosen) > 1 and combine is None:
        raise InputError(
            "MaxSim over several layers ({value}) needs {p:combine} 'concat', 'sum' or 'mean': one vector per token",
            parameter="combine",
            value=layers,
        )
    options: dict[str, Any] = {"layers": chosen if combine else chosen[0], "combine": combine, "normalize": normalize, "overflow": overflow}
    if batch_size is not None:
        options["batch_size"] = batch_size
    q_vectors, _, q_tokens = _named(encoder, [query], options, "the query", 0)[0]
    skip = punctuation_ids(encoder) if skip_punctuation else np.zeros(0, dtype=np.int64)
    scores = np.zeros(len(documents), dtype=np.float32)
    matches: list[MaxSimMatch] = []
    for start in range(0, len(documents), DOCUMENTS_PER_CHUNK):
        part = _named(encoder, list(documents[start : start + DOCUMENTS_PER_CHUNK]), options, "document", start)
        best, where = best_matches(q_vectors, [vectors for vectors, _, _ in part], [~np.isin(ids, skip) for _, ids, _ in part])
        scores[start : start + len(part)] = best.sum(axis=1, dtype=np.float32)
        if return_matches:
            for (_, _, tokens), b, w in zip(part, best, where):
                matches.append(MaxSimMatch(w, tuple(tokens[i] for i in w), b))
    return MaxSim(scores, tuple(chosen), tuple(q_tokens), tuple(matches) if return_matches else None)


def _named(encoder: TokenEncoder, texts: list[str], options: dict[str, Any], what: str, start: int) -> list[Any]:
    """``_embed``, with a text the tokenizer refuses named as the caller knows it."""
    try:
        return _embed(encoder, texts, options)
    except UntokenizableText as e:
        name = what if what == "the query" else f"{what} {start + e.index}"
        raise InputError(f"{name} {e.reason}") from e


def _embed(encoder: TokenEncoder, texts: list[str], options: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Per text: vectors [tokens, dim], the ids and token strings of those rows (a cut text ends with its last special token)."""
    vectors = encoder.embed_tokens(texts, **options)
    whole = encoder.tokenizer.tokens(texts)
    out = []
    for v, encoding in zip(vectors, whole):
        v = v[0] if v.ndim == 3 else v  # one layer, not combined: [1, tokens, hidden]
        n, ids, tokens = v.shape[0], list(encoding.ids), list(encoding.tokens)
        if n < len(ids):  # cut at the maximum: the first n - 1 tokens, then the closing special token
            ids, tokens = ids[: n - 1] + ids[-1:], tokens[: n - 1] + tokens[-1:]
        out.append((v, np.asarray(ids, dtype=np.int64), tokens))
    return out


def best_matches(query: np.ndarray, documents: Sequence[np.ndarray], keep: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For each document, each query token's best similarity among the document's kept tokens, and where.

    query [q, dim]; documents[i] [n_i, dim]; keep[i] bool [n_i]. Returns float32 [documents, q] and
    int64 [documents, q], in padded blocks of similar lengths (one matmul each).

    Example: query [[1, 0]], documents [[[0, 1], [1, 0]]], keep [[True, True]] -> [[1.0]], [[1]];
    with keep [[True, False]] -> [[0.0]], [[0]].
    """
    lengths = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
    best = np.zeros((len(documents), len(query)), dtype=np.float32)
    where = np.zeros((len(documents), len(query)), dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    per_block = max(1, (1 << 22) // max(1, len(query) * int(lengths.max(initial=1))))
    for start in range(0, len(order), per_block):
        rows = order[start : start + per_block]
        width = int(lengths[rows].max())
        padded = np.zeros((len(rows), width, query.shape[1]), dtype=np.float32)
        valid = np.zeros((len(rows), width), dtype=bool)
        for i, row in enumerate(rows):
            padded[i, : lengths[row]] = documents[row]
            valid[i, : lengths[row]] = keep[row]
        products = (padded.reshape(-1, query.shape[1]) @ query.T).reshape(len(rows), width, len(query))  # one GEMM: [B*width, q]
        sim = np.where(valid[:, :, None], products, -np.inf)
        where[rows] = sim.argmax(axis=1)
        best[rows] = np.take_along_axis(sim, where[rows][:, None, :], axis=1)[:, 0]
    return best, where
