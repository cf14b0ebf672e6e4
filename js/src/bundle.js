/**
 * Open a bundle safely, as runtime/bundle.py does: every path the manifest or a graph names
 * must stay inside the bundle (no "..", absolute paths, drives, or symbolic links leading
 * out), and every file must have the size and sha256 the manifest records, checked before
 * ONNX Runtime reads anything. Reading is delegated to a source: a folder in Node, a URL in
 * the browser (see node.js and browser.js).
 */

import { BundleError } from "./errors.js";
import { MANIFEST_NAME, parseManifest } from "./manifest.js";
import { externalDataLocations } from "./onnx_graph.js";

/** Hex sha256 of bytes, with the WebCrypto API both Node (>= 20) and browsers have. */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `relative` as clean posix parts, refusing anything that could lead out of the bundle. */
export function insideParts(relative, what) {
  const posix = String(relative).replaceAll("\\", "/");
  const parts = posix.split("/").filter((p) => p !== "" && p !== ".");
  if (!relative || posix.startsWith("/") || /^[A-Za-z]:/.test(posix) || /^[a-z][a-z0-9+.-]*:/i.test(posix) || parts.includes("..")) {
    throw new BundleError(`${what} refers to '${relative}', which is outside the bundle folder; refusing to load it`);
  }
  return parts;
}

/** A file's bytes, once its path is inside the bundle, its size and its sha256 are as recorded. */
export async function readVerified(source, entry, what) {
  const parts = insideParts(entry.path, what);
  const bytes = await source.read(parts, entry, what);
  if (bytes.length !== entry.bytes) {
    throw new BundleError(
      `${what} '${entry.path}' has ${bytes.length} bytes but the manifest records ${entry.bytes}: ` +
        "the file is truncated or was changed; re-export the bundle",
    );
  }
  if ((await sha256Hex(bytes)) !== entry.sha256) {
    throw new BundleError(`${what} '${entry.path}' does not match the sha256 in the manifest: the file was changed after export; re-export the bundle`);
  }
  return bytes;
}

/**
 * A verified graph: its bytes and its external-data files (each verified, each listed in the
 * manifest, each inside the bundle). Returns {name, bytes, externalData: [{path, data}]}.
 */
export async function loadGraph(source, graph, externalData, what) {
  const bytes = await readVerified(source, graph, what);
  let locations;
  try {
    locations = externalDataLocations(bytes);
  } catch (e) {
    throw new BundleError(`${what} '${graph.path}' is not a readable ONNX file (${e.message}); re-export the bundle`, { cause: e });
  }
  const folder = insideParts(graph.path, what).slice(0, -1); // external data is relative to the graph file
  const listed = new Map(externalData.map((e) => [insideParts(e.path, what).join("/"), e]));
  const data = [];
  for (const location of [...locations].sort()) {
    const relative = [...folder, ...insideParts(location, `${what} '${graph.path}' external data`)].join("/");
    const entry = listed.get(relative);
    if (!entry) {
      throw new BundleError(
        `${what} '${graph.path}' refers to external data '${location}' that the manifest does not list; refusing to load unverified weights`,
      );
    }
    data.push({ path: location, data: await readVerified(source, entry, `${what} external data`) });
  }
  return { name: graph.path, bytes, externalData: data };
}

/** The parsed manifest of a bundle source. */
export async function readManifest(source) {
  const bytes = await source.read([MANIFEST_NAME], null, "manifest");
  let data;
  try {
    data = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new BundleError(`${source.describe(MANIFEST_NAME)} is not valid JSON (${e.message}); re-export the bundle`, { cause: e });
  }
  return parseManifest(data);
}
