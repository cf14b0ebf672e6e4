/**
 * The bundle manifest, read and validated as runtime/manifest.py does: the one contract
 * shared by the exporter and every loader. Names of files and graph outputs live here.
 */

import { BundleError } from "./errors.js";

export const FORMAT = "layerwise-bundle";
/** Version 2 added the graph inputs (`inputs`); BERT-input bundles are still written as version 1. */
export const FORMAT_VERSION = 2;
export const FORMAT_VERSIONS = [1, 2];
export const MANIFEST_NAME = "manifest.json";
/** What the runtime feeds each graph input, by role, and the name the exporter gives it (runtime/manifest.py). */
export const INPUT_ROLES = { ids: "input_ids", mask: "attention_mask", type_ids: "token_type_ids" };
const REQUIRED_ROLES = ["ids", "mask"];
const INPUT_NAME = /^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$/;
/** Version 1 bundles record no inputs: their graphs take these three. */
const LEGACY_INPUTS = Object.entries(INPUT_ROLES).map(([role, name]) => ({ name, role }));
export const VARIANTS = ["fp32", "fused", "int8", "fp16"];
export const POOLING_KINDS = ["mean", "max", "cls"];
export const POOLING_INPUTS = ["hidden_state", "attention_mask"];
export const POOLING_OUTPUT = "pooled";
export const PROVIDERS = ["cpu", "cuda"];
/** Among the variants that run on a provider, fastest first (runtime/loader.py FASTEST_FIRST). */
export const FASTEST_FIRST = ["int8", "fp16", "fused", "fp32"];
/** The provider these loaders run on: onnxruntime-node's CPU and onnxruntime-web's WebAssembly are CPU kernels. */
const PROVIDER = "cpu";

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

/** The manifest's `inputs` list, checked as runtime/manifest.py parse_inputs does. */
function parseInputs(data) {
  if (!Array.isArray(data) || data.length === 0) {
    throw new BundleError("manifest field 'inputs' must be a non-empty list of {name, role}; re-export the bundle");
  }
  const inputs = data.map((item, i) => {
    if (item === null || typeof item !== "object" || typeof item.name !== "string" || typeof item.role !== "string") {
      throw new BundleError(`manifest field inputs[${i}] must be an object with string name and role, got ${JSON.stringify(item)}`);
    }
    if (!INPUT_NAME.test(item.name)) throw new BundleError(`manifest field inputs[${i}].name ${JSON.stringify(item.name)} is not a valid graph input name`);
    if (!(item.role in INPUT_ROLES)) {
      throw new BundleError(`manifest field inputs[${i}].role ${JSON.stringify(item.role)} is unknown; roles: ${Object.keys(INPUT_ROLES).join(", ")}`);
    }
    return { name: item.name, role: item.role };
  });
  const names = new Set(inputs.map((i) => i.name));
  const roles = new Set(inputs.map((i) => i.role));
  if (names.size !== inputs.length || roles.size !== inputs.length || REQUIRED_ROLES.some((r) => !roles.has(r))) {
    throw new BundleError(`manifest field 'inputs' must name each input and role once and include roles ${REQUIRED_ROLES.join(", ")}; got ${JSON.stringify(data)}`);
  }
  return inputs;
}

/** Validate a manifest's JSON object; return the fields a loader needs. */
export function parseManifest(data) {
  if (data === null || typeof data !== "object") throw new BundleError("manifest.json must hold a JSON object");
  if (data.format !== FORMAT) {
    throw new BundleError(`not a layerwise bundle manifest: format is ${JSON.stringify(data.format)}, expected '${FORMAT}'`);
  }
  if (!FORMAT_VERSIONS.includes(data.format_version)) {
    throw new BundleError(
      `bundle format version ${JSON.stringify(data.format_version)} is not supported by this layerwise (it reads versions ` +
        `${FORMAT_VERSIONS.join(", ")}); re-export the bundle or install a matching layerwise`,
    );
  }
  if (data.format_version >= 2 && !("inputs" in data)) {
    throw new BundleError(`manifest format version ${data.format_version} must list the graph 'inputs'; re-export the bundle`);
  }
  const model = require(data, "model", "object");
  const variantsJson = require(data, "variants", "object");
  if (Object.keys(variantsJson).length === 0) throw new BundleError("manifest lists no variants; re-export the bundle");
  const variants = {};
  for (const [name, entry] of Object.entries(variantsJson)) {
    if (!VARIANTS.includes(name)) {
      throw new BundleError(`manifest names an unknown variant '${name}'; known variants: ${VARIANTS.join(", ")}`);
    }
    const providers = entry.providers;
    if (!Array.isArray(providers) || providers.length === 0 || providers.some((p) => !PROVIDERS.includes(p))) {
      throw new BundleError(`manifest field variants.${name}.providers must list some of ${PROVIDERS.join(", ")}, got ${JSON.stringify(providers)}`);
    }
    variants[name] = {
      name,
      providers,
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
    inputs: "inputs" in data ? parseInputs(data.inputs) : LEGACY_INPUTS,
    tokenizer: fileEntry(data.tokenizer, "tokenizer"),
    pooling: Object.fromEntries(POOLING_KINDS.map((k) => [k, fileEntry(pooling[k], `pooling_graphs.${k}`)])),
    variants,
    defaultPooling: data.default_pooling ?? { pool: "mean", normalize: false },
  };
}

/**
 * The requested variant, checked against the providers the manifest records for it; or, as
 * runtime/loader.py chooses, the fastest present that runs on the CPU, those built for it
 * (listed first in `providers`) before the others: int8, fused, fp32, then fp16.
 */
export function chooseVariant(manifest, requested) {
  const variants = manifest.variants;
  const available = Object.keys(variants);
  if (requested != null) {
    if (!available.includes(requested)) {
      throw new BundleError(
        `variant '${requested}' is not in this bundle (it has ${available.join(", ")}); ` +
          `export it with \`layerwise export SOURCE --out BUNDLE --variants ${requested} --force\``,
      );
    }
    if (!variants[requested].providers.includes(PROVIDER)) {
      throw new BundleError(`the ${requested} variant runs on ${variants[requested].providers.join(", ")} only (as its manifest records), not on the CPU or WebAssembly`);
    }
    return requested;
  }
  const runsHere = FASTEST_FIRST.filter((v) => available.includes(v) && variants[v].providers.includes(PROVIDER));
  runsHere.sort((a, b) => (variants[a].providers[0] !== PROVIDER) - (variants[b].providers[0] !== PROVIDER)); // stable
  if (!runsHere.length) throw new BundleError(`this bundle has no variant that runs on the CPU (it has ${available.join(", ")}); export int8, fused or fp32`);
  return runsHere[0];
}
