/** The page and loopback server the browser tests run in: the package and one bundle, served to headless Chromium. */

import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };

export const PAGE = `<!doctype html><meta charset="utf-8"><title>layerwise browser test</title>
<script type="importmap">{"imports": {
  "layerwise": "/pkg/src/browser.js",
  "onnxruntime-web/wasm": "/pkg/node_modules/onnxruntime-web/dist/ort.wasm.bundle.min.mjs",
  "@huggingface/tokenizers": "/pkg/node_modules/@huggingface/tokenizers/dist/tokenizers.min.mjs"
}}</script>
<script type="module">
  import { load } from "layerwise";
  const base64 = (f) => { let s = ""; const b = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000)); return btoa(s); };
  const pack = (r) => Array.isArray(r) ? r.map(pack) : { dims: r.dims, data: base64(r.data) };
  window.runCases = async (variant, cases, texts) => {
    let t = performance.now();
    const enc = await load("/bundle/", { variant, threads: 2 });
    const loadSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    await enc.embed([texts[0]], { layers: "all" });
    const firstMs = performance.now() - t;
    const steady = [];
    for (let i = 0; i < 10; i++) { t = performance.now(); await enc.embed([texts[0]], { layers: "all" }); steady.push(performance.now() - t); }
    steady.sort((a, b) => a - b);
    const results = [], stats = [];
    for (const c of cases) {
      results.push(pack(c.method === "embed" ? await enc.embed(texts, c.options) : await enc.embedTokens(texts, c.options)));
      stats.push({ split: enc.lastStats.split, windows: enc.lastStats.windows, batches: enc.lastStats.batches });
    }
    const info = enc.info;
    await enc.close();
    return { results, stats, info, loadSeconds, firstMs, steadyMs: steady[5] };
  };
  window.runScoreCases = async (variant, cases) => {
    const { runScoreCase } = await import("/pkg/test/score_cases.js");
    const enc = await load("/bundle/", { variant, threads: 2 });
    const results = [], seconds = [];
    for (const c of cases) {
      const t = performance.now();
      results.push(await runScoreCase(enc, c));
      seconds.push((performance.now() - t) / 1000);
    }
    await enc.close();
    return { results, seconds };
  };
  window.ready = true;
</script>`;

/** Serve the page, the package under /pkg/ and `bundle` under /bundle/ on a loopback port. */
export function serve(bundle) {
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    const headers = { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
    if (url.pathname === "/") return res.writeHead(200, { ...headers, "content-type": "text/html" }).end(PAGE);
    const [root, prefix] = url.pathname.startsWith("/bundle/") ? [bundle, "/bundle/"] : url.pathname.startsWith("/pkg/") ? [PACKAGE, "/pkg/"] : [null, ""];
    const file = root && path.join(root, decodeURIComponent(url.pathname.slice(prefix.length)));
    if (!file || !file.startsWith(root + path.sep) || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404, headers).end();
    res.writeHead(200, { ...headers, "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

