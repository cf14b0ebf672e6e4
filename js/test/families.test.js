/**
 * Other encoder families in JS: a RoBERTa-style bundle (no token types, byte-level BPE) and an
 * XLM-R-style one (Unigram) give the Python runtime's vectors in Node and in headless Chromium, and in
 * Node its BERTScore (RoBERTa's leading space, <s> and </s> weighed 0) and MaxSim (punctuation ids of these tokenizers).
 * The bundles come from LAYERWISE_FAMILY_BUNDLES, a JSON object {label: bundle folder}
 * (tests/test_js_package.py exports small random ones and sets it).
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";
import { parseManifest } from "../src/manifest.js";
import { load } from "../src/node.js";
import { CHROMIUM, serve } from "./browser_page.js";
import { TOLERANCE, runCase } from "./cases.js";
import { assertScoreEqual, decode, maxAbsDiff, pythonReference, TEXTS } from "./helpers.js";
import { CANDIDATES, DOCUMENTS, REFERENCE_LISTS, runScoreCase } from "./score_cases.js";

const BUNDLES = JSON.parse(process.env.LAYERWISE_FAMILY_BUNDLES ?? "{}");
const SKIP = Object.keys(BUNDLES).length ? false : "set LAYERWISE_FAMILY_BUNDLES to {label: bundle} (tests/test_js_package.py does)";
const CASES = [
  { variant: "fused", method: "embed", options: { layers: "all", pool: "mean" } },
  { variant: "fused", method: "embed", options: { layers: "all", pool: "cls", maxLength: 16 } },
  { variant: "fused", method: "embed_tokens", options: { layers: [0, -1] } },
  { variant: "fused", method: "embed", options: { layers: "all", pool: "mean", overflow: "chunk", stride: 16 } },
];
const SCORES = [
  { variant: "fused", method: "bertscore", candidates: CANDIDATES, references: REFERENCE_LISTS, options: { layers: [1, -1], idf: true } },
  { variant: "fused", method: "maxsim", query: "A cat! On a mat?", documents: DOCUMENTS, options: { layers: -1, returnMatches: true } },
];

function assertClose(got, want, what) {
  for (const [g, w] of Array.isArray(want) ? want.map((w, k) => [got[k], w]) : [[got, want]]) {
    assert.deepEqual(g.dims, w.dims, what);
    assert.ok(maxAbsDiff(g.data, w.data) <= TOLERANCE, `${what}: max abs difference ${maxAbsDiff(g.data, w.data)}`);
  }
}

/** The smallest manifest parseManifest accepts, with `extra` fields on top. */
function manifest(extra) {
  const file = { path: "f", bytes: 1, sha256: "0".repeat(64) };
  return {
    format: "layerwise-bundle", format_version: 1, tokenizer: file,
    model: { model_type: "roberta", num_layers: 1, hidden_size: 8, max_length: 16, pad_token_id: 1 },
    variants: { fp32: { providers: ["cpu"], graph: file } }, pooling_graphs: { mean: file, max: file, cls: file }, ...extra,
  }; // prettier-ignore
}

test("the manifest's inputs are read as Python reads them; version 1 without them means BERT's three", () => {
  const two = [{ name: "input_ids", role: "ids" }, { name: "attention_mask", role: "mask" }];
  assert.deepEqual(parseManifest(manifest({ format_version: 2, inputs: two })).inputs, two);
  assert.deepEqual(parseManifest(manifest({})).inputs.map((i) => i.role), ["ids", "mask", "type_ids"]);
  assert.throws(() => parseManifest(manifest({ format_version: 2 })), /manifest format version 2 must list the graph 'inputs'/);
  assert.throws(() => parseManifest(manifest({ inputs: [two[0], { name: "m", role: "position" }] })), /inputs\[1\]\.role "position" is unknown; roles: ids, mask, type_ids/);
  assert.throws(() => parseManifest(manifest({ inputs: [two[0]] })), /must name each input and role once and include roles ids, mask/);
  assert.throws(() => parseManifest(manifest({ format_version: 3, inputs: two })), /bundle format version 3 is not supported by this layerwise \(it reads versions 1, 2\)/);
});

let browser;
before(async () => {
  if (!SKIP) browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
});
after(async () => browser?.close());

for (const [label, bundle] of Object.entries(BUNDLES).length ? Object.entries(BUNDLES) : [["(none)", null]]) {
  test(`${label}: Node gives the Python runtime's ids and vectors`, { skip: SKIP }, async () => {
    const reference = pythonReference([...CASES, ...SCORES], TEXTS, [], bundle);
    const enc = await load(bundle, { variant: "fused", threads: 2 });
    try {
      assert.deepEqual(enc._tokenizer.encode(TEXTS).ids, reference.ids);
      for (const [i, c] of CASES.entries()) assertClose(await runCase(enc, c, TEXTS), reference.cases[i].result, `${label} ${JSON.stringify(c.options)}`);
      for (const [i, c] of SCORES.entries()) {
        const [got, want] = [await runScoreCase(enc, c), reference.cases[CASES.length + i].result];
        assertScoreEqual(got, want, c, { bertscore: 0, maxsim: 0 });
        if (c.method === "bertscore") assert.equal(got.hash, want.hash);
      }
    } finally {
      await enc.close();
    }
  });

  test(`${label}: Chromium gives the Python runtime's vectors`, { skip: SKIP }, async () => {
    const reference = pythonReference([...CASES, ...SCORES], TEXTS, [], bundle);
    const server = await serve(bundle);
    const context = await browser.createBrowserContext();
    try {
      const page = await context.newPage();
      page.on("pageerror", (e) => console.error("page error:", e));
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      await page.waitForFunction("window.ready === true");
      const run = await page.evaluate((c, texts) => window.runCases("fused", c, texts), CASES, TEXTS);
      assert.match(run.info.backend, /^onnxruntime-web .* wasm$/);
      run.results.forEach((r, i) => assertClose(decode(r), reference.cases[i].result, `${label} in Chromium ${JSON.stringify(CASES[i].options)}`));
    } finally {
      await context.close();
      server.close();
    }
  });
}
