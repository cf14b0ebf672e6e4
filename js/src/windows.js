/**
 * Long texts as overlapping windows, and their merge back into one text: runtime/windows.py in
 * JavaScript, the same windows and the same merge rules.
 *
 * Windows: @huggingface/tokenizers 0.2.0 has no truncation and no overflow, so the windows are
 * cut here as Rust tokenizers' truncation with a stride cuts them (`Encoding::truncate`, right
 * side, what Python's `overflow="chunk"` uses): a text of n content tokens longer than a window's
 * `content` tokens is cut at [start, min(start + content, n)) for start = 0, content - stride, ...
 * until a window reaches the end, and every window is wrapped by the tokenizer's own post-processor.
 * Every window is one row of the usual length-sorted batches.
 *
 * Merge rules (as the README documents them):
 * - tokens: one row per token of the whole text (the first window's leading special tokens,
 *   every content token once, the last window's closing special tokens); a token seen in
 *   several windows gets the mean of its rows. mean/max pool these rows as for a short text.
 * - cls: the windows' first-token vectors, averaged with weights equal to each window's count of
 *   content tokens not shared with the previous window (all of them for the first window).
 */

import { InputError, LayerwiseError } from "./errors.js";

export const DEFAULT_STRIDE = 128; // content tokens shared by consecutive windows, capped at half a window

/** `stride` (null: the default) checked against a window of `content` tokens besides the special ones. */
export function checkStride(stride, content) {
  if (stride == null) return Math.min(DEFAULT_STRIDE, Math.floor(content / 2));
  if (!Number.isInteger(stride) || stride < 0 || stride >= content) {
    throw new InputError(
      `stride must be an integer from 0 to ${content - 1} (windows hold ${content} tokens besides the special ` +
        `ones, and consecutive windows must advance), got ${JSON.stringify(stride)}; pass a smaller stride or a larger maxLength`,
    );
  }
  return stride;
}

/** [start, stop) of each window over `n` content tokens: Rust tokenizers' `Encoding::truncate(content, stride)`. */
export function windowRanges(n, content, stride) {
  if (n <= content) return [[0, n]];
  const ranges = [];
  for (let start = 0; start < n; start += content - stride) {
    const stop = Math.min(start + content, n);
    ranges.push([start, stop]);
    if (stop === n) break;
  }
  return ranges;
}

/**
 * Every text as windows of at most `maxLength` tokens (the model maximum by default) sharing
 * `stride` content tokens. Returns {texts, encoded (one entry per window, as TextTokenizer.encode
 * gives, a text's windows in order), placements [{text, source, target, fresh}], mergedLengths
 * (rows per text once merged), split (indices of the texts cut into several windows), stride}.
 */
export function split(tokenizer, texts, maxLength, stride) {
  const limit = tokenizer.checkLimit(maxLength);
  const content = limit - tokenizer.specials;
  if (content < 1) throw new InputError(`maxLength ${limit} leaves no room for text besides the ${tokenizer.specials} special tokens`);
  stride = checkStride(stride, content);
  const encoded = { texts: [], ids: [], typeIds: [], fullLengths: [], limit };
  const placements = [];
  const mergedLengths = [];
  const split = [];
  tokenizer.rawIds(texts).forEach((raw, text) => {
    const whole = tokenizer.postProcess(raw);
    const lead = whole.content.length ? whole.content[0] : whole.ids.length;
    const ranges = windowRanges(raw.length, content, stride);
    if (ranges.length > 1) split.push(text);
    ranges.forEach(([start, stop], k) => {
      const part = tokenizer.postProcess(raw.slice(start, stop));
      const all = part.ids.map((_, i) => i);
      let source = all;
      let target = all;
      if (ranges.length > 1) {
        const first = part.content[0];
        const last = part.content[part.content.length - 1];
        source = [...part.content];
        target = source.map((_, i) => lead + start + i);
        if (k === 0) [source, target] = [[...all.slice(0, first), ...source], [...all.slice(0, lead), ...target]]; // leading specials
        if (k === ranges.length - 1) {
          const tail = all.slice(last + 1);
          [source, target] = [[...source, ...tail], [...target, ...tail.map((_, i) => lead + raw.length + i)]]; // closing specials
        }
      }
      if (source.length !== target.length || source.some((row, i) => part.ids[row] !== whole.ids[target[i]])) {
        throw new LayerwiseError(`window ${k} of text ${text} does not line up with the whole text; please report this`);
      }
      placements.push({ text, source, target, fresh: stop - start - (k ? stride : 0) });
      encoded.texts.push(texts[text]);
      encoded.ids.push(part.ids);
      encoded.typeIds.push(part.typeIds);
      encoded.fullLengths.push(part.ids.length);
    });
    mergedLengths.push(whole.ids.length);
  });
  return { texts, encoded, placements, mergedLengths, split, stride };
}

