/**
 * BERTScore's arithmetic on token vectors, as runtime/greedy.py does it (bert_score.utils.greedy_cos_idf):
 * precision is each candidate token's best cosine against the reference's tokens, weighted by the
 * candidate's normalised weights; recall the same the other way; F = 2PR / (P + R), NaN -> 0. The
 * maximum is over real tokens only (Python's choice too). Vectors are Float32Arrays
 * [layers, tokens, hidden]; the loops run over typed arrays and a scratch buffer, allocating nothing
 * per token. Dot products and sums accumulate in float64 and are stored as float32, where Python's
 * ONNX Runtime graph accumulates in float32: the two differ by float32 rounding only.
 */

/** Every token vector divided by its norm (float32), as the package does: [rows, hidden] flattened. */
export function unitRows(states, hidden) {
  const out = new Float32Array(states.length);
  for (let start = 0; start < states.length; start += hidden) {
    let sum = 0;
    for (let h = start; h < start + hidden; h++) sum += states[h] * states[h];
    const norm = Math.fround(Math.sqrt(sum));
    for (let h = start; h < start + hidden; h++) out[h] = states[h] / norm;
  }
  return out;
}

/** Weights scaled to sum to 1, in float32 (all zero gives NaN, as the package's division does). */
export function share(weights) {
  let total = 0;
  for (const w of weights) total += w;
  total = Math.fround(total);
  return Float32Array.from(weights, (w) => w / total);
}

/** Reusable per-token maxima of one pair (float64, grown as needed). */
export class MatchScratch {
  constructor() {
    this.rows = new Float64Array(512);
    this.cols = new Float64Array(512);
  }

  fit(nc, nr) {
    if (nc > this.rows.length) this.rows = new Float64Array(nc);
    if (nr > this.cols.length) this.cols = new Float64Array(nr);
  }
}

/**
 * Precision and recall of one pair at one layer: `cand` holds nc unit vectors of `hidden` from
 * `cAt`, `ref` nr of them from `rAt`; `cw` and `rw` their weights (share). Returns [P, R] in float32.
 *
 * Example (hidden 2): cand [[1, 0], [0, 1]] weights [0.5, 0.5], ref [[1, 0]] weight [1] -> [0.5, 1].
 */
export function matchLayer(cand, cAt, nc, cw, ref, rAt, nr, rw, hidden, scratch) {
  scratch.fit(nc, nr);
  const { rows, cols } = scratch;
  rows.fill(-Infinity, 0, nc);
  cols.fill(-Infinity, 0, nr);
  const tail = hidden - (hidden % 4);
  for (let i = 0; i < nc; i++) {
    const a = cAt + i * hidden;
    let best = -Infinity;
    for (let j = 0; j < nr; j++) {
      const b = rAt + j * hidden;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let h = 0; h < tail; h += 4) {
        s0 += cand[a + h] * ref[b + h];
        s1 += cand[a + h + 1] * ref[b + h + 1];
        s2 += cand[a + h + 2] * ref[b + h + 2];
        s3 += cand[a + h + 3] * ref[b + h + 3];
      }
      for (let h = tail; h < hidden; h++) s0 += cand[a + h] * ref[b + h];
      const s = Math.fround(s0 + s1 + (s2 + s3));
      if (s > best) best = s;
      if (s > cols[j]) cols[j] = s;
    }
    rows[i] = best;
  }
  let p = 0, r = 0;
  for (let i = 0; i < nc; i++) p += Math.fround(rows[i] * cw[i]);
  for (let j = 0; j < nr; j++) r += Math.fround(cols[j] * rw[j]);
  return [Math.fround(p), Math.fround(r)];
}

/** 2PR / (P + R) in float32, NaN -> 0, as the package does. */
export function fMeasure(p, r) {
  const f = Math.fround(Math.fround(Math.fround(2 * p) * r) / Math.fround(p + r));
  return Number.isNaN(f) ? 0 : f;
}

/** (s - b) / (1 - b) in float32. */
export const rescale = (s, b) => Math.fround(Math.fround(s - b) / Math.fround(1 - b));
