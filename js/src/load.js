/** `openEncoder`: verify a bundle from a source, create the sessions, build a ready Encoder. */

import { loadGraph, readManifest, readVerified } from "./bundle.js";
import { InputError } from "./errors.js";
import { chooseVariant, POOLING_KINDS } from "./manifest.js";
import { checkContract, createSession, Encoder } from "./encoder.js";
import { TextTokenizer } from "./tokenize.js";

/** Shared by node.js and browser.js; `makeBackend(threads)` gives {ort, name, sessionOptions}. */
export async function openEncoder(source, options, defaultThreads, makeBackend) {
  const known = ["variant", "threads"];
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length) throw new InputError(`unknown load option(s) ${unknown.join(", ")}; options are ${known.join(", ")}`);
  const threads = options.threads ?? defaultThreads;
  if (!Number.isInteger(threads) || threads < 1) throw new InputError(`threads must be a positive integer, got ${JSON.stringify(options.threads)}`);
  const manifest = await readManifest(source);
  const variant = chooseVariant(manifest, options.variant);
  const backend = await makeBackend(threads);
  const v = manifest.variants[variant];
  const tokenizerJson = new TextDecoder().decode(await readVerified(source, manifest.tokenizer, "tokenizer"));
  const tokenizer = new TextTokenizer(tokenizerJson, manifest.maxLength, manifest.padTokenId);
  const graph = await loadGraph(source, v.graph, v.externalData, `variant '${variant}' graph`);
  const full = await createSession(backend, graph, v, `variant '${variant}'`);
  checkContract(full, manifest, v.graph.path);
  const pools = {};
  for (const kind of POOLING_KINDS) {
    const what = `pooling graph '${kind}'`;
    pools[kind] = await createSession(backend, await loadGraph(source, manifest.pooling[kind], [], what), null, what);
  }
  const sessions = new Map([[manifest.numLayers, Promise.resolve(full)]]);
  return new Encoder({ source, manifest, variant, backend, tokenizer, threads: backend.threads ?? threads, sessions, pools });
}
