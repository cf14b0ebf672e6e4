"""BERTScore's arithmetic on token vectors, pure numpy: greedy cosine matching, F1, baseline rescaling.

Follows ``bert_score.utils.greedy_cos_idf`` (bert-score 0.3.13) operation for operation, in float32:
precision is each candidate token's best cosine against the reference's tokens, weighted by the
candidate's normalised weights (idf, or 1 with [CLS]/[SEP] at 0); recall the same the other way;
F = 2PR / (P + R), NaN -> 0; a pair whose candidate or reference has no content token scores 0.
One difference, on purpose: the package takes each maximum over a padded batch, where a padding
position scores 0, so a token whose best cosine is negative gets 0 when its partner is padded in
that batch (which depends on the batch's other pairs); here the maximum is over real tokens only.
Nothing here knows about tokenizers or models: texts arrive as [layers, tokens, hidden] arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit_rows(states: np.ndarray) -> np.ndarray:
    """Every token vector divided by its norm, in float32, as the package does (a zero vector gives NaN there too)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (states / np.linalg.norm(states, axis=-1, keepdims=True)).astype(np.float32, copy=False)


def share(weights: np.ndarray) -> np.ndarray:
    """Weights scaled to sum to 1, in float32 (all zero -> NaN, as the package's division gives)."""
    weights = weights.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return weights / weights.sum(dtype=np.float32)


def greedy_match(
    cands: Sequence[np.ndarray], cand_weights: Sequence[np.ndarray], refs: Sequence[np.ndarray], ref_weights: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall, float32 [layers, pairs], of pairs (cands[i], refs[i]).

    cands[i], refs[i]: unit token vectors [layers, tokens, hidden] (``unit_rows``); the weights: per token,
    summing to 1 (``share``). One batched matmul per pair over its layers, no padding: padded blocks of
    similar lengths were measured 3x slower (numpy multiplies a stack one matrix at a time anyway, and
    the padding adds work), and this loop costs about 0.05 ms a pair, a few percent of embedding them.

    Example (one layer, 2-d vectors): cand [[1, 0], [0, 1]] weights [0.5, 0.5] against ref [[1, 0]]
    weight [1] -> precision 0.5 * 1 + 0.5 * 0 = 0.5, recall 1.0.
    """
    layers = cands[0].shape[0] if len(cands) else 0
    precision = np.empty((layers, len(cands)), dtype=np.float32)
    recall = np.empty((layers, len(cands)), dtype=np.float32)
    for i, (c, r) in enumerate(zip(cands, refs)):
        sim = np.matmul(c, r.transpose(0, 2, 1))  # [layers, Lc, hidden] x [layers, hidden, Lr] -> [layers, Lc, Lr]
        precision[:, i] = (sim.max(axis=2) * cand_weights[i]).sum(axis=1)  # not ``@``: its order of sums depends
        recall[:, i] = (sim.max(axis=1) * ref_weights[i]).sum(axis=1)  # on the layer count, and all layers must equal one
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
