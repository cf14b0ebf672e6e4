/**
 * Validate what a caller asks of `embed` / `embedTokens` (runtime/options.py), and combine
 * and normalise layers (runtime/combine.py). Arrays are row-major Float32Arrays.
 */

import { InputError } from "./errors.js";

export const COMBINES = [null, "concat", "sum", "mean"];
export const OVERFLOWS = ["truncate", "error", "chunk"]; // what to do with a text longer than maxLength (windows.js for "chunk")
export const DEFAULTS = {
  layers: "all", pool: "mean", combine: null, normalize: false, batchSize: 32, maxLength: null, truncate: true, overflow: null, stride: null,
};

/** A string or an array of strings, as an array; anything else names the bad index. */
export function checkTexts(texts) {
  if (typeof texts === "string") return [texts];
  if (!Array.isArray(texts)) throw new TypeError(`texts must be a string or an array of strings, got ${typeof texts}`);
  texts.forEach((t, i) => {
    if (typeof t !== "string") throw new TypeError(`texts[${i}] must be a string, got ${typeof t}`);
  });
  return [...texts];
}

/** "all", an integer or an array of integers (negative counts from the end) -> indices 0..L. */
export function resolveLayers(layers, numLayers) {
  const count = numLayers + 1;
  if (typeof layers === "string") {
    if (layers !== "all") throw new InputError(`layers must be 'all', an integer or an array of integers, got ${JSON.stringify(layers)}`);
    return [...Array(count).keys()];
  }
  const chosen = Number.isInteger(layers) ? [layers] : layers;
  if (!Array.isArray(chosen) || chosen.length === 0) {
    throw new InputError(`layers must be 'all', an integer or a non-empty array of integers, got ${JSON.stringify(layers)}`);
  }
  return chosen.map((layer) => {
    if (!Number.isInteger(layer)) throw new InputError(`layers must hold integers, got ${JSON.stringify(layer)}`);
    if (layer < -count || layer >= count) {
      throw new InputError(
        `layer ${layer} does not exist: this model has hidden states 0..${numLayers} (0 is the embedding output), or -${count}..-1 counting from the end`,
      );
    }
    return ((layer % count) + count) % count;
  });
}

/** Every option checked, with defaults filled in. `pools` are the pooling kinds the entry point accepts. */
export function checkOptions(options, pools) {
  const known = Object.keys(DEFAULTS);
  const unknown = Object.keys(options ?? {}).filter((k) => !known.includes(k));
  if (unknown.length) throw new InputError(`unknown option(s) ${unknown.join(", ")}; options are ${known.join(", ")}`);
  const o = { ...DEFAULTS, ...options };
  if (!pools.includes(o.pool)) {
    const hint = o.pool === "none" ? ": per-token output comes from embedTokens()" : "";
    throw new InputError(`pool must be one of ${pools.join(", ")}, got ${JSON.stringify(o.pool)}${hint}`);
  }
  if (!COMBINES.includes(o.combine)) throw new InputError(`combine must be one of null, 'concat', 'sum', 'mean', got ${JSON.stringify(o.combine)}`);
  if (typeof o.normalize !== "boolean") throw new InputError(`normalize must be true or false, got ${JSON.stringify(o.normalize)}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${JSON.stringify(o.batchSize)}`);
  return checkOverflow(o, options ?? {});
}

/**
 * `overflow` and the older `truncate` flag as one choice (runtime/windows.py check_overflow):
 * "truncate" is truncate: true, "error" is truncate: false, "chunk" splits into windows sharing
 * `stride` tokens (checked against the window size by windows.js). `given` are the caller's options.
 */
export function checkOverflow(o, given) {
  o.overflow ??= null;
  o.stride ??= null;
  if (o.overflow === null) {
    if (o.stride !== null) throw new InputError('stride applies to overflow: "chunk" only: pass overflow: "chunk" with it');
    if (typeof o.truncate !== "boolean") throw new InputError(`truncate must be true or false, got ${JSON.stringify(o.truncate)}`);
    return o;
  }
  if (!OVERFLOWS.includes(o.overflow)) {
    throw new InputError(`overflow must be one of ${OVERFLOWS.map((x) => `'${x}'`).join(", ")}, got ${JSON.stringify(o.overflow)}`);
  }
  if (given.truncate !== undefined) {
    throw new InputError("pass overflow or truncate, not both (overflow: 'truncate' is truncate: true, 'error' is truncate: false)");
  }
  if (o.overflow !== "chunk" && o.stride !== null) throw new InputError(`stride applies to overflow: "chunk" only, not overflow: ${JSON.stringify(o.overflow)}`);
  return { ...o, truncate: o.overflow !== "error" };
}

/**
 * Combine `vectors(i, j)` (row i, layer j: a Float32Array of `hidden`) over `rows` rows and
 * `layers` layers: null keeps [rows, layers, hidden], concat gives [rows, layers*hidden],
 * sum and mean give [rows, hidden]. Returns {tail: dims after rows, data}.
 */
export function combineRows(vectors, rows, layers, hidden, combine) {
  const width = combine === "sum" || combine === "mean" ? hidden : layers * hidden;
  const data = new Float32Array(rows * width);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < layers; j++) {
      const v = vectors(i, j);
      if (width === hidden) for (let h = 0; h < hidden; h++) data[i * width + h] += v[h];
      else data.set(v, i * width + j * hidden);
    }
    if (combine === "mean") for (let h = 0; h < hidden; h++) data[i * width + h] /= layers;
  }
  const tail = combine === null ? [layers, hidden] : [width];
  return { tail, data };
}

/** Scale every vector of length `size` to unit length, in place; zero vectors stay zero. */
export function l2Normalize(data, size) {
  for (let start = 0; start < data.length; start += size) {
    let sum = 0;
    for (let h = start; h < start + size; h++) sum += data[h] * data[h];
    const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
    for (let h = start; h < start + size; h++) data[h] *= scale;
  }
  return data;
}
