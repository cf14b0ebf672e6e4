/**
 * The Encoder: per-layer embeddings from a bundle with ONNX Runtime for JavaScript, the same
 * semantics as runtime/encoder.py. It validates a request, tokenizes once, cuts length-sorted
 * batches, runs the graph cut after the deepest layer asked for, pools with the bundle's
 * pooling graphs, and restores the caller's order. The ONNX Runtime module (onnxruntime-node
 * or onnxruntime-web) and the bundle source are given by node.js / browser.js.
 */

import { loadGraph } from "./bundle.js";
import { BundleError, InputError, NonFiniteOutputError } from "./errors.js";
import { POOLING_INPUTS, POOLING_KINDS, POOLING_OUTPUT, outputName } from "./manifest.js";
import { cutModel } from "./onnx_graph.js";
import { bertscore } from "./bertscore.js";
import { maxsim } from "./maxsim.js";
import { checkOptions, checkTexts, checkWeights, combineRows, l2Normalize, mixWeights, resolveLayers, SCALAR_MIX } from "./options.js";
import { lengthSortedBatches, truncatedIndices } from "./tokenize.js";
import { merge, runPool, split } from "./windows.js";

/** Padded tokens per batch on the CPU: the Python runtime's cap for CPU families without their own
 * (BATCH_TOKENS_CPU in runtime/batching.py); JS cannot see the CPU family in a browser, so it uses this everywhere. */
export const BATCH_TOKENS_CPU = 512;

const preview = (text, width = 60) => JSON.stringify(text.length <= width ? text : text.slice(0, width - 3) + "...");

export class Encoder {
  /** Build with `load()`; `backend` = {ort, name, sessionOptions(variant) -> options}. */
  constructor({ source, manifest, variant, backend, tokenizer, threads, sessions, pools }) {
    this._source = source;
    this._manifest = manifest;
    this._variant = manifest.variants[variant];
    this._backend = backend;
    this._tokenizer = tokenizer;
    this._sessions = sessions; // deepest layer -> Promise<InferenceSession>
    this._pools = pools;
    this.lastStats = { texts: 0, tokens: 0, paddedTokens: 0, truncated: 0, truncatedIndices: [], batches: 0, seconds: 0, split: 0, windows: 0 };
    this.info = Object.freeze({
      bundle: source.location,
      modelType: manifest.modelType,
      variant,
      backend: backend.name,
      numLayers: manifest.numLayers,
      hiddenSize: manifest.hiddenSize,
      maxLength: manifest.maxLength,
      threads,
      defaultPooling: manifest.defaultPooling,
    });
  }

  /**
   * Pooled embeddings: {dims: [texts, layers, hidden], data: Float32Array} (row-major);
   * [texts, layers*hidden] with combine "concat", [texts, hidden] with "sum", "mean" or
   * "scalar_mix" (`weights`, one per layer, softmax-normalised, times `gamma`: AllenNLP's ScalarMix).
   * Options: layers ("all", an integer or an array; negative counts from the end), pool
   * ("mean", "max", "cls"), combine, weights, gamma, normalize, batchSize, maxLength, truncate, overflow
   * ("truncate", "error" or "chunk": the whole text as windows sharing `stride` tokens, default
   * min(128, half a window), merged as windows.js defines). `truncated` lists the texts cut to the maximum length.
   */
  async embed(texts, options = {}) {
    const o = checkOptions(options, POOLING_KINDS);
    const { truncated, chosen, needed, perText } = await this._run(texts, o, o.pool);
    const hidden = this.info.hiddenSize;
    const positions = chosen.map((layer) => needed.indexOf(layer));
    const vec = (i, j) => perText[i].subarray(positions[j] * hidden, (positions[j] + 1) * hidden);
    const { tail, data } = combineRows(vec, perText.length, positions.length, hidden, o.combine, mix(o));
    if (o.normalize) l2Normalize(data, hidden * (o.combine === "concat" ? positions.length : 1));
    return { dims: [perText.length, ...tail], data, truncated };
  }

  /**
   * Per-token embeddings: one {dims: [layers, tokens, hidden], data} per text, no padding
   * rows; with combine, {dims: [tokens, layers*hidden] or [tokens, hidden]}.
   */
  async embedTokens(texts, options = {}) {
    if ("pool" in options) throw new InputError("embedTokens takes no pool option: it returns every token; pooled vectors come from embed()");
    const o = checkOptions({ ...options, pool: "mean" }, POOLING_KINDS);
    const { chosen, needed, perText } = await this._run(texts, o, "none");
    const hidden = this.info.hiddenSize;
    const positions = chosen.map((layer) => needed.indexOf(layer));
    return perText.map((states) => {
      const tokens = states.length / (needed.length * hidden);
      const vec = (t, j) => states.subarray((positions[j] * tokens + t) * hidden, (positions[j] * tokens + t + 1) * hidden);
      let { tail, data } = combineRows(vec, tokens, positions.length, hidden, o.combine, mix(o));
      let dims = [tokens, ...tail];
      if (o.combine === null) [dims, data] = [[positions.length, tokens, hidden], layersFirst(data, tokens, positions.length, hidden)];
      if (o.normalize) l2Normalize(data, dims[dims.length - 1]);
      return { dims, data };
    });
  }

