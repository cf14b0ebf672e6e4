"""BERTScore's arithmetic on token vectors, pure numpy: greedy cosine matching, F1, baseline rescaling.

Follows ``bert_score.utils.greedy_cos_idf`` (bert-score 0.3.13) operation for operation, in float32:
precision is each candidate token's best cosine against the reference's tokens, weighted by the
candidate's normalised weights (idf, or 1 with [CLS]/[SEP] at 0); recall the same the other way;
F = 2PR / (P + R), NaN -> 0; a pair whose candidate or reference has no content token scores 0.
One difference, on purpose: the package takes each maximum over a padded batch, where a padding
position scores 0, so a token whose best cosine is negative gets 0 when its partner is padded in
that batch (which depends on the batch's other pairs); here the maximum is over real tokens only.
Nothing here knows about tokenizers or models: texts arrive as [layers, tokens, hidden] arrays. The
similarity products run in ONNX Runtime (runtime/match_graph.py), the rest in numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .match_graph import PAD, greedy_session


def unit_rows(states: np.ndarray) -> np.ndarray:
    """Every token vector divided by its norm, in float32, as the package does (a zero vector gives NaN there too)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (states / np.linalg.norm(states, axis=-1, keepdims=True)).astype(np.float32, copy=False)


def share(weights: np.ndarray) -> np.ndarray:
    """Weights scaled to sum to 1, in float32 (all zero -> NaN, as the package's division gives)."""
    weights = weights.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights / weights.sum(dtype=np.float32)


BUCKET = 8  # lengths are padded up to a multiple of it: a pair's padding, so its numbers, depend on its own lengths only
BLOCK_PAIRS = 256  # pairs per run of the matching graph
BLOCK_FLOATS = 1 << 22  # padded floats of one run: pairs x layers x (cand + ref) tokens x hidden, and its similarities


def blocks(
    cand_lengths: np.ndarray, ref_lengths: np.ndarray, per_token: int, limit: int = BLOCK_FLOATS
) -> list[tuple[np.ndarray, int, int]]:
    """(pair indices, candidate width, reference width) of padded blocks: pairs whose lengths round up to the
    same multiple of BUCKET, at most BLOCK_PAIRS of them and ``limit`` padded floats (``per_token`` a token).

    Example: cand lengths [5, 3, 12], ref lengths [4, 9, 4], per_token 1 -> [([0], 8, 8), ([1], 8, 16), ([2], 16, 8)].
    """
    widths_c = -(-cand_lengths // BUCKET) * BUCKET
    widths_r = -(-ref_lengths // BUCKET) * BUCKET
    order = np.lexsort((widths_r, widths_c))
    out, start = [], 0
    while start < len(order):
        wc, wr = int(widths_c[order[start]]), int(widths_r[order[start]])
        count = max(1, min(BLOCK_PAIRS, limit // max((wc + wr) * per_token, wc * wr)))
        end = start + 1
        while end < len(order) and end - start < count and widths_c[order[end]] == wc and widths_r[order[end]] == wr:
            end += 1
        out.append((order[start:end], wc, wr))
        start = end
    return out


def _pad(
    arrays: Sequence[np.ndarray], weights: Sequence[np.ndarray], rows: np.ndarray, width: int, layers: slice, scratch: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``layers`` of ``arrays[rows]`` ([layers, n_i, hidden] each) -> [layers * rows, width, hidden] (layer-major,
    written into ``scratch`` when it is big enough: fresh memory costs more to touch than to copy), their weights
    [layers * rows, width] and padding biases [layers * rows, width] (0, or PAD past each text's end)."""
    first = arrays[rows[0]][layers]
    shape = (first.shape[0], len(rows), width, first.shape[2])
    size = shape[0] * shape[1] * shape[2] * shape[3]
    vectors = scratch[:size].reshape(shape) if size <= len(scratch) else np.empty(shape, dtype=np.float32)
    weight = np.zeros((len(rows), width), dtype=np.float32)
    bias = np.full((len(rows), width), PAD, dtype=np.float32)
    for i, row in enumerate(rows):
        n = arrays[row].shape[1]
        vectors[:, i, :n] = arrays[row][layers]
        vectors[:, i, n:] = 0  # finite: padding only ever meets PAD in the maxima
        weight[i, :n], bias[i, :n] = weights[row], 0
    repeat = (first.shape[0], 1)
    return vectors.reshape(-1, width, first.shape[2]), np.tile(weight, repeat), np.tile(bias, repeat)


def greedy_match(
    cands: Sequence[np.ndarray], cand_weights: Sequence[np.ndarray], refs: Sequence[np.ndarray], ref_weights: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall, float32 [layers, pairs], of pairs (cands[i], refs[i]).

    cands[i], refs[i]: unit token vectors [layers, tokens, hidden] (``unit_rows``); the weights: per token,
    summing to 1 (``share``). Pairs of similar lengths run in padded blocks, layers folded into the batch,
    each block one run of runtime/match_graph.py's graph (single-threaded ONNX Runtime: that module says
    why not numpy). A pair's numbers depend on its own lengths only, never on the pairs beside it, so
    chunked, all-layers and single-layer calls give the same bits.

    Example (one layer, 2-d vectors): cand [[1, 0], [0, 1]] weights [0.5, 0.5] against ref [[1, 0]]
    weight [1] -> precision 0.5 * 1 + 0.5 * 0 = 0.5, recall 1.0.
    """
    layers = cands[0].shape[0] if len(cands) else 0
    precision = np.empty((layers, len(cands)), dtype=np.float32)
    recall = np.empty((layers, len(cands)), dtype=np.float32)
    if not len(cands):
        return precision, recall
    session, hidden = greedy_session(), cands[0].shape[2]
    cand_lengths = np.fromiter((c.shape[1] for c in cands), dtype=np.int64, count=len(cands))
    ref_lengths = np.fromiter((r.shape[1] for r in refs), dtype=np.int64, count=len(refs))
    scratch_c, scratch_r = np.empty(BLOCK_FLOATS, dtype=np.float32), np.empty(BLOCK_FLOATS, dtype=np.float32)
    for rows, wc, wr in blocks(cand_lengths, ref_lengths, hidden):
        group = max(1, BLOCK_FLOATS // (len(rows) * max((wc + wr) * hidden, wc * wr)))  # layers per run
        for first in range(0, layers, group):
            part = slice(first, min(layers, first + group))
            cand, cand_weight, cand_pad = _pad(cands, cand_weights, rows, wc, part, scratch_c)
            ref, ref_weight, ref_pad = _pad(refs, ref_weights, rows, wr, part, scratch_r)
            feeds = {"cand": cand, "ref": ref, "cand_weight": cand_weight, "ref_weight": ref_weight}
            feeds.update(cand_pad=cand_pad[:, :, None], ref_pad=ref_pad[:, None, :])
            p, r = session.run(["precision", "recall"], feeds)
            precision[part, rows], recall[part, rows] = p.reshape(-1, len(rows)), r.reshape(-1, len(rows))
    return precision, recall


def f_measure(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """2PR / (P + R) in float32, NaN (0/0, or NaN in P or R) -> 0, as the package does."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (2 * precision * recall / (precision + recall)).astype(np.float32, copy=False)
    return np.where(np.isnan(f), np.float32(0), f)


def rescale(scores: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """(s - b) / (1 - b) in float32; ``baseline`` broadcasts against ``scores``."""
    b = baseline.astype(np.float32)
    return ((scores - b) / (1 - b)).astype(np.float32, copy=False)
