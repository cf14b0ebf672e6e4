/**
 * layerwise for the browser: `load(url)` with onnxruntime-web (WebAssembly). Serve the
 * bundle folder and onnxruntime-web's .wasm file; several threads need a cross-origin
 * isolated page (COOP/COEP headers), otherwise ONNX Runtime runs on one thread.
 */

import * as ort from "onnxruntime-web/wasm";
import { BundleError } from "./errors.js";
import { openEncoder } from "./load.js";

export { Encoder } from "./encoder.js";
export { BundleError, InputError, LayerwiseError, NonFiniteOutputError } from "./errors.js";

/** Files of a bundle under a base URL (fetched; paths were checked to stay under it). */
function urlSource(url) {
  const base = new URL(String(url).endsWith("/") ? String(url) : `${url}/`, globalThis.location?.href);
  return {
    location: base.href,
    describe: (name) => new URL(name, base).href,
    /** The folder's name: the URL's last path segment (what a score hash names). */
    name: async () => decodeURIComponent(base.pathname.split("/").filter(Boolean).pop() ?? base.host),
    async read(parts, entry, what) {
      const target = new URL(parts.map(encodeURIComponent).join("/"), base);
      let response;
      try {
        response = await fetch(target);
      } catch (e) {
        throw new BundleError(`${what} ${target.href} could not be fetched (${e.message})`, { cause: e });
      }
      if (!response.ok) {
        if (entry === null) throw new BundleError(`${target.href} gave HTTP ${response.status}: ${base.href} is not a layerwise bundle (or is not served)`);
        throw new BundleError(`${what} '${parts.join("/")}' is missing from the bundle ${base.href} (HTTP ${response.status}); re-export or re-upload the bundle`);
      }
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

/**
 * Load a bundle from a URL (a folder served over HTTP) for embeddings in WebAssembly.
 * @param {string|URL} url the bundle folder's URL
 * @param {{variant?: string, threads?: number}} options threads default to the logical CPUs when the page is cross-origin isolated, else 1
 */
export async function load(url, options = {}) {
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = isolated ? (globalThis.navigator?.hardwareConcurrency ?? 1) : 1;
  return openEncoder(urlSource(url), options, cores, async (threads) => {
    ort.env.wasm.numThreads = isolated ? threads : 1;
    return {
      ort,
      threads: ort.env.wasm.numThreads,
      name: `onnxruntime-web ${ort.env.versions?.web ?? ""} wasm`,
      sessionOptions: (graph, variant) => ({
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        executionMode: "sequential",
        enableCpuMemArena: false,
        logSeverityLevel: 3,
        externalData: graph.externalData,
        extra: { ...(variant?.sessionConfig ?? {}) },
      }),
    };
  });
}