  /**
   * BERTScore of each candidate against its reference (a string) or references (an array: the best
   * is kept), equal to Python's `Encoder.bertscore` (the bert-score package 0.3.13's numbers).
   * Options: layers (required: an integer, an array or "all"; several give one row per layer from one
   * pass), idf (false, true: from the references, or an array of sentences), baseline (the text of a
   * baseline file, `LAYER,P,R,F`: rescales (s - b) / (1 - b)), overflow (null or "truncate": cut at
   * the model maximum as the package does, reported in truncatedCandidates / truncatedReferences;
   * "error": refuse), batchSize, chunkTokens (tokens embedded at a time), progress(done, total).
   * Returns {precision, recall, f1: Float32Array, dims: [candidates] for an integer layer else
   * [layers, candidates], layers, hash, truncatedCandidates, truncatedReferences, stats}. bertscore.js says how.
   */
  bertscore(candidates, references, options = {}) {
    return bertscore(this, candidates, references, options);
  }

  /**
   * MaxSim (ColBERT's late interaction) of one query against documents, equal to Python's
   * `Encoder.maxsim`: per document, the sum over the query's tokens of each one's best cosine among
   * the document's tokens (punctuation skipped). Options: layers (default -1; several need combine
   * "concat", "sum" or "mean"), combine, normalize (default true; false: dot products),
   * skipPunctuation (default true), returnMatches, overflow, batchSize. Returns {scores: Float32Array,
   * layers, queryTokens, matches: per document {positions: Int32Array, tokens, similarities: Float32Array}, or null}.
   */
  maxsim(query, documents, options = {}) {
    return maxsim(this, query, documents, options);
  }

  /**
   * Tokenize (or split into windows with overflow "chunk"), batch, run, merge windows; per text a
   * Float32Array [needed layers, hidden] (pooled) or [needed layers, tokens, hidden].
   */
  async _run(texts, o, pool) {
    const started = performance.now();
    const chosen = checkWeights(o, resolveLayers(o.layers, this.info.numLayers));
    const needed = [...new Set(chosen)].sort((a, b) => a - b);
    const list = checkTexts(texts);
    const windows = o.overflow === "chunk" ? split(this._tokenizer, list, o.maxLength, o.stride) : null;
    const encoded = windows ? windows.encoded : this._tokenizer.encode(list, o.maxLength, o.truncate);
    const { batches, perRow } = await this._runEncoded(encoded, needed, windows ? runPool(windows, pool) : pool, o.batchSize);
    const perText = windows ? merge(windows, perRow, pool, needed.length, this.info.hiddenSize) : perRow;
    perText.forEach((values, row) => this._checkFinite(values, row, needed, list));
    const truncated = truncatedIndices(encoded);
    this.lastStats = {
      texts: list.length,
      tokens: encoded.ids.reduce((n, ids) => n + ids.length, 0),
      paddedTokens: batches.reduce((n, b) => n + b.rows * b.width, 0),
      truncated: truncated.length,
      truncatedIndices: truncated,
      batches: batches.length,
      seconds: (performance.now() - started) / 1000,
      split: windows ? windows.split.length : 0,
      windows: encoded.ids.length,
    };
    return { truncated, chosen, needed, perText };
  }

  /**
   * Texts already tokenized ({ids, typeIds}: one array or typed array per text), in length-sorted
   * batches: the batches, and per row a Float32Array [layers, hidden] or, with pool "none", [layers, tokens, hidden].
   */
  async _runEncoded(encoded, layers, pool, batchSize) {
    const batches = [...lengthSortedBatches(encoded, batchSize, this._tokenizer.padId, BATCH_TOKENS_CPU)];
    const perRow = new Array(encoded.ids.length);
    for (const batch of batches) {
      const values = await this._runBatch(batch, layers, pool);
      batch.indices.forEach((row, r) => (perRow[row] = values(r)));
    }
    return { batches, perRow };
  }

