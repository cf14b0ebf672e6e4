/** Shared by the tests: the bundle under test, real texts, and reference vectors from the Python runtime. */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ERROR_CASES, MAXSIM_TOLERANCE, SCORE_CASES, SCORE_TOLERANCE } from "./score_cases.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "../..");

/** The MiniLM bundle exported by the caller (pytest's fixture or `make test-js`). */
export function bundleDir() {
  const dir = process.env.LAYERWISE_BUNDLE;
  if (!dir || !existsSync(path.join(dir, "manifest.json"))) {
    throw new Error(
      "set LAYERWISE_BUNDLE to a bundle of the real MiniLM with fp32, fused and int8 " +
        "(`make test-js` exports one to bundles/all-MiniLM-L6-v2; `make test` runs these tests through pytest)",
    );
  }
  return path.resolve(dir);
}

export const PYTHON = process.env.LAYERWISE_PYTHON ?? path.join(REPO, ".venv/bin/python");

/** Real text with the hard cases of tokenization, of mixed lengths; one is longer than MiniLM's 512 tokens. */
export const TEXTS = [
  "The quick brown fox jumps over the lazy dog.",
  "Café crème brûlée, naïve façade: accents are stripped by the uncased tokenizer.",
  "東京は日本の首都です。北京是中国的首都。",
  "I love 🍕 and 🎉 at the end of the week!",
  "control\tcharacters\u0007 and\u200bzero-width spaces",
  "[CLS] literal special tokens [SEP] inside [MASK] text",
  "",
  "A",
  "Layer-wise embeddings let a probe read syntax from the middle layers and semantics from the last ones.",
  "Python's garbage collector frees reference cycles that reference counting alone cannot reclaim. ".repeat(45),
  "Short one.",
  "Transformers' hidden_states tuple holds the embedding output followed by the output of every encoder layer.",
];

/**
 * Reference results of the Python runtime for `cases`, cached per spec (both test files share one
 * run) on `bundle` (the MiniLM bundle unless given); with `windows` ([{maxLength, stride}]), also the windows runtime/windows.py cuts `texts` into;
 * `extra` adds fields to the spec (python_reference.py lists them).
 */
export function pythonReference(cases, texts = TEXTS, windows = [], bundle = bundleDir(), extra = {}) {
  const spec = { bundle, texts, cases, threads: 1, windows, ...extra };
  const helper = path.join(here, "python_reference.py");
  const key = createHash("sha256")
    .update(JSON.stringify(spec))
    .update(readFileSync(path.join(bundle, "manifest.json")))
    .update(readFileSync(helper))
    .digest("hex")
    .slice(0, 16);
  const out = path.join(tmpdir(), `layerwise-js-reference-${key}.json`);
  if (!existsSync(out)) {
    const specPath = path.join(mkdtempSync(path.join(tmpdir(), "layerwise-js-")), "spec.json");
    writeFileSync(specPath, JSON.stringify(spec));
    execFileSync(PYTHON, [helper, specPath, out + ".part"], { stdio: ["ignore", "inherit", "inherit"] });
    execFileSync("mv", [out + ".part", out]);
  }
  const data = JSON.parse(readFileSync(out, "utf8"));
  return { ...data, cases: data.cases.map((c) => ({ ...c, result: decode(c.result) })) };
}

let longTexts;
/**
 * The long texts of the Python overflow tests (tests/test_long_texts.py), from the Python side:
 * {long: ~2,100 tokens of CPython's docs, atLimit: 512 tokens, overLimit: 513, short: ~100 tokens}.
 */
export function pythonLongTexts() {
  longTexts ??= JSON.parse(execFileSync(PYTHON, [path.join(here, "python_reference.py"), "long-texts", bundleDir()], { encoding: "utf8" }));
  return longTexts;
}

/** Packed results (base64 float32 little-endian) -> {dims, data: Float32Array}, wherever they sit in lists and
 * objects (per-token lists, a score's fields); anything else as it is. Small buffers from Buffer.from share
 * Node's pool, so only the decoded bytes are copied, not the pool around them. */
