/**
 * BERTScore and MaxSim in Node give the Python runtime's numbers on the real MiniLM bundle (the
 * Python side computed at test time by python_reference.py), with its hash, its truncation report,
 * its chunk plan (the same texts embedded in the same chunks) and its error messages.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { float32String, parseBaseline } from "../src/baseline.js";
import { load } from "../src/node.js";
import { assertScoreEqual, bundleDir, FLOAT32_STRINGS, maxAbsDiff, scoreReference } from "./helpers.js";
import {
  BASELINE, CANDIDATES, DOCUMENTS, ERROR_CASES, MAXSIM_TOLERANCE, REFERENCE_LISTS, respell, runScoreCase, SCORE_CASES, SCORE_TOLERANCE,
} from "./score_cases.js";

let reference;
const encoders = {};
const worst = { bertscore: 0, maxsim: 0 };

before(async () => {
  reference = scoreReference();
  for (const variant of ["fp32", "fused"]) encoders[variant] = await load(bundleDir(), { variant, threads: 2 });
});

after(async () => {
  console.log(`# largest differences from Python in Node: P/R/F1 ${worst.bertscore.toExponential(2)}, MaxSim (relative) ${worst.maxsim.toExponential(2)}`);
  for (const enc of Object.values(encoders)) await enc.close();
});

describe(`BERTScore and MaxSim equal the Python runtime's (P/R/F1 within ${SCORE_TOLERANCE}, MaxSim within ${MAXSIM_TOLERANCE} relative)`, () => {
  SCORE_CASES.forEach((c, index) => {
    test(`${c.variant} ${c.method} ${JSON.stringify(c.options).slice(0, 90)}`, async () => {
      const got = await runScoreCase(encoders[c.variant], c);
      const want = reference.cases[index].result;
      assertScoreEqual(got, want, c, worst);
      if (c.method === "bertscore") assert.equal(got.hash, want.hash);
    });
  });
});

describe("errors say what Python says", () => {
  ERROR_CASES.forEach(([c, expected], k) => {
    test(`${c.method}(${JSON.stringify(c.options)}) ${expected === "same" || expected === "spelled" ? `${expected} as Python` : expected}`, async () => {
      const want = reference.cases[SCORE_CASES.length + k].result;
      assert.equal(want.type, "InputError", `Python raised ${want.type}: ${want.error}`);
      const message = expected === "same" ? `InputError: ${want.error}` : expected === "spelled" ? `InputError: ${respell(want.error)}` : expected;
      const enc = encoders.fp32;
      const call = c.method === "embed" ? enc.embed(c.texts, c.options) : c.method === "embed_tokens" ? enc.embedTokens(c.texts, c.options) : runScoreCase(enc, c);
      await assert.rejects(call, (e) => (assert.equal(`${e}`, message), true));
    });
  });
});

test("float32 values print as numpy prints them (what the baseline digest in a hash reads)", () => {
  assert.deepEqual(FLOAT32_STRINGS.map(float32String), reference.float32Strings);
});

test("all layers in one pass equal one call per layer, and chunks of any size give the same numbers", async () => {
  const enc = encoders.fp32;
  const all = await enc.bertscore(CANDIDATES, REFERENCE_LISTS, { layers: "all", idf: true });
  // each distinct text once, except the two no live pair needs: "" ("" and "   " stripped) and the empty candidate's other reference
  assert.deepEqual([all.stats.uniqueTexts, all.stats.embeddedTexts], [17, 15]);
  for (const layer of [0, 3, 6]) {
    const calls = [];
    const progress = (done, total) => calls.push([done, total]);
    const one = await enc.bertscore(CANDIDATES, REFERENCE_LISTS, { layers: layer, idf: true, chunkTokens: 50, progress });
    assert.deepEqual([calls.length, calls.at(-1)], [one.stats.chunks, [14, 14]]); // after each chunk: the 14 pairs with text on both sides
    const row = (s) => all[s].slice(layer * CANDIDATES.length, (layer + 1) * CANDIDATES.length);
    for (const key of ["precision", "recall", "f1"]) assert.ok(maxAbsDiff(one[key], row(key)) <= 1e-6, `layer ${layer} ${key}`);
    assert.ok(one.stats.chunks > 1);
  }
});

test("a baseline rescales (s - b) / (1 - b) with its layer's row, and is named in the hash", async () => {
  const enc = encoders.fp32;
  const plain = await enc.bertscore(CANDIDATES, CANDIDATES, { layers: [2, -1] });
  const scaled = await enc.bertscore(CANDIDATES, CANDIDATES, { layers: [2, -1], baseline: BASELINE });
  const b = parseBaseline(BASELINE).values;
  plain.f1.forEach((f, i) => {
    const layer = [2, 6][Math.floor(i / CANDIDATES.length)];
    assert.ok(Math.abs(scaled.f1[i] - (f - b[layer * 3 + 2]) / (1 - b[layer * 3 + 2])) <= 1e-6);
  });
  assert.match(scaled.hash, new RegExp(`^${plain.hash.replace(/[()]/g, "\\$&")}-rescaled\\(baseline=[0-9a-f]{16}\\)$`));
});

test("MaxSim: a document's punctuation is never a match, and the query's own text matches itself best", async () => {
  const m = await encoders.fp32.maxsim(DOCUMENTS[3], DOCUMENTS, { returnMatches: true });
  assert.equal(Math.max(...m.scores), m.scores[3]);
  for (const match of m.matches) for (const token of match.tokens) assert.doesNotMatch(token, /^[!-/:-@[-`{-~]$/);
});
