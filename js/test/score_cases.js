/**
 * BERTScore and MaxSim calls compared with the Python runtime, in Node and in the browser (no Node
 * imports here: the browser page imports this file), and the errors compared with Python's messages.
 */

export const SCORE_TOLERANCE = 1e-5; // |difference| of P, R, F1 (fp32 and fused): float32 rounding of cosines in different summation orders
export const MAXSIM_TOLERANCE = 1e-5; // |difference| of a MaxSim score, relative to max(1, |score|): a sum of up to ~20 cosines or dot products

const LONG = "Python's garbage collector frees reference cycles that reference counting alone cannot reclaim. ".repeat(45); // > 512 tokens

/** Real sentences with the cases the package handles on purpose: padding whitespace, an empty text, repeats, a text over the maximum, non-Latin text. */
export const CANDIDATES = [
  "The cat sat on the mat.",
  "  A quick brown fox jumped over the lazy dog.\n",
  "",
  "Stock prices fell sharply after the central bank raised interest rates.",
  "The cat sat on the mat.",
  LONG,
  "東京は日本の首都です。",
  "I love 🍕 and 🎉 at the end of the week!",
];
export const REFERENCES = [
  "A cat was sitting on the mat.",
  "The quick brown fox jumps over the lazy dog.",
  "Nothing to compare with.",
  "Shares dropped after the interest rate rise.",
  "The dog sat on the rug.",
  "Reference counting cannot reclaim cycles; the garbage collector does.",
  "Tokyo is the capital of Japan.",
  "",
];
/** Several references per candidate: the package keeps the best P, R and F each. */
export const REFERENCE_LISTS = [
  ["A cat was sitting on the mat.", "The dog sat on the rug.", "The cat sat on the mat."],
  ["The quick brown fox jumps over the lazy dog."],
  ["", "Nothing to compare with."],
  ["Shares dropped after the interest rate rise.", "The central bank raised interest rates; stock prices fell."],
  ["A cat was sitting on the mat.", "   "],
  [LONG.slice(0, 400), "Reference counting cannot reclaim cycles; the garbage collector does.", LONG],
  ["Tokyo is the capital of Japan.", "東京は日本の首都です。"],
  ["I love pizza and parties on weekends!", "I love 🍕 and 🎉 at the end of the week!"],
];
/** Sentences to count idf document frequencies in (idf: [...]). */
export const IDF_SENTENCES = [
  "The cat sat on the mat.",
  "Stock prices fell.",
  "The garbage collector frees reference cycles.",
  "  Tokyo is the capital of Japan.  ",
  "The cat sat on the mat.",
];
/** A baseline in bert-score's format for a 6-layer model (hidden states 0..6); made-up values of the usual shape, falling with depth. */
export const BASELINE = `LAYER,P,R,F
0,0.58341,0.58412,0.58298
1,0.49375,0.4946,0.49356
2,0.45124,0.45208,0.45103
3,0.41905,0.41991,0.41884
4,0.38532,0.38617,0.38511
5,0.32981,0.33065,0.32962
6,0.17063,0.17139,0.17046
`;

const bert = (variant, options, references = REFERENCES, extra = {}) => ({ variant, method: "bertscore", candidates: CANDIDATES, references, options, ...extra });
const QUERY = "Where does the cat sit?";
export const DOCUMENTS = [
  "The cat sat on the mat, purring.",
  "Stock prices fell sharply after the central bank raised interest rates.",
  "",
  "A cat! On a mat?! (It sat there, all day.)",
  LONG,
  "東京は日本の首都です。",
];
const ms = (variant, options, documents = DOCUMENTS, query = QUERY) => ({ variant, method: "maxsim", query, documents, options });

export const SCORE_CASES = [
  bert("fp32", { layers: 4 }),
  bert("fp32", { layers: "all", idf: true }, REFERENCE_LISTS),
  bert("fp32", { layers: [2, 4, 4, -1], idf: IDF_SENTENCES, baseline: BASELINE, chunkTokens: 40 }, REFERENCE_LISTS),
  bert("fp32", { layers: 3, overflow: "truncate", batchSize: 2, chunkTokens: 60 }),
  bert("fused", { layers: [1, -1], idf: true, baseline: BASELINE }, REFERENCE_LISTS),
  ms("fp32", { returnMatches: true }),
  ms("fp32", { layers: [2, -1], combine: "mean", normalize: false, skipPunctuation: false, returnMatches: true }),
  ms("fp32", { layers: "all", combine: "concat", overflow: "chunk" }),
  ms("fused", { layers: 3, returnMatches: true }),
];

