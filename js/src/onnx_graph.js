/**
 * Inspect and cut ONNX models at the protobuf wire level, as runtime/onnx_graph.py does:
 * list every external-data location (so a bundle can refuse paths that leave it before
 * ONNX Runtime reads anything) and cut a graph to the nodes some outputs need (layer k of
 * L then costs about k/L). Field numbers come from onnx.proto. Not handled: packed fields,
 * groups, control-flow subgraphs reading outer-scope values while being cut (BERT has none).
 */

const VARINT = 0, FIXED64 = 1, LENGTH_DELIMITED = 2, FIXED32 = 5;
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1, GRAPH_INITIALIZER = 5, GRAPH_OUTPUT = 12, GRAPH_VALUE_INFO = 13, GRAPH_SPARSE_INITIALIZER = 15;
const NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_ATTRIBUTE = 5;
const ATTR_TENSOR = 5, ATTR_GRAPH = 6, ATTR_TENSORS = 10, ATTR_GRAPHS = 11, ATTR_SPARSE_TENSOR = 22, ATTR_SPARSE_TENSORS = 23;
const TENSOR_NAME = 8, TENSOR_EXTERNAL_DATA = 13;
const SPARSE_VALUES = 1, SPARSE_INDICES = 2;
const ENTRY_KEY = 1, ENTRY_VALUE = 2;
const VALUE_INFO_NAME = 1;

export class WireFormatError extends Error {}

const utf8 = new TextDecoder("utf-8");

function readVarint(buf, pos) {
  let result = 0n, shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new WireFormatError("truncated varint");
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new WireFormatError("varint longer than 10 bytes");
  }
}

/** Each field of a message: {number, wire, value (Uint8Array for length-delimited), raw (tag included)}. */
function* fields(buf) {
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    let key;
    [key, pos] = readVarint(buf, pos);
    const number = Number(key >> 3n), wire = Number(key & 7n);
    let value = null;
    if (wire === VARINT) {
      [, pos] = readVarint(buf, pos);
    } else if (wire === LENGTH_DELIMITED) {
      let size;
      [size, pos] = readVarint(buf, pos);
      const end = pos + Number(size);
      if (end > buf.length) throw new WireFormatError(`field ${number} runs past the end of its message`);
      value = buf.subarray(pos, end);
      pos = end;
    } else if (wire === FIXED64 || wire === FIXED32) {
      pos += wire === FIXED64 ? 8 : 4;
      if (pos > buf.length) throw new WireFormatError(`field ${number} runs past the end of its message`);
    } else {
      throw new WireFormatError(`unsupported wire type ${wire} in field ${number}`);
    }
    yield { number, wire, value, raw: buf.subarray(start, pos) };
  }
}

function* messages(buf, number) {
  for (const f of fields(buf)) if (f.number === number && f.wire === LENGTH_DELIMITED) yield f.value;
}

function string(buf, number) {
  for (const value of messages(buf, number)) return utf8.decode(value);
  return null;
}

const strings = (buf, number) => [...messages(buf, number)].map((v) => utf8.decode(v));

function graphOf(model) {
  for (const graph of messages(model, MODEL_GRAPH)) return graph;
  throw new WireFormatError("the ONNX model has no graph");
}

function* tensorLocations(tensor) {
  for (const entry of messages(tensor, TENSOR_EXTERNAL_DATA)) {
    if (string(entry, ENTRY_KEY) === "location") yield string(entry, ENTRY_VALUE) ?? "";
  }
}

function* sparseLocations(sparse) {
  for (const number of [SPARSE_VALUES, SPARSE_INDICES]) for (const t of messages(sparse, number)) yield* tensorLocations(t);
}

function* graphLocations(graph) {
  for (const t of messages(graph, GRAPH_INITIALIZER)) yield* tensorLocations(t);
  for (const s of messages(graph, GRAPH_SPARSE_INITIALIZER)) yield* sparseLocations(s);
  for (const node of messages(graph, GRAPH_NODE)) {
    for (const attribute of messages(node, NODE_ATTRIBUTE)) {
      for (const n of [ATTR_TENSOR, ATTR_TENSORS]) for (const t of messages(attribute, n)) yield* tensorLocations(t);
      for (const n of [ATTR_SPARSE_TENSOR, ATTR_SPARSE_TENSORS]) for (const s of messages(attribute, n)) yield* sparseLocations(s);
      for (const n of [ATTR_GRAPH, ATTR_GRAPHS]) for (const g of messages(attribute, n)) yield* graphLocations(g);
    }
  }
}

/** Every external-data `location` string in the model, subgraphs included. */
export const externalDataLocations = (model) => new Set(graphLocations(graphOf(model)));

/** The graph's output names, in order. */
export const outputNames = (model) => [...messages(graphOf(model), GRAPH_OUTPUT)].map((v) => string(v, VALUE_INFO_NAME) ?? "");

function encodeVarint(value) {
  const out = [];
  for (;;) {
    const byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) out.push(byte | 0x80);
    else return (out.push(byte), out);
  }
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) out.set(p, offset), (offset += p.length);
  return out;
}

/**
 * The model with only `keepOutputs` as outputs and only the nodes they need (nodes are
 * topologically sorted, the ONNX rule, so one backward pass finds them); unused
 * initializers and value_info entries go with them.
 */
export function cutModel(model, keepOutputs) {
  const graph = graphOf(model);
  const keep = new Set(keepOutputs);
  const missing = [...keep].filter((n) => !outputNames(model).includes(n));
  if (missing.length) throw new Error(`the model has no outputs named ${JSON.stringify(missing)}`);
  const nodes = [...messages(graph, GRAPH_NODE)];
  const needed = new Set(keep);
  const kept = new Set();
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (strings(nodes[i], NODE_OUTPUT).some((o) => needed.has(o))) {
      kept.add(i);
      for (const input of strings(nodes[i], NODE_INPUT)) if (input) needed.add(input);
    }
  }
  const parts = [];
  let nodeIndex = 0;
  for (const { number, value, raw } of fields(graph)) {
    if (number === GRAPH_NODE) {
      if (kept.has(nodeIndex++)) parts.push(raw);
    } else if (number === GRAPH_INITIALIZER) {
      if (needed.has(string(value, TENSOR_NAME))) parts.push(raw);
    } else if (number === GRAPH_OUTPUT) {
      if (keep.has(string(value, VALUE_INFO_NAME))) parts.push(raw);
    } else if (number === GRAPH_VALUE_INFO) {
      if (needed.has(string(value, VALUE_INFO_NAME))) parts.push(raw);
    } else {
      parts.push(raw);
    }
  }
  const newGraph = concat(parts);
  const header = Uint8Array.from([...encodeVarint((MODEL_GRAPH << 3) | LENGTH_DELIMITED), ...encodeVarint(newGraph.length)]);
  return concat([...fields(model)].flatMap(({ number, raw }) => (number === MODEL_GRAPH ? [header, newGraph] : [raw])));
}
