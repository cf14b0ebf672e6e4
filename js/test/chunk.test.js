/**
 * Long texts as windows (overflow "chunk"): the same windows as the Python runtime (Rust
 * tokenizers' stride truncation), the same merge, the same vectors within 1e-4 on a real
 * document of ~2,100 tokens, and the same checks of overflow and stride.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { load } from "../src/node.js";
import { checkStride, split } from "../src/windows.js";
import { INT8_BAR, TOLERANCE, chunkCases, runCase } from "./cases.js";
import { bundleDir, maxAbsDiff, pooledCosines, pythonLongTexts, pythonReference, TEXTS } from "./helpers.js";

const long = pythonLongTexts();
const { texts, cases, windows } = chunkCases(long, TEXTS);
const STATS = ["texts", "tokens", "paddedTokens", "batches", "split", "windows"];
let reference, fp32, int8;

before(async () => {
  reference = pythonReference(cases, texts, windows);
  fp32 = await load(bundleDir(), { variant: "fp32", threads: 2 });
  int8 = await load(bundleDir(), { variant: "int8", threads: 2 });
});

after(async () => {
  await fp32.close();
  await int8.close();
});

test("the long texts are what the Python tests use: 2,103 tokens, 512, 513", () => {
  const lengths = fp32._tokenizer.encode([long.long, long.atLimit, long.overLimit], 512, true).fullLengths;
  assert.deepEqual(lengths, [2103, 512, 513]); // tokens 0..2100 of the document and [CLS], [SEP]
});

describe("the windows are Python's: same ids, rows merged, cls weights", () => {
  windows.forEach((w, index) => {
    test(JSON.stringify(w), () => {
      const got = split(fp32._tokenizer, texts, w.maxLength ?? null, w.stride ?? null);
      const want = reference.windows[index];
      assert.equal(got.stride, want.stride);
      assert.deepEqual(got.split, want.split);
      assert.deepEqual(got.mergedLengths, want.mergedLengths);
      assert.deepEqual(got.encoded.ids, want.ids);
      assert.deepEqual(got.encoded.typeIds, want.typeIds);
      assert.deepEqual(got.placements, want.placements);
    });
  });
});

test("the default stride is min(128, half a window)", () => {
  assert.deepEqual([510, 62, 1].map((content) => checkStride(null, content)), [128, 31, 0]);
});

describe("chunked fp32 equals the Python runtime's overflow=\"chunk\" within 1e-4, with the same stats", () => {
  cases.forEach((c, index) => {
    const own = c.texts ? ` on ${c.texts.length} text(s) of ${c.texts.map((t) => t.length).join(", ")} characters` : "";
    test(`${c.method} ${JSON.stringify(c.options)}${own}`, async () => {
      const got = await runCase(fp32, c, c.texts ?? texts);
      const { result: want, stats } = reference.cases[index];
      assert.deepEqual(Object.fromEntries(STATS.map((k) => [k, fp32.lastStats[k]])), stats);
      for (const [i, [g, w]] of (c.method === "embed" ? [[got, want]] : got.map((g, i) => [g, want[i]])).entries()) {
        assert.deepEqual(g.dims, w.dims, `text ${i}`);
        assert.ok(maxAbsDiff(g.data, w.data) <= TOLERANCE, `text ${i}: max abs difference ${maxAbsDiff(g.data, w.data)}`);
      }
      if (c.method === "embed") assert.deepEqual(got.truncated, []);
    });
  });
});

test("int8 chunked meets the int8 bar against the Python runtime's fp32 chunked at every layer", async () => {
  const index = cases.findIndex((c) => c.method === "embed" && c.options.pool === "mean" && !c.texts);
  const got = await runCase(int8, cases[index], texts);
  for (const row of pooledCosines(got, reference.cases[index].result)) {
    assert.ok(row.mean >= INT8_BAR.mean && row.min >= INT8_BAR.min, `layer ${row.layer}: cosine mean ${row.mean}, min ${row.min}`);
  }
});

test("a text exactly at the limit stays one window (as without chunk); one token over splits into two", async () => {
  const whole = await fp32.embed(long.atLimit, { layers: [0, -1], overflow: "chunk" });
  assert.deepEqual([fp32.lastStats.split, fp32.lastStats.windows], [0, 1]);
  assert.deepEqual(whole.data, (await fp32.embed(long.atLimit, { layers: [0, -1] })).data);
  await fp32.embedTokens(long.overLimit, { layers: -1, overflow: "chunk" });
  assert.deepEqual([fp32.lastStats.split, fp32.lastStats.windows], [1, 2]);
});

test("windows of several texts share the length-sorted batches (no per-text loop)", async () => {
  await fp32.embed([long.short, long.short.slice(200), long.short], { layers: 0, maxLength: 32, stride: 0, overflow: "chunk" });
  const { windows: count, batches, split: cut } = fp32.lastStats;
  assert.deepEqual([cut, batches], [3, 1], `${count} windows of at most 32 tokens, 512 padded tokens a batch`);
  assert.ok(count >= 6 && count <= 16, `${count} windows`);
});

const STRIDE = "InputError: stride must be an integer from 0 to 61 (windows hold 62 tokens besides the special ones, and consecutive windows must advance), got";
const ERRORS = [
  ...[-1, 62, 100, 1.5, true, "8"].map((stride) => [{ maxLength: 64, overflow: "chunk", stride }, `${STRIDE} ${JSON.stringify(stride)}; pass a smaller stride or a larger maxLength`]),
  [{ stride: 8 }, 'InputError: stride applies to overflow: "chunk" only: pass overflow: "chunk" with it'],
  [{ overflow: "truncate", stride: 8 }, 'InputError: stride applies to overflow: "chunk" only, not overflow: "truncate"'],
  [{ overflow: "chunk", truncate: true }, "InputError: pass overflow or truncate, not both (overflow: 'truncate' is truncate: true, 'error' is truncate: false)"],
  [{ overflow: "split" }, "InputError: overflow must be one of 'truncate', 'error', 'chunk', got \"split\""],
  [{ overflow: "chunk", maxLength: 2 }, "InputError: maxLength 2 leaves no room for text besides the 2 special tokens"],
  [{ overflow: "chunk", maxLength: 513 }, "InputError: maxLength must be an integer from 2 to the model maximum 512, got 513"],
  [{ overflow: "error", maxLength: 64 }, /^InputError: text 0 has \d+ tokens, more than maxLength 64 \(1 text\(s\) too long\)/],
];
for (const [options, message] of ERRORS) {
  test(`embed(${JSON.stringify(options)}) says: ${message}`, async () => {
    const check = (e) => (message instanceof RegExp ? assert.match(`${e}`, message) : assert.equal(`${e}`, message), true);
    await assert.rejects(fp32.embed(long.short, options), check);
    await assert.rejects(fp32.embedTokens(long.short, options), check);
  });
}

test('overflow "truncate" is truncate: true, and "chunk" leaves short texts as they were', async () => {
  const cut = await fp32.embed(long.short, { layers: -1, maxLength: 64, overflow: "truncate" });
  assert.deepEqual(cut.data, (await fp32.embed(long.short, { layers: -1, maxLength: 64, truncate: true })).data);
  assert.deepEqual(cut.truncated, [0]);
  const short = await fp32.embed(["Short one.", "A"], { layers: -1, overflow: "chunk" });
  assert.ok(maxAbsDiff(short.data, (await fp32.embed(["Short one.", "A"], { layers: -1 })).data) <= 1e-6);
});
