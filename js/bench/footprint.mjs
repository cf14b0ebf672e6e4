/**
 * Footprint of the Node package on one bundle, in a fresh process: cold load time (import of
 * onnxruntime-node, verification, sessions), first-call and steady per-text latency (one
 * sentence, every layer mean-pooled: median of 20 calls), and peak resident memory.
 * Usage: node bench/footprint.mjs BUNDLE [VARIANT] [THREADS] -> one JSON line.
 */

const [bundle, variant, threads = "2"] = process.argv.slice(2);
const TEXT = "Layer-wise embeddings let a probe read syntax from the middle layers and semantics from the last ones.";

let t = performance.now();
const { load } = await import("../src/node.js");
const enc = await load(bundle, { variant, threads: Number(threads) });
const loadSeconds = (performance.now() - t) / 1000;
t = performance.now();
await enc.embed([TEXT]);
const firstMs = performance.now() - t;
const steady = [];
for (let i = 0; i < 20; i++) {
  t = performance.now();
  await enc.embed([TEXT]);
  steady.push(performance.now() - t);
}
steady.sort((a, b) => a - b);
console.log(JSON.stringify({
  runtime: enc.info.backend, variant: enc.info.variant, threads: enc.info.threads,
  loadSeconds: +loadSeconds.toFixed(3), firstMs: +firstMs.toFixed(1), steadyMs: +steady[10].toFixed(1),
  peakRssMB: +(process.resourceUsage().maxRSS / 1024).toFixed(0),
}));
await enc.close();
