/**
 * A real browser: headless Chromium (Debian's `chromium`) opens a page served from loopback,
 * loads the bundle with onnxruntime-web and this package, embeds the test texts, and the
 * vectors it returns are held against the Python runtime's as in Node. Load time and
 * per-text latency in the browser are reported as test diagnostics.
 */

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import puppeteer from "puppeteer-core";
import { CHROMIUM, serve } from "./browser_page.js";
import { CASES, INT8_BAR, INT8_REFERENCE, TOLERANCE } from "./cases.js";
import { assertScoreEqual, bundleDir, decode, maxAbsDiff, pooledCosines, pythonLongTexts, pythonReference, scoreReference, TEXTS } from "./helpers.js";
import { SCORE_CASES } from "./score_cases.js";

const BROWSER_VARIANTS = ["fused", "int8"];
/** In WebAssembly each case costs about 3x Node: every pooling kind, a combine and per-token output suffice here. */
const inBrowser = (c) => BROWSER_VARIANTS.includes(c.variant) && (c.variant === "int8" || c.options.layers === "all" || c.options.combine === "concat");

/** Peak resident memory (VmHWM, MB) of this browser's renderer processes, on Linux; null elsewhere. */
function rendererPeakMB(browserPid) {
  if (!existsSync("/proc/self/status")) return null;
  const parent = (pid) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
  const descends = (pid) => {
    for (let p = pid; p > 1; p = parent(p)) if (p === browserPid) return true;
    return false;
  };
  let peak = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer") || !descends(pid)) continue;
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024);
    } catch {
      // the process ended while being read
    }
  }
  return Math.round(peak);
}

let server, browser, reference;

before(async () => {
  reference = pythonReference(CASES);
  server = await serve(bundleDir());
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
});

/** A page in its own browser context (its own renderer process), ready to run cases. */
async function freshPage() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction("window.ready === true");
  return { page, context };
}

after(async () => {
  await browser?.close();
  server?.close();
});

for (const variant of BROWSER_VARIANTS) {
  test(`in Chromium, ${variant} gives the Python runtime's vectors`, async (t) => {
    const cases = CASES.filter((c) => c.variant === variant && inBrowser(c));
    const { page, context } = await freshPage();
    const run = await page.evaluate((v, c, texts) => window.runCases(v, c, texts), variant, cases, TEXTS);
    const peakMB = rendererPeakMB(browser.process().pid);
    await context.close();
    assert.equal(run.info.variant, variant);
    assert.match(run.info.backend, /^onnxruntime-web .* wasm$/);
    t.diagnostic(
      `chromium ${await browser.version()}, ${variant}, ${run.info.threads} threads: load ${run.loadSeconds.toFixed(2)} s, ` +
        `first call ${run.firstMs.toFixed(0)} ms, steady ${run.steadyMs.toFixed(1)} ms per text (one sentence, all layers), ` +
        `renderer peak memory ${peakMB} MB`,
    );
    cases.forEach((c, i) => {
      const got = decode(run.results[i]);
      const index = CASES.indexOf(c);
      if (variant === "int8") {
        for (const row of pooledCosines(got, reference.cases[INT8_REFERENCE].result)) {
          assert.ok(row.mean >= INT8_BAR.mean && row.min >= INT8_BAR.min, `layer ${row.layer}: cosine mean ${row.mean}, min ${row.min}`);
        }
        return;
      }
      const want = reference.cases[index].result;
      for (const [g, w] of Array.isArray(want) ? want.map((w, k) => [got[k], w]) : [[got, want]]) {
        assert.deepEqual(g.dims, w.dims);
        assert.ok(maxAbsDiff(g.data, w.data) <= TOLERANCE, `${JSON.stringify(c.options)}: max abs difference ${maxAbsDiff(g.data, w.data)}`);
      }
    });
  });
}

test("in Chromium, fused embeds long texts as windows (overflow chunk) as the Python runtime does", async () => {
  const long = pythonLongTexts();
  const texts = ["Short one.", long.overLimit, long.short]; // the first text is the page's warm-up
  const cases = [
    { variant: "fused", method: "embed", options: { layers: "all", pool: "mean", overflow: "chunk" } },
    { variant: "fused", method: "embed", options: { layers: "all", pool: "cls", overflow: "chunk", maxLength: 64, stride: 16 } },
  ];
  const want = pythonReference(cases, texts);
  const { page, context } = await freshPage();
  const run = await page.evaluate((v, c, t) => window.runCases(v, c, t), "fused", cases, texts);
  await context.close();
  cases.forEach((c, i) => {
    const got = decode(run.results[i]);
    const { result, stats } = want.cases[i];
    assert.deepEqual(run.stats[i], { split: stats.split, windows: stats.windows, batches: stats.batches });
    assert.deepEqual(got.dims, result.dims);
    assert.ok(maxAbsDiff(got.data, result.data) <= TOLERANCE, `${JSON.stringify(c.options)}: max abs difference ${maxAbsDiff(got.data, result.data)}`);
  });
});

test("in Chromium, fused gives the Python runtime's BERTScore and MaxSim", async (t) => {
  const reference = scoreReference();
  const cases = SCORE_CASES.filter((c) => c.variant === "fused");
  const { page, context } = await freshPage();
  const run = await page.evaluate((v, c) => window.runScoreCases(v, c), "fused", cases);
  await context.close();
  const worst = { bertscore: 0, maxsim: 0 };
  cases.forEach((c, i) => {
    const want = reference.cases[SCORE_CASES.indexOf(c)].result;
    assertScoreEqual(run.results[i], want, c, worst);
    // the hash names the bundle folder: the page serves it as /bundle/
    if (c.method === "bertscore") assert.equal(run.results[i].hash, want.hash.replace(/^[^_]*_L/, "bundle_L"));
  });
  t.diagnostic(
    `largest differences from Python in Chromium: P/R/F1 ${worst.bertscore.toExponential(2)}, MaxSim (relative) ${worst.maxsim.toExponential(2)}; ` +
      `seconds per case ${run.seconds.map((s) => s.toFixed(2)).join(", ")}`,
  );
});
