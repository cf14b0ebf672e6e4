/** Shared by the tests: the bundle under test, real texts, and reference vectors from the Python runtime. */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

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
 * run) on `bundle` (the MiniLM bundle unless given); with `windows` ([{maxLength, stride}]), also the windows runtime/windows.py cuts `texts` into.
 */
export function pythonReference(cases, texts = TEXTS, windows = [], bundle = bundleDir()) {
  const spec = { bundle, texts, cases, threads: 1, windows };
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

/** Packed results (base64 float32 little-endian) -> {dims, data: Float32Array}, per-token lists included. Small
 * buffers from Buffer.from share Node's pool, so only the decoded bytes are copied, not the pool around them. */
export function decode(r) {
  if (Array.isArray(r)) return r.map(decode);
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
