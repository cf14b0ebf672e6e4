/** The option sets compared with the Python runtime, in Node and in the browser. */

export const FLOAT_VARIANTS = ["fp32", "fused"];
export const TOLERANCE = 1e-4; // fp32 and fused: max abs difference at every layer
export const INT8_BAR = { mean: 0.995, min: 0.99 }; // the exporter's int8 bar (exporter/parity.py)

const pooled = (variant) => [
  { variant, method: "embed", options: { layers: "all", pool: "mean" } },
  { variant, method: "embed", options: { layers: "all", pool: "max" } },
  { variant, method: "embed", options: { layers: "all", pool: "cls" } },
  { variant, method: "embed", options: { layers: [-4, -3, -2, -1], pool: "mean", combine: "concat", normalize: true } },
  { variant, method: "embed", options: { layers: [0, 2, 2, -1], pool: "max", combine: "sum" } },
  { variant, method: "embed", options: { layers: [1, 3], pool: "mean", combine: "mean", batchSize: 3 } },
  { variant, method: "embed_tokens", options: { layers: "all" } },
  { variant, method: "embed_tokens", options: { layers: [-1, 0], combine: "concat", normalize: true } },
  { variant, method: "embed", options: { layers: "all", pool: "mean", combine: "scalar_mix", weights: [0.5, -1, 2, 0, 0.25, 1, -0.5], gamma: 1.5 } },
  { variant, method: "embed", options: { layers: [-1, 2], pool: "cls", combine: "scalar_mix", weights: [3, -2], normalize: true } },
  { variant, method: "embed_tokens", options: { layers: [0, 3, -1], combine: "scalar_mix", weights: [1, 2, 3], gamma: 0.5 } },
];

export const CASES = [
  ...FLOAT_VARIANTS.flatMap(pooled),
  { variant: "fp32", method: "embed", options: { layers: "all", pool: "mean", maxLength: 16 } },
  { variant: "int8", method: "embed", options: { layers: "all", pool: "mean" } },
];

/** The fp32 case the int8 result is held against. */
export const INT8_REFERENCE = CASES.findIndex((c) => c.variant === "fp32" && c.method === "embed" && c.options.pool === "mean" && c.options.layers === "all" && !c.options.maxLength);

/** Run a case with a JS encoder: the same call the Python helper made. */
export function runCase(enc, c, texts) {
  return c.method === "embed" ? enc.embed(texts, c.options) : enc.embedTokens(texts, c.options);
}

/**
 * Long texts (overflow "chunk") against the Python runtime's own overflow="chunk" results, on
 * the texts of tests/test_long_texts.py (`long` from pythonLongTexts()) and the usual test texts.
 * Returns {texts, cases, windows: the (maxLength, stride) whose windows are held against Python's}.
 */
export function chunkCases(long, texts) {
  const all = [long.short, long.long, "Short one.", long.atLimit, long.overLimit, "", ...texts];
  const fp32 = (method, options, own) => ({ variant: "fp32", method, options: { overflow: "chunk", ...options }, ...(own && { texts: own }) });
  const cases = [
    fp32("embed_tokens", { layers: [0, 3, -1] }, [long.short, long.long, "Short one."]),
    fp32("embed", { layers: "all", pool: "mean" }),
    fp32("embed", { layers: "all", pool: "max", stride: 128 }),
    fp32("embed", { layers: "all", pool: "cls", stride: 200 }),
    fp32("embed", { layers: [-4, -3, -2, -1], pool: "mean", combine: "concat", normalize: true, batchSize: 2, stride: 64 }),
    fp32("embed", { layers: "all", pool: "mean" }, [long.atLimit]),
    fp32("embed", { layers: "all", pool: "mean" }, [long.overLimit]),
    ...[0, 61].flatMap((stride) => [
      fp32("embed_tokens", { layers: [0, 3, -1], maxLength: 64, stride }, [long.short]),
      fp32("embed", { layers: "all", pool: "cls", maxLength: 64, stride }, [long.short]),
      fp32("embed", { layers: "all", pool: "max", maxLength: 64, stride }, [long.short]),
    ]),
  ];
  const windows = [{}, { maxLength: 64 }, { maxLength: 64, stride: 0 }, { maxLength: 64, stride: 61 }, { maxLength: 16, stride: 7 }, { maxLength: 3, stride: 0 }];
  return { texts: all, cases, windows };
}
