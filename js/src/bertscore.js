/**
 * BERTScore from a bundle, giving the numbers of Python's `Encoder.bertscore` (runtime/bertscore.py,
 * the bert-score package 0.3.13's numbers), step for step:
 * - texts are stripped as Python strips them; RoBERTa texts get a leading space; the tokenizer adds
 *   the special tokens and cuts at the model maximum, as the package does;
 * - token weights: without idf 1, and 0 for [CLS] and [SEP]; with idf log((M + 1) / (df + 1)), df over
 *   the M references (repeats included) or over given sentences;
 * - greedy matching and F1: greedy.js; several references per candidate keep the maximum of P, of R
 *   and of F each on its own; rescaling (s - b) / (1 - b) with a baseline's row (baseline.js);
 * - each distinct text is tokenized once and embedded once, every asked layer in one pass, pairs
 *   scored in chunks of bounded memory (pair_chunks.js); the hash string is Python's.
 */

import { baselineDigest, baselineRows, parseBaseline, pyStrip } from "./baseline.js";
import { sha256Hex } from "./bundle.js";
import { InputError } from "./errors.js";
import { fMeasure, rescale } from "./greedy.js";
import { MANIFEST_NAME } from "./manifest.js";
import { resolveLayers } from "./options.js";
import { scorePairs, TokenTable, uniqueRows } from "./pair_chunks.js";

/** The layerwise version a score hash names: Python's package version (the tests hold them equal). */
export const VERSION = "0.1.0";
const CHUNK_BYTES = 256 * 2 ** 20; // token vectors of one chunk, and at most as much again kept for later chunks
const PREFIX_SPACE = ["roberta"]; // model types whose slow tokenizer the package calls with add_prefix_space=True
const OVERFLOWS = [null, "truncate", "error"];
const OPTIONS = { layers: undefined, idf: false, baseline: null, overflow: null, batchSize: 32, chunkTokens: null, progress: null };

export async function bertscore(encoder, candidates, references, options) {
  const started = performance.now();
  const o = checkScoreOptions(options);
  const { cands, groups } = checkPairs(candidates, references);
  if (!OVERFLOWS.includes(o.overflow)) throw new InputError(`overflow must be null, 'truncate' or 'error' for a score, got ${JSON.stringify(o.overflow)}`);
  const { numLayers, hiddenSize, modelType } = encoder.info;
  const chosen = resolveLayers(o.layers, numLayers);
  const needed = [...new Set(chosen)].sort((a, b) => a - b);
  const base = o.baseline === null ? null : parseBaseline(o.baseline);
  const rescaleBy = base && baselineRows(base, chosen, numLayers);
  const flatRefs = groups.flat();
  const starts = new Int32Array(groups.length); // where each candidate's references start among flatRefs
  groups.forEach((g, i) => i && (starts[i] = starts[i - 1] + groups[i - 1].length));
  const prefix = PREFIX_SPACE.includes(modelType);
  const index = new Map();
  const candRows = uniqueRows(cands.map((t) => prepare(t, prefix)), index);
  const refRows = uniqueRows(flatRefs.map((t) => prepare(t, prefix)), index);
  const tokenizer = encoder._tokenizer;
  const table = TokenTable.build(tokenizer, [...index.keys()]);
  const where = { candRows, refRows, starts };
  const { cutCands, cutRefs } = checkLengths(table, where, o.overflow);
  const { weights, idfTag } = await tokenWeights(tokenizer, table, refRows, o.idf, prefix);
  const pairCands = Int32Array.from(groups.flatMap((g, i) => g.map(() => candRows[i]))); // the candidate of each reference
  const empty = (t) => table.lengths[t] <= tokenizer.specials; // the package: [CLS] [SEP] alone
  const live = [...refRows.keys()].filter((p) => !empty(pairCands[p]) && !empty(refRows[p]));
  const budget = o.chunkTokens ?? Math.max(1, Math.floor(CHUNK_BYTES / (4 * needed.length * hiddenSize)));
  const run = await scorePairs(encoder, table, weights, pairCands, refRows, live, needed, budget, o.batchSize, o.progress);
  const scores = bestOfReferences(run, needed, chosen, starts, flatRefs.length, rescaleBy);
  return {
    ...scores,
    dims: Number.isInteger(o.layers) ? [cands.length] : [chosen.length, cands.length],
    layers: chosen,
    hash: await scoreHash(encoder, chosen, idfTag, base),
    truncatedCandidates: cutCands,
    truncatedReferences: cutRefs,
    stats: {
      pairs: flatRefs.length,
      uniqueTexts: index.size,
      embeddedTexts: run.embedded,
      tokens: run.tokens,
      chunks: run.chunks,
      seconds: (performance.now() - started) / 1000,
    },
  };
}