/**
 * Calls that fail, with how the JS message relates to Python's: "same" (equal), "spelled" (equal once
 * Python's name='value' reads as JS's name: "value"), or the JS message itself where the words differ
 * (Python's is then only required to be an InputError).
 */
export const ERROR_CASES = [
  [{ method: "bertscore", candidates: ["a", "b"], references: ["a"], options: { layers: 4 } }, "same"],
  [{ method: "bertscore", candidates: [], references: [], options: { layers: 4 } }, "same"],
  [{ method: "bertscore", candidates: ["a"], references: [[]], options: { layers: 4 } }, "same"],
  [{ method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: 7 } }, "same"],
  [{ method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: [1, -8] } }, "same"],
  [{ method: "bertscore", candidates: ["a", LONG], references: ["b", "c"], options: { layers: 4, overflow: "error" } }, "spelled"],
  [{ method: "bertscore", candidates: ["a"], references: [["b", LONG]], options: { layers: 4, overflow: "error" } }, "spelled"],
  [
    { method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: 4, overflow: "chunk" } },
    'InputError: overflow must be null, \'truncate\' or \'error\' for a score, got "chunk"',
  ],
  [
    { method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: 4, baseline: "LAYER,P,R,F\n0,0.5,0.5,0.5\n" } },
    "InputError: the baseline given has 1 rows (hidden states 0..0), but this model has hidden states 0..6: it was computed for another model; compute one for this bundle",
  ],
  [
    { method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: 4, baseline: "LAYER,P,R,F\n0,0.5,0.5\n" } },
    'InputError: the baseline, row 2: "0,0.5,0.5"; rows must be layers 0, 1, 2, ... in order, each with three finite numbers P,R,F',
  ],
  [
    { method: "bertscore", candidates: ["a"], references: ["b"], options: { layers: 4, idf: [] } },
    "InputError: idf must be false, true (from the references) or a non-empty array of sentences, got []",
  ],
  [{ method: "maxsim", query: "a", documents: [], options: {} }, "same"],
  [{ method: "maxsim", query: "a", documents: ["b"], options: { layers: 9 } }, "same"],
  [
    { method: "maxsim", query: "a", documents: ["b"], options: { layers: [2, -1] } },
    'InputError: MaxSim over several layers ([2,-1]) needs combine "concat", "sum" or "mean": one vector per token',
  ],
  [{ method: "embed", options: { layers: [0, 1], combine: "scalar_mix", weights: [1, 2, 3] } }, "same"],
  [{ method: "embed_tokens", options: { layers: [0, 2, -1], combine: "scalar_mix", weights: [1] } }, "same"],
  [{ method: "embed", options: { layers: [0, 1], combine: "scalar_mix" } }, "spelled"],
  [{ method: "embed", options: { layers: [0, 1], combine: "mean", weights: [1, 2] } }, "spelled"],
  [{ method: "embed", options: { layers: [0, 1], combine: "scalar_mix", weights: [1, 2], gamma: null } }, "InputError: gamma must be a finite number, got null"],
  [
    { method: "embed", options: { layers: [0, 1], combine: "scalar_mix", weights: [1, "2"] } },
    'InputError: weights must be a non-empty array of finite numbers, got [1,"2"]',
  ],
].map(([c, message]) => [{ variant: "fp32", error: true, texts: ["a text"], ...c }, message]);

/** Python's name='value' in JS spelling: name: "value". */
export const respell = (message) => message.replace(/(\w+)='(\w+)'/g, '$1: "$2"');

/** Run a score case with a JS encoder; typed arrays become plain arrays (what a browser page hands back). */
export async function runScoreCase(enc, c) {
  const plain = (x) => (ArrayBuffer.isView(x) ? Array.from(x) : x);
  if (c.method === "bertscore") {
    const s = await enc.bertscore(c.candidates, c.references, c.options);
    return { ...s, precision: plain(s.precision), recall: plain(s.recall), f1: plain(s.f1) };
  }
  const m = await enc.maxsim(c.query, c.documents, c.options);
  const matches = m.matches?.map((x) => ({ positions: plain(x.positions), tokens: x.tokens, similarities: plain(x.similarities) })) ?? null;
  return { ...m, scores: plain(m.scores), matches };
}
