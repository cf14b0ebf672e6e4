/**
 * MaxSim (ColBERT's late interaction) from any layer, as runtime/maxsim.py computes it: for each query
 * token its best cosine (or dot product, normalize: false) among a document's tokens, summed over the
 * query's tokens. Every query token counts, [CLS] and [SEP] included; a document's [CLS] and [SEP] are
 * match targets but its punctuation is not (ColBERT's skiplist: the first id of each ASCII punctuation
 * character tokenized alone). No [Q]/[D] markers, no projection, the model maximum as the length limit.
 */

import { InputError } from "./errors.js";
import { resolveLayers } from "./options.js";

const DOCUMENTS_PER_CHUNK = 512; // documents embedded at a time: bounds memory for a long list
export const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; // Python's string.punctuation
const OPTIONS = { layers: -1, combine: null, normalize: true, skipPunctuation: true, returnMatches: false, overflow: null, batchSize: 32 };

export async function maxsim(encoder, query, documents, options) {
  const unknown = Object.keys(options ?? {}).filter((k) => !(k in OPTIONS));
  if (unknown.length) throw new InputError(`unknown option(s) ${unknown.join(", ")}; options are ${Object.keys(OPTIONS).join(", ")}`);
  const o = { ...OPTIONS, ...Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) };
  for (const flag of ["skipPunctuation", "returnMatches"]) {
    if (typeof o[flag] !== "boolean") throw new InputError(`${flag} must be true or false, got ${JSON.stringify(o[flag])}`);
  }
  if (typeof query !== "string") throw new TypeError(`query must be a string, got ${typeof query}`);
  if (!Array.isArray(documents) || !documents.every((d) => typeof d === "string")) throw new TypeError("documents must be an array of strings");
  if (!documents.length) throw new InputError("no documents were given: give at least one document to score the query against");
  if (!Number.isInteger(o.layers) && o.combine === null) {
    throw new InputError(`MaxSim over several layers (${JSON.stringify(o.layers)}) needs combine "concat", "sum" or "mean": one vector per token`);
  }
  const chosen = resolveLayers(o.layers, encoder.info.numLayers);
  const embedOptions = { layers: chosen, combine: o.combine, normalize: o.normalize, overflow: o.overflow, batchSize: o.batchSize };
  const [q] = await embedNamed(encoder, [query], embedOptions);
  const skip = new Set(o.skipPunctuation ? punctuationIds(encoder._tokenizer) : []);
  const scores = new Float32Array(documents.length);
  const matches = [];
  for (let start = 0; start < documents.length; start += DOCUMENTS_PER_CHUNK) {
    const part = await embedNamed(encoder, documents.slice(start, start + DOCUMENTS_PER_CHUNK), embedOptions);
    part.forEach((doc, i) => {
      const { best, where } = bestMatches(q, doc, skip);
      let total = 0;
      for (const b of best) total += b;
      scores[start + i] = total;
      if (o.returnMatches) matches.push({ positions: where, tokens: Array.from(where, (w) => doc.tokens[w]), similarities: best });
    });
  }
  return { scores, layers: chosen, queryTokens: q.tokens, matches: o.returnMatches ? matches : null };
}

/** ColBERT's skiplist: the first token id of each punctuation character tokenized alone. */
export function punctuationIds(tokenizer) {
  return [...new Set(tokenizer.rawIds([...PUNCTUATION]).flatMap((ids) => ids.slice(0, 1)))].sort((a, b) => a - b);
}

/** Per text: vectors [tokens, dim] (a Float32Array and its dim), and the ids and token strings of those rows. */
async function embedNamed(encoder, texts, options) {
  const vectors = await encoder.embedTokens(texts, options);
  const whole = encoder._tokenizer.tokens(texts);
  return vectors.map(({ dims, data }, i) => {
    const n = dims.length === 3 ? dims[1] : dims[0]; // one layer, not combined: [1, tokens, hidden]
    let { ids, tokens } = whole[i];
    if (n < ids.length) [ids, tokens] = [[...ids.slice(0, n - 1), ids.at(-1)], [...tokens.slice(0, n - 1), tokens.at(-1)]]; // cut: the closing special token last
    return { data, n, dim: dims.at(-1), ids, tokens };
  });
}

/**
 * Each query token's best similarity among the document's kept tokens (float32), and where (the first
 * of equal maxima, as numpy's argmax). Example: query [[1, 0]], document [[0, 1], [1, 0]] -> [1], [1];
 * with the second document token skipped -> [0], [0].
 */
export function bestMatches(query, doc, skip) {
  const { data: q, n: qn, dim } = query;
  const best = new Float32Array(qn).fill(-Infinity);
  const where = new Int32Array(qn);
  const tail = dim - (dim % 4);
  for (let j = 0; j < doc.n; j++) {
    if (skip.has(doc.ids[j])) continue;
    const b = j * dim;
    for (let i = 0; i < qn; i++) {
      const a = i * dim;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let h = 0; h < tail; h += 4) {
        s0 += q[a + h] * doc.data[b + h];
        s1 += q[a + h + 1] * doc.data[b + h + 1];
        s2 += q[a + h + 2] * doc.data[b + h + 2];
        s3 += q[a + h + 3] * doc.data[b + h + 3];
      }
      for (let h = tail; h < dim; h++) s0 += q[a + h] * doc.data[b + h];
      const s = Math.fround(s0 + s1 + (s2 + s3));
      if (s > best[i]) (best[i] = s), (where[i] = j);
    }
  }
  return { best, where };
}