export function decode(r) {
  if (Array.isArray(r)) return r.map(decode);
  if (r === null || typeof r !== "object") return r;
  if (typeof r.data !== "string" || !Array.isArray(r.dims)) return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, decode(v)]));
  const bytes = Buffer.from(r.data, "base64");
  return { dims: r.dims, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity; // a shorter or longer result is no match
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return Number.isNaN(worst) ? Infinity : worst;
}

export function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) (ab += a[i] * b[i]), (aa += a[i] * a[i]), (bb += b[i] * b[i]);
  return ab / Math.max(Math.sqrt(aa * bb), 1e-30);
}

/** Per layer, the min and mean cosine over texts of pooled [texts, layers, hidden] results. */
export function pooledCosines(got, want) {
  const [texts, layers, hidden] = want.dims;
  return [...Array(layers).keys()].map((j) => {
    const cos = [...Array(texts).keys()].map((i) => {
      const at = (i * layers + j) * hidden;
      return cosine(got.data.subarray(at, at + hidden), want.data.subarray(at, at + hidden));
    });
    return { layer: j, min: Math.min(...cos), mean: cos.reduce((s, c) => s + c, 0) / cos.length };
  });
}

/** float32 values whose numpy str() the baseline digest depends on: both notations and their edges (not -0: JSON sends it as 0). */
export const FLOAT32_STRINGS = [0, 1, 0.1, 1e-5, 1.5e-5, 1e-4, 0.0001234, 123456, 1e16, 3.4e38, 0.83012, -0.25, 2 ** -149, 1 / 3, 0.58341];

/** The Python runtime's results for SCORE_CASES, then ERROR_CASES (one run, shared by the Node and browser tests). */
export const scoreReference = () => pythonReference([...SCORE_CASES, ...ERROR_CASES.map(([c]) => c)], TEXTS, [], bundleDir(), { float32Strings: FLOAT32_STRINGS });

/** Every field of a JS score (runScoreCase) against Python's: numbers within the tolerance, the rest equal; `worst` collects the largest differences. */
export function assertScoreEqual(got, want, c, worst) {
  if (c.method === "bertscore") {
    for (const key of ["precision", "recall", "f1"]) {
      const diff = maxAbsDiff(Float32Array.from(got[key]), want[key].data);
      worst.bertscore = Math.max(worst.bertscore, diff);
      assert.ok(diff <= SCORE_TOLERANCE, `${key}: max abs difference ${diff}`);
    }
    assert.deepEqual(got.dims, want.precision.dims);
    const { seconds, ...stats } = got.stats;
    assert.deepEqual(
      { layers: got.layers, cutCands: got.truncatedCandidates, cutRefs: got.truncatedReferences, stats },
      { layers: want.layers, cutCands: want.truncatedCandidates, cutRefs: want.truncatedReferences, stats: want.stats },
    );
    return;
  }
  const scale = Float32Array.from(want.scores.data, (s) => Math.max(1, Math.abs(s)));
  const diff = Math.max(...Array.from(got.scores, (s, i) => Math.abs(s - want.scores.data[i]) / scale[i]));
  worst.maxsim = Math.max(worst.maxsim, diff);
  assert.ok(diff <= MAXSIM_TOLERANCE, `scores: max relative difference ${diff}`);
  assert.deepEqual([got.layers, got.queryTokens], [want.layers, want.queryTokens]);
  assert.equal(got.matches === null, want.matches === null);
  (want.matches ?? []).forEach((m, i) => {
    assert.deepEqual([got.matches[i].positions, got.matches[i].tokens], [m.positions, m.tokens], `document ${i}`);
    assert.ok(maxAbsDiff(Float32Array.from(got.matches[i].similarities), m.similarities.data) <= MAXSIM_TOLERANCE * Math.max(...scale), `document ${i}`);
  });
}