  /** Run one batch; returns row -> that text's Float32Array for the needed layers. */
  async _runBatch(batch, layers, pool) {
    const { Tensor } = this._backend.ort;
    const dims = [batch.rows, batch.width];
    const mask = new Tensor("int64", batch.attentionMask, dims);
    const byRole = { ids: () => new Tensor("int64", batch.inputIds, dims), mask: () => mask, type_ids: () => new Tensor("int64", batch.tokenTypeIds, dims) };
    const feeds = Object.fromEntries(this._manifest.inputs.map((i) => [i.name, byRole[i.role]()])); // the graph's inputs, as the manifest lists them
    const session = await this.session(layers[layers.length - 1]);
    const outputs = await session.run(feeds, layers.map(outputName));
    const hidden = this.info.hiddenSize;
    if (pool === "none") {
      const states = layers.map((layer) => outputs[outputName(layer)].data);
      return (r) => {
        const n = batch.lengths[r];
        const out = new Float32Array(layers.length * n * hidden);
        states.forEach((s, j) => out.set(s.subarray(r * batch.width * hidden, (r * batch.width + n) * hidden), j * n * hidden));
        return out;
      };
    }
    const pooled = [];
    for (const layer of layers) {
      const result = await this._pools[pool].run({ [POOLING_INPUTS[0]]: outputs[outputName(layer)], [POOLING_INPUTS[1]]: mask });
      pooled.push(result[POOLING_OUTPUT].data);
    }
    return (r) => {
      const out = new Float32Array(layers.length * hidden);
      pooled.forEach((p, j) => out.set(p.subarray(r * hidden, (r + 1) * hidden), j * hidden));
      return out;
    };
  }

  _checkFinite(values, row, layers, texts) {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad < 0) return;
    const layer = layers[Math.floor((bad / values.length) * layers.length)];
    throw new NonFiniteOutputError(
      `variant '${this.info.variant}' produced NaN or Inf at layer ${layer} for text ${row} ${preview(texts[row])}; ` +
        "nothing was returned. Use the 'fused' or 'fp32' variant for such inputs",
    );
  }

  /** The session of the graph through layer `deepest` (cut and cached on first use). */
  session(deepest) {
    if (!this._sessions.has(deepest)) {
      this._sessions.set(deepest, this._cutSession(deepest));
    }
    return this._sessions.get(deepest);
  }

  async _cutSession(deepest) {
    const v = this._variant;
    const graph = await loadGraph(this._source, v.graph, v.externalData, `variant '${v.name}' graph`);
    const keep = [...Array(deepest + 1).keys()].map(outputName);
    return createSession(this._backend, { ...graph, bytes: cutModel(graph.bytes, keep) }, v, `variant '${v.name}' through layer ${deepest}`);
  }

  /** Release every session. */
  async close() {
    const sessions = [...(await Promise.all(this._sessions.values())), ...Object.values(this._pools)];
    await Promise.all(sessions.map((s) => s.release()));
    this._sessions.clear();
  }
}

/** The scalar mix's per-layer factors when `o` asks for one, else null. */
const mix = (o) => (o.combine === SCALAR_MIX ? mixWeights(o.weights, o.gamma) : null);

/** [tokens, layers, hidden] -> [layers, tokens, hidden]. */
function layersFirst(data, tokens, layers, hidden) {
  const out = new Float32Array(data.length);
  for (let t = 0; t < tokens; t++) for (let j = 0; j < layers; j++) out.set(data.subarray((t * layers + j) * hidden, (t * layers + j + 1) * hidden), (j * tokens + t) * hidden);
  return out;
}

/** A session for a verified graph, with the variant's required session config entries; errors name the graph. */
export async function createSession(backend, graph, variant, name) {
  try {
    return await backend.ort.InferenceSession.create(graph.bytes, backend.sessionOptions(graph, variant));
  } catch (e) {
    throw new BundleError(`ONNX Runtime (${backend.name}) could not load ${name}: ${e.message}; re-export the bundle with a matching onnxruntime`, { cause: e });
  }
}

/** Check a full graph's inputs and outputs against the bundle contract. */
export function checkContract(session, manifest, name) {
  const inputs = [...session.inputNames].sort();
  const listed = manifest.inputs.map((i) => i.name);
  if (JSON.stringify(inputs) !== JSON.stringify([...listed].sort())) {
    throw new BundleError(`${name} has inputs ${JSON.stringify(inputs)}, but the manifest lists ${JSON.stringify(listed)}; re-export the bundle`);
  }
  const expected = [...Array(manifest.numLayers + 1).keys()].map(outputName);
  if (JSON.stringify(session.outputNames) !== JSON.stringify(expected)) {
    throw new BundleError(
      `${name} has outputs ${JSON.stringify(session.outputNames)}, but the manifest promises ${manifest.numLayers + 1} hidden states ` +
        `${expected[0]}..${expected[expected.length - 1]}`,
    );
  }
}
