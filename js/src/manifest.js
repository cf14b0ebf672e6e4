/**
 * The bundle manifest, read and validated as runtime/manifest.py does: the one contract
 * shared by the exporter and every loader. Names of files and graph outputs live here.
 */

import { BundleError } from "./errors.js";

export const FORMAT = "layerwise-bundle";
export const FORMAT_VERSION = 1;
export const MANIFEST_NAME = "manifest.json";
export const INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"];
export const VARIANTS = ["fp32", "fused", "int8", "fp16"];
export const POOLING_KINDS = ["mean", "max", "cls"];
export const POOLING_INPUTS = ["hidden_state", "attention_mask"];
export const POOLING_OUTPUT = "pooled";
/** Variants a CPU (or WebAssembly) loader picks when none is asked for, best first; fp16 is for CUDA. */
export const CPU_PREFERENCE = ["int8", "fused", "fp32"];

/** Graph output holding hidden state `layer` (0 is the embedding output). */
export const outputName = (layer) => `hidden_state_${layer}`;

function fileEntry(data, where) {
  if (!data || typeof data !== "object" || typeof data.path !== "string" || !Number.isInteger(data.bytes) || typeof data.sha256 !== "string") {
    throw new BundleError(`manifest field ${where} must be an object with path, bytes and sha256`);
  }
  return { path: data.path, bytes: data.bytes, sha256: data.sha256.toLowerCase() };
}

function require(data, key, kind, where = "") {
  if (!(key in data)) {
    throw new BundleError(`manifest is missing the field ${where}'${key}'; re-export the bundle with \`layerwise export\``);
  }
  const value = data[key];
  const ok = kind === "int" ? Number.isInteger(value) : kind === "object" ? value !== null && typeof value === "object" && !Array.isArray(value) : typeof value === kind;
  if (!ok) throw new BundleError(`manifest field ${where}'${key}' must be ${kind}, got ${JSON.stringify(value)}`);
  return value;
}

/** Session config entries every loader must set for a variant (`variants.<v>.session_config`), as strings. */
function sessionConfig(entry, name) {
  const config = entry.session_config ?? {};
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new BundleError(`manifest field variants.${name}.session_config must map config keys to values`);
  }
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)]));
}

/** Validate a manifest's JSON object; return the fields a loader needs. */
export function parseManifest(data) {
  if (data === null || typeof data !== "object") throw new BundleError("manifest.json must hold a JSON object");
  if (data.format !== FORMAT) {
    throw new BundleError(`not a layerwise bundle manifest: format is ${JSON.stringify(data.format)}, expected '${FORMAT}'`);
  }
  if (data.format_version !== FORMAT_VERSION) {
    throw new BundleError(
      `bundle format version ${JSON.stringify(data.format_version)} is not supported by this layerwise (it reads version ` +
        `${FORMAT_VERSION}); re-export the bundle or install a matching layerwise`,
    );
  }
  const model = require(data, "model", "object");
  const variantsJson = require(data, "variants", "object");
  if (Object.keys(variantsJson).length === 0) throw new BundleError("manifest lists no variants; re-export the bundle");
  const variants = {};
  for (const [name, entry] of Object.entries(variantsJson)) {
    if (!VARIANTS.includes(name)) {
      throw new BundleError(`manifest names an unknown variant '${name}'; known variants: ${VARIANTS.join(", ")}`);
    }
    variants[name] = {
      name,
      graph: fileEntry(entry.graph, `variants.${name}.graph`),
      externalData: (entry.external_data ?? []).map((e) => fileEntry(e, `variants.${name}.external_data`)),
      sessionConfig: sessionConfig(entry, name),
    };
  }
  const pooling = require(data, "pooling_graphs", "object");
  const missing = POOLING_KINDS.filter((k) => !(k in pooling));
  if (missing.length) throw new BundleError(`manifest lacks the pooling graphs ${JSON.stringify(missing)}; re-export the bundle`);
  return {
    modelType: require(model, "model_type", "string", "model."),
    numLayers: require(model, "num_layers", "int", "model."),
    hiddenSize: require(model, "hidden_size", "int", "model."),
    maxLength: require(model, "max_length", "int", "model."),
    padTokenId: Number.isInteger(model.pad_token_id) ? model.pad_token_id : 0,
    tokenizer: fileEntry(data.tokenizer, "tokenizer"),
    pooling: Object.fromEntries(POOLING_KINDS.map((k) => [k, fileEntry(pooling[k], `pooling_graphs.${k}`)])),
    variants,
    defaultPooling: data.default_pooling ?? { pool: "mean", normalize: false },
  };
}

/** The requested variant, checked; or the best one present for a CPU/WebAssembly loader. */
export function chooseVariant(manifest, requested) {
  const available = Object.keys(manifest.variants);
  if (requested != null) {
    if (!available.includes(requested)) {
      throw new BundleError(
        `variant '${requested}' is not in this bundle (it has ${available.join(", ")}); ` +
          `export it with \`layerwise export SOURCE --out BUNDLE --variants ${requested} --force\``,
      );
    }
    return requested;
  }
  const best = CPU_PREFERENCE.find((v) => available.includes(v));
  if (!best) throw new BundleError(`this bundle has no variant for the CPU (it has ${available.join(", ")}); export int8, fused or fp32`);
  return best;
}
