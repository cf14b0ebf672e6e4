/** The Node package gives the Python runtime's vectors on the real MiniLM bundle, at every layer. */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { load } from "../src/node.js";
import { BATCH_TOKENS_CPU } from "../src/encoder.js";
import { FASTEST_FIRST, FORMAT_VERSION, FORMAT_VERSIONS, INPUT_ROLES, POOLING_KINDS, VARIANTS } from "../src/manifest.js";
import { COMBINES, OVERFLOWS } from "../src/options.js";
import { DEFAULT_STRIDE } from "../src/windows.js";
import { VERSION } from "../src/bertscore.js";
import { PUNCTUATION } from "../src/maxsim.js";
import { CASES, INT8_BAR, INT8_REFERENCE, TOLERANCE, runCase } from "./cases.js";
import { bundleDir, maxAbsDiff, pooledCosines, pythonReference, TEXTS } from "./helpers.js";

let reference;
const encoders = {};

before(async () => {
  reference = pythonReference(CASES);
  for (const variant of new Set(CASES.map((c) => c.variant))) encoders[variant] = await load(bundleDir(), { variant, threads: 2 });
});

after(async () => {
  for (const enc of Object.values(encoders)) await enc.close();
});

test("the tokenizer gives the Python runtime's ids, truncation included", () => {
  const ids = encoders.fp32._tokenizer.encode(TEXTS).ids;
  assert.deepEqual(ids, reference.ids);
});

test("the constants mirrored from the Python runtime are equal to it", () => {
  const c = reference.constants;
  assert.deepEqual(
    {
      ...{ FORMAT_VERSION, FORMAT_VERSIONS, VARIANTS, POOLING_KINDS, INPUT_ROLES, BATCH_TOKENS_CPU, COMBINES, FASTEST_FIRST, OVERFLOWS, DEFAULT_STRIDE },
      ...{ VERSION, PUNCTUATION },
    },
    c,
  );
});

describe("fp32 and fused equal the Python runtime within 1e-4", () => {
  CASES.forEach((c, index) => {
    if (c.variant === "int8") return;
    test(`${c.variant} ${c.method} ${JSON.stringify(c.options)}`, async () => {
      const got = await runCase(encoders[c.variant], c, TEXTS);
      const want = reference.cases[index].result;
      if (c.method === "embed") {
        assert.deepEqual(got.dims, want.dims);
        assert.ok(maxAbsDiff(got.data, want.data) <= TOLERANCE, `max abs difference ${maxAbsDiff(got.data, want.data)}`);
        assert.deepEqual(got.truncated, reference.cases[index].truncated);
      } else {
        assert.equal(got.length, want.length);
        got.forEach((g, i) => {
          assert.deepEqual(g.dims, want[i].dims, `text ${i}`);
          assert.ok(maxAbsDiff(g.data, want[i].data) <= TOLERANCE, `text ${i}: max abs difference ${maxAbsDiff(g.data, want[i].data)}`);
        });
      }
    });
  });
});

test("int8 meets the int8 bar against the Python runtime's fp32 at every layer", async () => {
  const c = CASES.find((x) => x.variant === "int8");
  const got = await runCase(encoders.int8, c, TEXTS);
  for (const row of pooledCosines(got, reference.cases[INT8_REFERENCE].result)) {
    assert.ok(row.mean >= INT8_BAR.mean && row.min >= INT8_BAR.min, `layer ${row.layer}: cosine mean ${row.mean}, min ${row.min}`);
  }
});

test("a text longer than the maximum is truncated and reported", async () => {
  const out = await encoders.fp32.embed(TEXTS, { layers: -1 });
  const long = TEXTS.findIndex((t) => t.length > 1000);
  assert.deepEqual(out.truncated, [long]);
  assert.deepEqual(encoders.fp32.lastStats.truncatedIndices, [long]);
  await assert.rejects(encoders.fp32.embed(TEXTS, { truncate: false }), new RegExp(`^InputError: text ${long} has \\d+ tokens, more than maxLength 512`));
});
