/**
 * layerwise for Node: `load(folder)` with onnxruntime-node (CPU). Install it with
 * `ONNXRUNTIME_NODE_INSTALL=skip npm install layerwise onnxruntime-node`: without the
 * variable, onnxruntime-node's install script downloads CUDA libraries on linux x64 and
 * fails where that host is unreachable; the CPU build it already contains is all this needs.
 */

import { readFile, realpath } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import { BundleError } from "./errors.js";
import { openEncoder } from "./load.js";

export { Encoder } from "./encoder.js";
export { BundleError, InputError, LayerwiseError, NonFiniteOutputError } from "./errors.js";

const EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path";

/** Files of a bundle folder, each resolved (symbolic links included) inside the folder before it is read. */
function folderSource(folder) {
  const root = path.resolve(folder);
  return {
    location: root,
    describe: (name) => path.join(root, name),
    /** The folder's own name, symbolic links resolved (Python's Path.resolve().name): what a score hash names. */
    name: async () => path.basename(await realpath(root).catch(() => root)),
    async read(parts, entry, what) {
      let realRoot, target;
      try {
        realRoot = await realpath(root);
      } catch {
        throw new BundleError(`bundle folder '${root}' does not exist; create one with \`layerwise export SOURCE --out ${folder}\``);
      }
      const relative = parts.join("/");
      try {
        target = await realpath(path.join(realRoot, ...parts));
      } catch {
        if (entry === null) throw new BundleError(`'${root}' has no ${relative}: it is not a layerwise bundle (or its export did not finish)`);
        throw new BundleError(`${what} '${relative}' is missing from the bundle '${root}'; re-export the bundle`);
      }
      if (target !== realRoot && !target.startsWith(realRoot + path.sep)) {
        throw new BundleError(`${what} refers to '${relative}', which resolves to ${target} outside the bundle folder (a symbolic link?); refusing to load it`);
      }
      return new Uint8Array(await readFile(target));
    },
  };
}

/**
 * Load a bundle folder for embeddings on the CPU.
 * @param {string} folder written by `layerwise export`
 * @param {{variant?: string, threads?: number}} options variant: int8, else fused, else fp32 when omitted; threads: intra-op threads (default: logical CPUs)
 * @example
 *   const enc = await load("bundles/minilm", { variant: "fused", threads: 2 });
 *   (await enc.embed(["a text"], { layers: -1 })).dims; // [1, 1, 384]
 */
export async function load(folder, options = {}) {
  const source = folderSource(folder);
  return openEncoder(source, options, availableParallelism(), async (threads) => {
    let ort;
    try {
      ort = await import("onnxruntime-node");
    } catch (e) {
      throw new BundleError("layerwise in Node needs onnxruntime-node: ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node", { cause: e });
    }
    return {
      ort,
      name: `onnxruntime-node ${ort.env.versions?.node ?? ort.env.versions?.common ?? ""} cpu`.replace("  ", " "),
      sessionOptions: (graph, variant) => ({
        executionProviders: ["cpu"],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: "all",
        enableCpuMemArena: false,
        logSeverityLevel: 3,
        extra: {
          ...(variant?.sessionConfig ?? {}),
          ...(graph.externalData.length ? { [EXTERNAL_DATA_FOLDER]: path.dirname(path.join(source.location, graph.name)) } : {}),
        },
      }),
    };
  });
}
