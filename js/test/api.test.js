/** The Node API: defaults, errors that name the fix, batches equal singles, cut graphs. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { load } from "../src/node.js";
import { bundleDir, maxAbsDiff, TEXTS } from "./helpers.js";

let enc;
before(async () => (enc = await load(bundleDir(), { variant: "fp32", threads: 2 })));
after(() => enc.close());

test("without a variant the CPU's best is chosen (int8), and info says what was loaded", async () => {
  const auto = await load(bundleDir(), { threads: 1 });
  assert.deepEqual(
    { variant: auto.info.variant, numLayers: auto.info.numLayers, hiddenSize: auto.info.hiddenSize, maxLength: auto.info.maxLength, threads: auto.info.threads },
    { variant: "int8", numLayers: 6, hiddenSize: 384, maxLength: 512, threads: 1 },
  );
  assert.match(auto.info.backend, /^onnxruntime-node \S+ cpu$/);
  await auto.close();
});

test("the issue's example: every layer, mean-pooled, [2, 7, 384]", async () => {
  const out = await enc.embed(["a text", "another"], { layers: "all", pool: "mean", combine: null, normalize: false });
  assert.deepEqual(out.dims, [2, 7, 384]);
  assert.ok(out.data instanceof Float32Array && out.data.length === 2 * 7 * 384);
});

test("a batch gives each text what it gives alone", async () => {
  const batch = await enc.embed(TEXTS, { layers: [0, -1] });
  for (const [i, text] of TEXTS.entries()) {
    const single = await enc.embed([text], { layers: [0, -1] });
    assert.ok(maxAbsDiff(batch.data.subarray(i * 768, (i + 1) * 768), single.data) <= 1e-5, `text ${i}`);
  }
});

test("a request for layer k runs the graph cut after layer k", async () => {
  await enc.embed("cut me", { layers: [0, 2] });
  const cut = await enc.session(2);
  assert.deepEqual(cut.outputNames, ["hidden_state_0", "hidden_state_1", "hidden_state_2"]);
});

test("per-token output has no padding rows", async () => {
  const out = await enc.embedTokens(["a", "a much longer text than the first one"], { layers: [-1] });
  assert.deepEqual(out.map((o) => o.dims), [[1, 3, 384], [1, 10, 384]]);
});

const ERRORS = [
  [{ layers: 7 }, "InputError: layer 7 does not exist: this model has hidden states 0..6 (0 is the embedding output), or -7..-1 counting from the end"],
  [{ pool: "none" }, "InputError: pool must be one of mean, max, cls, got \"none\": per-token output comes from embedTokens()"],
  [{ combine: "max" }, "InputError: combine must be one of null, 'concat', 'sum', 'mean', 'scalar_mix', got \"max\""],
  [
    { batch_size: 4 },
    "InputError: unknown option(s) batch_size; options are layers, pool, combine, normalize, batchSize, maxLength, truncate, overflow, stride, weights, gamma",
  ],
  [{ layers: "all", combine: "scalar_mix", weights: [1, 2] }, "InputError: weights has 2 numbers but 7 layers are chosen: give one weight per layer, in the order of layers"],
  [{ layers: [0, 1], combine: "scalar_mix", weights: [1, NaN] }, "InputError: weights must be a non-empty array of finite numbers, got [1,null]"],
  [{ layers: [0, 1], combine: "scalar_mix", weights: [] }, "InputError: weights must be a non-empty array of finite numbers, got []"],
  [{ layers: [0, 1], combine: "concat", gamma: 2 }, 'InputError: weights and gamma are the parameters of combine: "scalar_mix": pass it with them, or leave them out'],
  [{ maxLength: 1000 }, "InputError: maxLength must be an integer from 2 to the model maximum 512, got 1000"],
];
for (const [options, message] of ERRORS) {
  test(`embed(${JSON.stringify(options)}) says: ${message}`, async () => {
    await assert.rejects(enc.embed(["text"], options), (e) => (assert.equal(`${e}`, message), true));
  });
}

test("scalar_mix is gamma * softmax(weights) times each layer, summed: equal to the sum computed by hand from combine: null", async () => {
  const [layers, weights, gamma] = [[0, 3, -1], [0.5, -1, 2], 1.5];
  const each = await enc.embed(TEXTS, { layers });
  const mixed = await enc.embed(TEXTS, { layers, combine: "scalar_mix", weights, gamma });
  assert.deepEqual(mixed.dims, [TEXTS.length, 384]);
  const exp = weights.map(Math.exp);
  const factor = exp.map((e) => (gamma * e) / exp.reduce((a, b) => a + b));
  const byHand = mixed.data.map((_, at) => {
    const [i, h] = [Math.floor(at / 384), at % 384];
    return factor.reduce((s, f, j) => s + f * each.data[(i * 3 + j) * 384 + h], 0);
  });
  assert.ok(maxAbsDiff(mixed.data, byHand) <= 1e-5, `max abs difference ${maxAbsDiff(mixed.data, byHand)}`);
  const even = await enc.embed(TEXTS, { layers: [2, 5], combine: "scalar_mix", weights: [0, 0], gamma: 2 }); // weights (0, 0), gamma 2: the sum
  assert.ok(maxAbsDiff(even.data, (await enc.embed(TEXTS, { layers: [2, 5], combine: "sum" })).data) <= 1e-5);
});

test("embedTokens refuses a pool option, pointing to embed", async () => {
  await assert.rejects(enc.embedTokens(["text"], { pool: "mean" }), /^InputError: embedTokens takes no pool option: it returns every token; pooled vectors come from embed\(\)$/);
});

test("texts must be strings, by index", async () => {
  await assert.rejects(enc.embed(["ok", 3]), { name: "TypeError", message: "texts[1] must be a string, got number" });
});

test("the public surface is load, Encoder and the errors", async () => {
  const api = await import("../src/node.js");
  assert.deepEqual(Object.keys(api).sort(), ["BundleError", "Encoder", "InputError", "LayerwiseError", "NonFiniteOutputError", "load"]);
});

test("a variant the manifest records for CUDA only is refused, naming where it runs", async () => {
  const { chooseVariant } = await import("../src/manifest.js");
  const manifest = { variants: { fp16: { providers: ["cuda"] }, fused: { providers: ["cpu", "cuda"] } } };
  assert.equal(chooseVariant(manifest, null), "fused");
  assert.throws(() => chooseVariant(manifest, "fp16"), /^BundleError: the fp16 variant runs on cuda only \(as its manifest records\), not on the CPU or WebAssembly$/);
});
