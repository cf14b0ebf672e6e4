/**
 * Texts tokenized once into flat typed arrays, and candidate-reference pairs scored in chunks of
 * bounded memory, each distinct text embedded once: runtime/score_inputs.py's TokenTable and
 * runtime/pair_chunks.py, the same plan and cache so the same texts are embedded in the same chunks.
 *
 * Pairs are sorted by reference then candidate, so pairs sharing a reference fall in one chunk, and
 * cut where a chunk's distinct texts reach a token budget. After each chunk, the texts a later chunk
 * needs stay cached (soonest-needed first, within the same budget); the rest are dropped. A text the
 * budget pushed out is embedded again when needed (counted in `embedded`).
 */

import { MatchScratch, matchLayer, share, unitRows } from "./greedy.js";

const TOKENIZE_TEXTS = 4096; // texts per tokenizer call: bounds the arrays a call builds

/** Token ids of texts, flat: text t holds ids[offsets[t] .. offsets[t + 1]] (special tokens included, cut to `limit`). */
export class TokenTable {
  constructor(texts, ids, typeIds, offsets, fullLengths, limit) {
    Object.assign(this, { texts, ids, typeIds, offsets, fullLengths, limit });
    this.lengths = Int32Array.from({ length: texts.length }, (_, t) => offsets[t + 1] - offsets[t]);
  }

  /** Tokenize `texts` with the encoder's tokenizer, cut at the model maximum, TOKENIZE_TEXTS at a time. */
  static build(tokenizer, texts) {
    const parts = [];
    for (let start = 0; start < texts.length; start += TOKENIZE_TEXTS) parts.push(tokenizer.encode(texts.slice(start, start + TOKENIZE_TEXTS), null, true));
    const offsets = new Float64Array(texts.length + 1);
    const all = parts.flatMap((p) => p.ids);
    all.forEach((ids, t) => (offsets[t + 1] = offsets[t] + ids.length));
    const ids = new Int32Array(offsets[texts.length]);
    const typeIds = new Uint8Array(offsets[texts.length]);
    parts.flatMap((p) => p.typeIds).forEach((types, t) => typeIds.set(types, offsets[t]));
    all.forEach((row, t) => ids.set(row, offsets[t]));
    const fullLengths = Int32Array.from(parts.flatMap((p) => p.fullLengths));
    return new TokenTable(texts, ids, typeIds, offsets, fullLengths, tokenizer.checkLimit(null));
  }

  row(t) {
    return this.ids.subarray(this.offsets[t], this.offsets[t + 1]);
  }

  /** The texts `rows` as the encoder's batching takes them (already cut: nothing is tokenized again). */
  encoded(rows) {
    return {
      texts: rows.map((t) => this.texts[t]),
      ids: rows.map((t) => this.row(t)),
      typeIds: rows.map((t) => this.typeIds.subarray(this.offsets[t], this.offsets[t + 1])),
      fullLengths: rows.map((t) => this.fullLengths[t]),
      limit: this.limit,
    };
  }
}

/** Each text's row in `index` (a Map text -> row), adding the texts not yet there. Example: ["a", "b", "a"] -> [0, 1, 0]. */
export function uniqueRows(texts, index) {
  return Int32Array.from(texts, (t) => {
    if (!index.has(t)) index.set(t, index.size);
    return index.get(t);
  });
}

/**
 * Precision and recall, Float32Array [needed layers * pairs] (0 for pairs not `live`), and
 * {embedded, tokens, chunks}. `encoder._runEncoded` embeds; `weights` (per vocabulary id) weigh tokens.
 */
