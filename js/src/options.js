/**
 * Validate what a caller asks of `embed` / `embedTokens` (runtime/options.py), and combine
 * and normalise layers (runtime/combine.py), AllenNLP's scalar mix included. Arrays are
 * row-major Float32Arrays.
 */

import { InputError } from "./errors.js";

export const SCALAR_MIX = "scalar_mix"; // gamma * sum_k softmax(weights)_k * layer_k: see mixWeights
export const COMBINES = [null, "concat", "sum", "mean", SCALAR_MIX];
export const OVERFLOWS = ["truncate", "error", "chunk"]; // what to do with a text longer than maxLength (windows.js for "chunk")
export const DEFAULTS = {
  layers: "all", pool: "mean", combine: null, normalize: false, batchSize: 32, maxLength: null, truncate: true, overflow: null, stride: null,
  weights: null, gamma: 1,
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
  if (!COMBINES.includes(o.combine)) {
    throw new InputError(`combine must be one of ${COMBINES.map((c) => (c === null ? "null" : `'${c}'`)).join(", ")}, got ${JSON.stringify(o.combine)}`);
  }
  if (typeof o.normalize !== "boolean") throw new InputError(`normalize must be true or false, got ${JSON.stringify(o.normalize)}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${JSON.stringify(o.batchSize)}`);
  return checkMix(checkOverflow(o, options ?? {}));
}

/** `weights` and `gamma` belong to combine "scalar_mix", which needs them (EmbedOptions._check_mix); their count is checked in checkWeights. */
function checkMix(o) {
  o.weights ??= null;
  if (o.combine !== SCALAR_MIX) {
    if (o.weights !== null || o.gamma !== 1) {
      throw new InputError('weights and gamma are the parameters of combine: "scalar_mix": pass it with them, or leave them out');
    }
    return o;
  }
  if (o.weights === null) throw new InputError('combine: "scalar_mix" needs weights, one number per chosen layer');
  const weights = Array.isArray(o.weights) || ArrayBuffer.isView(o.weights) ? Array.from(o.weights) : [];
  if (!weights.length || !weights.every((w) => typeof w === "number" && Number.isFinite(w))) {
    throw new InputError(`weights must be a non-empty array of finite numbers, got ${JSON.stringify(o.weights)}`);
  }
  if (typeof o.gamma !== "number" || !Number.isFinite(o.gamma)) throw new InputError(`gamma must be a finite number, got ${JSON.stringify(o.gamma)}`);
  return { ...o, weights };
}

/** One weight per chosen layer (EmbedOptions.layer_indices); `chosen` are the resolved layers. */
export function checkWeights(o, chosen) {
  if (o.weights !== null && o.weights.length !== chosen.length) {
    throw new InputError(
      `weights has ${o.weights.length} numbers but ${chosen.length} layers are chosen: give one weight per layer, in the order of layers`,
    );
  }
  return chosen;
}

/**
 * The per-layer factors of AllenNLP's ScalarMix, as runtime/combine.py's scalar_mix computes them:
 * gamma * softmax(weights) in float64, then float32. Example: weights [0, 0], gamma 2 -> [1, 1].
 */
export function mixWeights(weights, gamma) {
  const top = Math.max(...weights);
  const exp = weights.map((w) => Math.exp(w - top));
  const total = exp.reduce((s, e) => s + e, 0);
  return Float32Array.from(exp, (e) => (gamma * e) / total);
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
 * sum, mean and scalar_mix (with `mix`: mixWeights) give [rows, hidden]. Returns {tail: dims after rows, data}.
 */
export function combineRows(vectors, rows, layers, hidden, combine, mix = null) {
  const width = combine === null || combine === "concat" ? layers * hidden : hidden;
  const data = new Float32Array(rows * width);
  if (combine === SCALAR_MIX) return { tail: [width], data: mixRows(vectors, rows, layers, hidden, mix, data) };
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

/** sum_j mix[j] * vectors(i, j) per row, accumulated in float64 and stored as float32 (np.tensordot's float32 result). */
function mixRows(vectors, rows, layers, hidden, mix, data) {
  const sum = new Float64Array(hidden);
  for (let i = 0; i < rows; i++) {
    sum.fill(0);
    for (let j = 0; j < layers; j++) {
      const v = vectors(i, j);
      for (let h = 0; h < hidden; h++) sum[h] += mix[j] * v[h];
    }
    data.set(sum, i * hidden);
  }
  return data;
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
