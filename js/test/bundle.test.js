/** Bundle verification as in Python: format version, sizes and sha256 of every file, paths that stay inside. */

import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { load } from "../src/node.js";
import { bundleDir } from "./helpers.js";

const made = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const sha = (bytes) => createHash("sha256").update(bytes).digest("hex");
const entry = (name, bytes) => ({ path: name, bytes: bytes.length, sha256: sha(bytes) });

/** A copy of the real bundle's manifest and tokenizer (plus `copy` files), then `edit(manifest, folder)`. */
function bundleCopy(edit, copy = []) {
  const real = bundleDir();
  const dir = mkdtempSync(path.join(tmpdir(), "layerwise-bundle-"));
  made.push(dir);
  for (const name of ["tokenizer.json", "pool.mean.onnx", "pool.max.onnx", "pool.cls.onnx", ...copy]) copyFileSync(path.join(real, name), path.join(dir, name));
  const manifest = JSON.parse(readFileSync(path.join(real, "manifest.json"), "utf8"));
  edit(manifest, dir);
  writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}

/** Protobuf bytes of an ONNX model whose one initializer keeps its data at `location`. */
function modelWithExternalData(location) {
  const varint = (n) => (n < 128 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >> 7)]);
  const field = (number, payload) => Uint8Array.from([...varint((number << 3) | 2), ...varint(payload.length), ...payload]);
  const text = (s) => [...new TextEncoder().encode(s)];
  const external = (key, value) => [...field(13, [...field(1, text(key)), ...field(2, text(value))])];
  const tensor = [...field(8, text("weight")), ...external("location", location), ...external("length", "4"), 14 << 3, 1];
  return field(7, field(5, tensor));
}

test("a bundle of another format version is refused, naming both versions", async () => {
  const dir = bundleCopy((m) => (m.format_version = 3));
  await assert.rejects(load(dir), /^BundleError: bundle format version 3 is not supported by this layerwise \(it reads versions 1, 2\)/);
});

test("a tokenizer changed after export fails its sha256 check", async () => {
  const dir = bundleCopy(() => {});
  const file = path.join(dir, "tokenizer.json");
  const text = readFileSync(file, "utf8");
  writeFileSync(file, text.replace('"[UNK]"', '"[UNX]"'));
  await assert.rejects(load(dir, { variant: "int8" }), /^BundleError: tokenizer 'tokenizer.json' does not match the sha256 in the manifest/);
});

test("a truncated graph fails its size check", async () => {
  const dir = bundleCopy(() => {}, ["model.int8.onnx"]);
  const file = path.join(dir, "model.int8.onnx");
  writeFileSync(file, readFileSync(file).subarray(0, 1000));
  await assert.rejects(load(dir, { variant: "int8" }), /^BundleError: variant 'int8' graph 'model.int8.onnx' has 1000 bytes but the manifest records \d+/);
});

test("a manifest path leading out of the bundle is refused before anything is read", async () => {
  const dir = bundleCopy((m) => (m.variants.int8.graph.path = "../model.int8.onnx"));
  await assert.rejects(load(dir, { variant: "int8" }), /^BundleError: variant 'int8' graph refers to '..\/model.int8.onnx', which is outside the bundle folder/);
});

test("a symbolic link leading out of the bundle is refused", async () => {
  const dir = bundleCopy(() => {});
  symlinkSync(path.join(bundleDir(), "model.int8.onnx"), path.join(dir, "model.int8.onnx"));
  await assert.rejects(load(dir, { variant: "int8" }), /which resolves to .* outside the bundle folder \(a symbolic link\?\)/);
});

for (const [location, message] of [
  ["../secret.bin", /external data refers to '..\/secret.bin', which is outside the bundle folder/],
  ["weights.bin", /refers to external data 'weights.bin' that the manifest does not list; refusing to load unverified weights/],
]) {
  test(`a graph whose external data is at ${location} is refused`, async () => {
    const graph = modelWithExternalData(location);
    const dir = bundleCopy((m, folder) => {
      writeFileSync(path.join(folder, "model.fp32.onnx"), graph);
      m.variants = { fp32: { graph: entry("model.fp32.onnx", graph), providers: ["cpu", "cuda"] } };
    });
    await assert.rejects(load(dir), message);
  });
}

test("a variant the bundle lacks is named with what it has", async () => {
  let kept;
  const dir = bundleCopy((m) => {
    delete m.variants.fp32;
    kept = Object.keys(m.variants).join(", ");
  });
  await assert.rejects(load(dir, { variant: "fp32" }), (e) => e.message.startsWith(`variant 'fp32' is not in this bundle (it has ${kept}); export it with`));
});

test("session config entries the manifest requires are set on the variant's sessions", async () => {
  // session.load_model_format=ORT makes ONNX Runtime refuse an ONNX-format file: proof the entry reached it.
  const dir = bundleCopy((m) => (m.variants.int8.session_config = { "session.load_model_format": "ORT" }), ["model.int8.onnx"]);
  await assert.rejects(load(dir, { variant: "int8" }), /^BundleError: ONNX Runtime \(onnxruntime-node .*\) could not load variant 'int8'/);
  const plain = bundleCopy(() => {}, ["model.int8.onnx"]);
  await (await load(plain, { variant: "int8", threads: 1 })).close();
});
