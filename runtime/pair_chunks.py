"""Scoring candidate-reference pairs in chunks of bounded memory, each distinct text embedded once.

Pairs are sorted by reference then candidate, so pairs sharing a reference fall in one chunk, and
cut where a chunk's distinct texts reach a token budget. After each chunk, the texts a later chunk
needs stay cached (soonest-needed first, within the same budget); the rest are dropped. A text
that the budget pushed out is embedded again when needed (counted in ``embedded``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .greedy import greedy_match, share, unit_rows
from .score_inputs import TokenEncoder, TokenTable

Progress = Callable[[int, int], None]  # (pairs scored, pairs to score)


def score_pairs(
    encoder: TokenEncoder,
    table: TokenTable,
    weights: np.ndarray,
    cand_rows: np.ndarray,
    ref_rows: np.ndarray,
    live: np.ndarray,
    needed: list[int],
    budget: int,
    batch_size: int | None,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Precision and recall [needed layers, pairs] (0 for pairs not ``live``), and (texts embedded, tokens, chunks)."""
    precision = np.zeros((len(needed), len(cand_rows)), dtype=np.float32)
    recall = np.zeros_like(precision)
    if not len(live):
        return precision, recall, (0, 0, 0)
    chunks = plan_chunks(cand_rows, ref_rows, live, table.lengths, budget)
    uses = np.unique(np.concatenate([np.concatenate([cand_rows[c], ref_rows[c]]) * len(chunks) + k for k, c in enumerate(chunks)]))
    options = {} if batch_size is None else {"batch_size": batch_size}
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    embedded = tokens = done = 0
    for k, chunk in enumerate(chunks):
        missing = [int(t) for t in np.unique(np.concatenate([cand_rows[chunk], ref_rows[chunk]])) if int(t) not in cache]
        if missing:
            states = encoder.embed_tokens(table.tokenized(missing), layers=needed, **options)
            for t, s in zip(missing, states):
                cache[t] = (unit_rows(s), share(weights[table.row(t)]))
            embedded, tokens = embedded + len(missing), tokens + int(table.lengths[missing].sum())
        c, r = [cache[int(t)] for t in cand_rows[chunk]], [cache[int(t)] for t in ref_rows[chunk]]
        precision[:, chunk], recall[:, chunk] = greedy_match([x[0] for x in c], [x[1] for x in c], [x[0] for x in r], [x[1] for x in r])
        keep_for_later(cache, uses, len(chunks), k, table.lengths, budget)
        done += len(chunk)
        if progress is not None:
            progress(done, len(live))
    return precision, recall, (embedded, tokens, len(chunks))


def plan_chunks(cand_rows: np.ndarray, ref_rows: np.ndarray, pairs: np.ndarray, lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    """``pairs`` sorted by reference then candidate, cut into runs whose distinct texts hold at most ``budget``
    tokens (one pair at least).

    Example: pairs (cand, ref) rows (0, 2), (1, 2), (3, 4), every text 10 tokens, budget 30 -> [[0, 1], [2]].
    """
    order = pairs[np.lexsort((cand_rows[pairs], ref_rows[pairs]))]
    chunks: list[np.ndarray] = []
    seen: set[int] = set()
    start = tokens = 0
    for i, p in enumerate(order):
        new = {int(cand_rows[p]), int(ref_rows[p])} - seen
        cost = sum(int(lengths[t]) for t in new)
        if tokens + cost > budget and i > start:
            chunks.append(order[start:i])
            start, seen, tokens = i, set(), 0
            new = {int(cand_rows[p]), int(ref_rows[p])}
            cost = sum(int(lengths[t]) for t in new)
        seen |= new
        tokens += cost
    if start < len(order):
        chunks.append(order[start:])
    return chunks


def keep_for_later(
    cache: dict[int, tuple[np.ndarray, np.ndarray]], uses: np.ndarray, n_chunks: int, k: int, lengths: np.ndarray, budget: int
) -> None:
    """After chunk k, keep only texts a later chunk uses, soonest-needed first, within ``budget`` tokens.

    ``uses`` holds text * n_chunks + chunk for every use, sorted.
    """
    rows = np.fromiter(cache, dtype=np.int64, count=len(cache))
    at = np.searchsorted(uses, rows * n_chunks + k + 1)
    found = uses[np.minimum(at, len(uses) - 1)]
    later = (at < len(uses)) & (found // n_chunks == rows)
    order = np.argsort(np.where(later, found % n_chunks, n_chunks), kind="stable")
    kept = later[order] & (np.cumsum(lengths[rows[order]]) <= budget)
    for row in rows[order][~kept]:
        del cache[int(row)]