/** What the batches must return for `pool`: per-token rows when a split text needs them merged first. */
export const runPool = (windows, pool) => (pool === "none" || pool === "cls" || !windows.split.length ? pool : "none");

/**
 * Batch results per window (as `runPool` asked: Float32Array [layers, hidden] pooled, or
 * [layers, rows, hidden] per token) -> the same per text, windows merged.
 */
export function merge(windows, perWindow, pool, layers, hidden) {
  if (!windows.split.length) return perWindow; // one window per text, in order
  if (pool === "cls") return mergeCls(windows, perWindow);
  const tokens = mergeTokens(windows, perWindow, layers, hidden);
  return pool === "none" ? tokens : tokens.map((t) => poolRows(t, pool, layers, hidden));
}

/** Per window [layers, rows, hidden] -> per text [layers, merged rows, hidden], overlaps averaged. */
export function mergeTokens(windows, perWindow, layers, hidden) {
  const sums = windows.mergedLengths.map((rows) => new Float64Array(layers * rows * hidden));
  const counts = windows.mergedLengths.map((rows) => new Int32Array(rows));
  windows.placements.forEach(({ text, source, target }, w) => {
    const states = perWindow[w];
    const rows = states.length / (layers * hidden);
    const merged = windows.mergedLengths[text];
    for (let j = 0; j < layers; j++) {
      source.forEach((s, i) => {
        const from = (j * rows + s) * hidden;
        const to = (j * merged + target[i]) * hidden;
        for (let h = 0; h < hidden; h++) sums[text][to + h] += states[from + h];
      });
    }
    for (const t of target) counts[text][t] += 1;
  });
  return sums.map((sum, text) => {
    const rows = windows.mergedLengths[text];
    const out = new Float32Array(sum.length);
    for (let i = 0; i < sum.length; i++) out[i] = sum[i] / counts[text][Math.floor(i / hidden) % rows];
    return out;
  });
}

/** Per window first-token vectors [layers, hidden] -> per text, weighted by each window's fresh tokens. */
export function mergeCls(windows, perWindow) {
  const size = perWindow[0].length;
  return windows.mergedLengths.map((_, text) => {
    const mine = windows.placements.flatMap((p, w) => (p.text === text ? [w] : []));
    if (mine.length === 1) return perWindow[mine[0]];
    const total = mine.reduce((n, w) => n + windows.placements[w].fresh, 0);
    const sum = new Float64Array(size);
    for (const w of mine) {
      const weight = windows.placements[w].fresh / total;
      for (let i = 0; i < size; i++) sum[i] += weight * perWindow[w][i];
    }
    return Float32Array.from(sum);
  });
}

/** [layers, rows, hidden] -> [layers, hidden]: the mean or max over rows. */
function poolRows(states, pool, layers, hidden) {
  const rows = states.length / (layers * hidden);
  const out = new Float32Array(layers * hidden);
  for (let j = 0; j < layers; j++) {
    for (let h = 0; h < hidden; h++) {
      let acc = pool === "max" ? -Infinity : 0;
      for (let r = 0; r < rows; r++) {
        const v = states[(j * rows + r) * hidden + h];
        acc = pool === "max" ? Math.max(acc, v) : acc + v;
      }
      out[j * hidden + h] = pool === "max" ? acc : acc / rows;
    }
  }
  return out;
}
