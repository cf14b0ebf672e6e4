/**
 * BERTScore baselines for rescaling, in the bert-score package's file format (runtime/baseline.py):
 * a header `LAYER,P,R,F`, then one row per hidden state 0..L in order. JS takes the file's text
 * (a browser has no files): read it with `readFile(path, "utf8")` in Node or `fetch` in a page.
 * Computing a baseline is Python's (`layerwise baseline`).
 */

import { sha256Hex } from "./bundle.js";
import { InputError } from "./errors.js";

const HEADER = ["LAYER", "P", "R", "F"];
const LINE_BREAKS = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/; // Python's str.splitlines
const PY_WHITESPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_WHITESPACE}]+|[${PY_WHITESPACE}]+$`, "g");

/** Python's str.strip(): its whitespace is not JS's trim()'s (\x1c-\x1f and \x85 are, \ufeff is not). */
export const pyStrip = (text) => text.replace(PY_STRIP, "");

const PY_INT = /^[+-]?\d+(_\d+)*$/;
const PY_FLOAT = /^[+-]?(\d+(_\d+)*(\.(\d+(_\d+)*)?)?|\.\d+(_\d+)*)([eE][+-]?\d+(_\d+)*)?$/;
const PY_SPECIAL = /^[+-]?(inf|infinity|nan)$/i;

/** Python's float(cell) for the cells a baseline holds; null where Python raises ValueError. */
function pyNumber(cell, pattern) {
  if (pattern === PY_FLOAT && PY_SPECIAL.test(cell)) return cell.toLowerCase().includes("nan") ? NaN : cell.startsWith("-") ? -Infinity : Infinity;
  return pattern.test(cell) ? Number(cell.replaceAll("_", "")) : null;
}

/** A baseline's text, checked: {values: Float32Array [rows * 3] (P, R, F per hidden state), rows}. */
export function parseBaseline(text) {
  if (typeof text !== "string") {
    throw new InputError(`baseline must be the text of a baseline file (bert-score's LAYER,P,R,F lines), got ${typeof text}`);
  }
  const lines = text.split(LINE_BREAKS).map(pyStrip).filter((line) => line);
  if (!lines.length || lines[0].split(",").map(pyStrip).join(",") !== HEADER.join(",")) {
    throw new InputError(`the baseline must start with the header line ${HEADER.join(",")} (bert-score's format)`);
  }
  const values = [];
  lines.slice(1).forEach((line, number) => {
    const cells = line.split(",").map(pyStrip);
    const layer = pyNumber(cells[0], PY_INT);
    const scores = cells.slice(1).map((c) => pyNumber(c, PY_FLOAT));
    if (layer === null || scores.includes(null)) throw new InputError(`the baseline, row ${number + 2}: ${JSON.stringify(line)} is not LAYER,P,R,F numbers`);
    if (layer !== number || scores.length !== 3 || !scores.every(Number.isFinite)) {
      throw new InputError(
        `the baseline, row ${number + 2}: ${JSON.stringify(line)}; rows must be layers 0, 1, 2, ... in order, each with three finite numbers P,R,F`,
      );
    }
    values.push(...scores);
  });
  if (!values.length) throw new InputError("the baseline has a header but no rows");
  return { values: Float32Array.from(values), rows: values.length / 3 };
}

/** Rows [P, R, F] (float32) of the hidden states `layers`, for a model with `numLayers` layers (Baseline.rows). */
export function baselineRows(baseline, layers, numLayers) {
  if (baseline.rows !== numLayers + 1) {
    throw new InputError(
      `the baseline given has ${baseline.rows} rows (hidden states 0..${baseline.rows - 1}), but this model has hidden states 0..${numLayers}: ` +
        "it was computed for another model; compute one for this bundle",
    );
  }
  return layers.map((layer) => baseline.values.subarray(layer * 3, layer * 3 + 3));
}

/** The package's file text, as Python writes it (Baseline.to_text): what a score hash pins. */
export function baselineText(baseline) {
  const rows = [HEADER.join(",")];
  for (let layer = 0; layer < baseline.rows; layer++) {
    rows.push([layer, ...baseline.values.subarray(layer * 3, layer * 3 + 3)].map((v, k) => (k ? float32String(v) : String(v))).join(","));
  }
  return rows.join("\n") + "\n";
}

/** sha256 (hex) of baselineText: Python's Baseline.digest. */
export const baselineDigest = (baseline) => sha256Hex(new TextEncoder().encode(baselineText(baseline)));

/**
 * A float32 as numpy's str() writes it: the shortest digits that read back to the same float32,
 * positional from 1e-4 up to 1e16 ("0.83", "1.0"), scientific outside ("1e-05", "1.5e+16").
 */
export function float32String(value) {
  const v = Math.fround(value);
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
  let precision = 1;
  while (Math.fround(Number(v.toPrecision(precision))) !== v) precision++;
  const [mantissa, exp] = v.toExponential(precision - 1).split("e"); // the same digits as toPrecision
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace("-", "").replace(".", "");
  const e = Number(exp);
  if (Math.abs(v) < 1e-4 || Math.abs(v) >= 1e16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  const whole = digits.slice(0, e + 1).padEnd(e + 1, "0");
  return `${sign}${whole}.${digits.slice(e + 1) || "0"}`;
}