function checkScoreOptions(options) {
  const unknown = Object.keys(options ?? {}).filter((k) => !(k in OPTIONS));
  if (unknown.length) throw new InputError(`unknown option(s) ${unknown.join(", ")}; options are ${Object.keys(OPTIONS).join(", ")}`);
  const o = { ...OPTIONS, ...Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) };
  if (o.layers === undefined) throw new InputError('bertscore needs layers: the hidden state(s) to match, e.g. layers: 4, [2, 4] or "all"');
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${JSON.stringify(o.batchSize)}`);
  if (o.chunkTokens !== null && (!Number.isInteger(o.chunkTokens) || o.chunkTokens < 1)) {
    throw new InputError(`chunkTokens must be a positive integer, got ${JSON.stringify(o.chunkTokens)}`);
  }
  if (o.progress !== null && typeof o.progress !== "function") throw new InputError("progress must be a function (done, total)");
  return o;
}

/** Candidates and their reference lists, checked as runtime/bertscore.py's _pairs. */
function checkPairs(candidates, references) {
  const cands = strings(candidates, "candidates");
  if (!Array.isArray(references)) throw new TypeError(`references must be an array of strings or of arrays of strings, got ${typeof references}`);
  const groups = references.map((ref, i) => (typeof ref === "string" ? [ref] : strings(ref, `references[${i}]`)));
  if (!cands.length) throw new InputError("no candidates were given: give at least one candidate and one reference for it");
  if (cands.length !== groups.length) {
    throw new InputError(`${cands.length} candidates but ${groups.length} references: give one reference (or list of them) per candidate`);
  }
  groups.forEach((group, i) => {
    if (!group.length) throw new InputError(`references[${i}] is an empty list: give at least one reference for candidate ${i}`);
  });
  return { cands, groups };
}

function strings(values, name) {
  if (!Array.isArray(values)) throw new TypeError(`${name} must be an array of strings, got ${typeof values}`);
  values.forEach((v, i) => {
    if (typeof v !== "string") throw new TypeError(`${name}[${i}] must be a string, got ${typeof v}`);
  });
  return [...values];
}

/** The package's sent_encode before tokenizing: strip; RoBERTa: a leading space before a non-empty text. */
function prepare(text, prefixSpace) {
  const stripped = pyStrip(text);
  return prefixSpace && stripped ? " " + stripped : stripped;
}

/** How the caller knows the text of distinct row `row`: its first candidate or reference. */
function nameOf(row, { candRows, refRows, starts }) {
  const cand = candRows.indexOf(row);
  if (cand >= 0) return `candidate ${cand}`;
  const flat = refRows.indexOf(row);
  let owner = starts.length - 1;
  while (starts[owner] > flat) owner--;
  return starts.length === refRows.length ? `reference ${owner}` : `reference ${flat - starts[owner]} of candidate ${owner}`;
}

/** Candidates cut, and candidates with a reference cut; refused when `overflow` is "error". */
function checkLengths(table, where, overflow) {
  const cut = (t) => table.fullLengths[t] > table.limit;
  const cutCands = [...where.candRows.keys()].filter((i) => cut(where.candRows[i]));
  const owners = [...where.refRows.keys()].filter((p) => cut(where.refRows[p])).map((p) => where.starts.findLastIndex((s) => s <= p));
  const cutRefs = [...new Set(owners)].sort((a, b) => a - b);
  const first = table.fullLengths.findIndex((n) => n > table.limit);
  if (overflow === "error" && first >= 0) {
    const count = table.fullLengths.filter((n) => n > table.limit).length;
    throw new InputError(
      `${nameOf(first, where)} has ${table.fullLengths[first]} tokens, more than the model maximum ${table.limit} (${count} distinct ` +
        'text(s) too long); bert-score cuts such texts: pass overflow: "truncate" to score them cut, or shorten them',
    );
  }
  return { cutCands, cutRefs };
}

/** Float32Array weight per vocabulary id, and the hash's idf tag (runtime/bertscore.py's _weights). */
async function tokenWeights(tokenizer, table, refRows, idf, prefix) {
  if (idf === false) {
    const weights = new Float32Array(maxId(table) + 1).fill(1);
    for (const id of tokenizer.postProcess([]).ids) if (id < weights.length) weights[id] = 0; // [CLS] and [SEP]: what an empty text holds
    return { weights, idfTag: "_no-idf" };
  }
  if (idf === true) {
    const counts = new Float64Array(table.texts.length);
    for (const t of refRows) counts[t]++;
    return { weights: idfWeights(table, counts, maxId(table) + 1), idfTag: "_idf" };
  }
  if (!Array.isArray(idf) || !idf.length) {
    throw new InputError(`idf must be false, true (from the references) or a non-empty array of sentences, got ${String(JSON.stringify(idf)).slice(0, 80)}`);
  }
  const index = new Map();
  const rows = uniqueRows(strings(idf, "idf").map((t) => prepare(t, prefix)), index);
  const given = TokenTable.build(tokenizer, [...index.keys()]);
  const counts = new Float64Array(index.size);
  for (const t of rows) counts[t]++;
  const digest = (await sha256Hex(new TextEncoder().encode(idf.join("\n")))).slice(0, 16);
  return { weights: idfWeights(given, counts, Math.max(maxId(given), maxId(table)) + 1), idfTag: `_idf-given=${digest}` };
}

const maxId = (table) => table.ids.reduce((m, id) => Math.max(m, id), 0);

/**
 * log((M + 1) / (df + 1)) per id below `size`, in float32: M = the sum of `counts` (text t of `table`
 * occurs counts[t] times); df: in how many of them an id occurs (the package's get_idf_dict).
 *
 * Example: texts [[101, 7, 102], [101, 102]] counted [2, 1] -> M = 3; id 7: log(4 / 3); 101: log(4 / 4) = 0; unseen: log(4).
 */
export function idfWeights(table, counts, size) {
  const df = new Float64Array(size);
  const seen = new Int32Array(size).fill(-1);
  for (let t = 0; t < table.texts.length; t++) {
    for (const id of table.row(t)) {
      if (seen[id] !== t) (seen[id] = t), (df[id] += counts[t]);
    }
  }
  const documents = counts.reduce((s, c) => s + c, 0);
  return Float32Array.from(df, (d) => Math.log((documents + 1) / (d + 1)));
}

/** Per chosen layer, the maximum over each candidate's references of P, R and F, each on its own, then rescaled. */
function bestOfReferences(run, needed, chosen, starts, pairs, rescaleBy) {
  const candidates = starts.length;
  const out = { precision: new Float32Array(chosen.length * candidates), recall: new Float32Array(chosen.length * candidates) };
  out.f1 = new Float32Array(out.precision.length);
  chosen.forEach((layer, k) => {
    const at = needed.indexOf(layer) * pairs;
    for (let i = 0; i < candidates; i++) {
      const end = i + 1 < candidates ? starts[i + 1] : pairs;
      let [p, r, f] = [-Infinity, -Infinity, -Infinity];
      for (let q = starts[i]; q < end; q++) {
        const [pq, rq] = [run.precision[at + q], run.recall[at + q]];
        [p, r, f] = [Math.max(p, pq), Math.max(r, rq), Math.max(f, fMeasure(pq, rq))];
      }
      if (rescaleBy) [p, r, f] = [p, r, f].map((s, c) => rescale(s, rescaleBy[k][c]));
      [out.precision[k * candidates + i], out.recall[k * candidates + i], out.f1[k * candidates + i]] = [p, r, f];
    }
  });
  return out;
}

/**
 * Python's score_hash: `{bundle}_L{layers}{_no-idf|_idf|_idf-given=…}_version=layerwise-{v}(bundle={manifest
 * sha256[:16]},variant={variant})`, then `-rescaled(baseline={sha256[:16]})` when rescaled.
 */
async function scoreHash(encoder, layers, idfTag, baseline) {
  const source = encoder._source;
  const manifest = (await sha256Hex(await source.read([MANIFEST_NAME], null, "manifest"))).slice(0, 16);
  const text =
    `${await source.name()}_L${layers.join(",")}${idfTag}` + `_version=layerwise-${VERSION}(bundle=${manifest},variant=${encoder.info.variant})`;
  return baseline === null ? text : `${text}-rescaled(baseline=${(await baselineDigest(baseline)).slice(0, 16)})`;
}