export async function scorePairs(encoder, table, weights, candRows, refRows, live, needed, budget, batchSize, progress) {
  const pairs = candRows.length;
  const precision = new Float32Array(needed.length * pairs);
  const recall = new Float32Array(needed.length * pairs);
  if (!live.length) return { precision, recall, embedded: 0, tokens: 0, chunks: 0 };
  const hidden = encoder.info.hiddenSize;
  const chunks = planChunks(candRows, refRows, live, table.lengths, budget);
  const uses = new Map(); // text -> the chunks that use it, ascending
  chunks.forEach((chunk, k) => {
    for (const p of chunk) {
      for (const t of [candRows[p], refRows[p]]) {
        const list = uses.get(t) ?? uses.set(t, []).get(t);
        if (list[list.length - 1] !== k) list.push(k);
      }
    }
  });
  const cache = new Map(); // text -> {vectors: unit rows [needed, tokens, hidden], weights, n}
  const scratch = new MatchScratch();
  let embedded = 0, tokens = 0, done = 0;
  for (const [k, chunk] of chunks.entries()) {
    const inChunk = new Set();
    for (const p of chunk) inChunk.add(candRows[p]).add(refRows[p]);
    const missing = [...inChunk].sort((a, b) => a - b).filter((t) => !cache.has(t));
    if (missing.length) {
      const encoded = table.encoded(missing);
      const { perRow } = await encoder._runEncoded(encoded, needed, "none", batchSize);
      perRow.forEach((states, r) => {
        encoder._checkFinite(states, r, needed, encoded.texts);
        const t = missing[r];
        cache.set(t, { vectors: unitRows(states, hidden), weights: share(Array.from(table.row(t), (id) => weights[id])), n: table.lengths[t] });
      });
      embedded += missing.length;
      tokens += missing.reduce((n, t) => n + table.lengths[t], 0);
    }
    for (const p of chunk) {
      const c = cache.get(candRows[p]), r = cache.get(refRows[p]);
      needed.forEach((_, j) => {
        const [pj, rj] = matchLayer(c.vectors, j * c.n * hidden, c.n, c.weights, r.vectors, j * r.n * hidden, r.n, r.weights, hidden, scratch);
        precision[j * pairs + p] = pj;
        recall[j * pairs + p] = rj;
      });
    }
    keepForLater(cache, uses, chunks.length, k, table.lengths, budget);
    done += chunk.length;
    progress?.(done, live.length);
  }
  return { precision, recall, embedded, tokens, chunks: chunks.length };
}

/**
 * `pairs` sorted by reference then candidate, cut into runs whose distinct texts hold at most `budget`
 * tokens (one pair at least).
 *
 * Example: pairs (cand, ref) rows (0, 2), (1, 2), (3, 4), every text 10 tokens, budget 30 -> [[0, 1], [2]].
 */
export function planChunks(candRows, refRows, pairs, lengths, budget) {
  const order = [...pairs].sort((a, b) => refRows[a] - refRows[b] || candRows[a] - candRows[b]); // stable, as np.lexsort
  const chunks = [];
  let seen = new Set(), start = 0, tokens = 0;
  order.forEach((p, i) => {
    const fresh = (s) => [...new Set([candRows[p], refRows[p]])].filter((t) => !s.has(t));
    let added = fresh(seen);
    let cost = added.reduce((n, t) => n + lengths[t], 0);
    if (tokens + cost > budget && i > start) {
      chunks.push(order.slice(start, i));
      [start, seen, tokens] = [i, new Set(), 0];
      added = fresh(seen);
      cost = added.reduce((n, t) => n + lengths[t], 0);
    }
    added.forEach((t) => seen.add(t));
    tokens += cost;
  });
  if (start < order.length) chunks.push(order.slice(start));
  return chunks;
}

/** After chunk k, keep only texts a later chunk uses, soonest-needed first (stable in cache order), within `budget` tokens. */
export function keepForLater(cache, uses, chunkCount, k, lengths, budget) {
  const next = (t) => uses.get(t).find((c) => c > k) ?? chunkCount;
  const rows = [...cache.keys()].map((t, i) => ({ t, i, at: next(t) }));
  rows.sort((a, b) => a.at - b.at || a.i - b.i);
  let total = 0;
  for (const { t, at } of rows) {
    total += lengths[t];
    if (at === chunkCount || total > budget) cache.delete(t);
  }
}
