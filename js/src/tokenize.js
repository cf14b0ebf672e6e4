/**
 * Tokenize once, then cut length-sorted batches padded only to their own longest text, as
 * runtime/tokenize.py does. @huggingface/tokenizers reads the bundle's tokenizer.json but
 * neither truncates nor pads: texts are tokenized without special tokens (giving each
 * text's full length), cut to `limit` minus the special tokens, then passed through the
 * tokenizer's own post-processor, which is what Rust tokenizers' truncating encode does.
 */

import { Tokenizer } from "@huggingface/tokenizers";
import { InputError } from "./errors.js";

const SLOT = "\u0000layerwise-slot:"; // placeholder token names: post-processing moves tokens, never renames them

export class TextTokenizer {
  /** @param {string} tokenizerJson the bundle's tokenizer.json text */
  constructor(tokenizerJson, modelMaxLength, padId) {
    this.modelMaxLength = modelMaxLength;
    this.padId = padId;
    this.tokenizer = new Tokenizer(JSON.parse(tokenizerJson), {});
    this.specials = this.postProcess([]).ids.length;
  }

  /** The token limit asked (null: the model maximum), checked. */
  checkLimit(maxLength) {
    const limit = maxLength ?? this.modelMaxLength;
    if (!Number.isInteger(limit) || limit < 2 || limit > this.modelMaxLength) {
      throw new InputError(`maxLength must be an integer from 2 to the model maximum ${this.modelMaxLength}, got ${JSON.stringify(maxLength)}`);
    }
    return limit;
  }

  /** Every text's ids without special tokens, never cut. */
  rawIds(texts) {
    return texts.map((t) => this.tokenizer.encode(t, { add_special_tokens: false }).ids);
  }

  /** Every text's whole encoding with special tokens, never cut: {ids, tokens} per text (for inspection, as runtime/tokenize.py's tokens()). */
  tokens(texts) {
    return texts.map((t) => {
      const raw = this.tokenizer.encode(t, { add_special_tokens: false });
      const { ids, content } = this.postProcess(raw.ids);
      const tokens = ids.map((id) => this.tokenizer.id_to_token(id));
      content.forEach((row, k) => (tokens[row] = raw.tokens[k]));
      return { ids, tokens };
    });
  }

  /**
   * Special tokens and type ids around already-cut text ids, by the tokenizer's own template;
   * `content` lists the rows holding the given ids (the others are special tokens).
   */
  postProcess(ids) {
    const slots = ids.map((_, i) => SLOT + i);
    const processor = this.tokenizer.post_processor;
    const out = processor ? processor(slots, null, true) : { tokens: slots };
    const content = [];
    const tokenIds = out.tokens.map((t, row) => {
      if (t.startsWith(SLOT)) {
        content.push(row);
        return ids[Number(t.slice(SLOT.length))];
      }
      const id = this.tokenizer.token_to_id(t);
      if (id === undefined) throw new InputError(`the tokenizer's post-processor adds '${t}', which is not in its vocabulary`);
      return id;
    });
    return { ids: tokenIds, typeIds: out.token_type_ids ?? new Array(tokenIds.length).fill(0), content };
  }

  /**
   * Tokenize `texts`; longer than `maxLength` (default: the model maximum) is cut, or an
   * InputError when `truncate` is false. Returns {texts, ids, typeIds, fullLengths, limit}.
   */
  encode(texts, maxLength = null, truncate = true) {
    const limit = this.checkLimit(maxLength);
    const raw = this.rawIds(texts);
    const fullLengths = raw.map((ids) => ids.length + this.specials);
    const tooLong = fullLengths.flatMap((n, i) => (n > limit ? [i] : []));
    if (tooLong.length && !truncate) {
      const first = tooLong[0];
      throw new InputError(
        `text ${first} has ${fullLengths[first]} tokens, more than maxLength ${limit} ` +
          `(${tooLong.length} text(s) too long); pass truncate: true to cut them, or shorten the text`,
      );
    }
    const processed = raw.map((ids) => this.postProcess(ids.slice(0, Math.max(0, limit - this.specials))));
    return { texts, ids: processed.map((p) => p.ids), typeIds: processed.map((p) => p.typeIds), fullLengths, limit };
  }
}

/** Indices of the texts that were cut to the limit. */
export const truncatedIndices = (encoded) => encoded.fullLengths.flatMap((n, i) => (n > encoded.limit ? [i] : []));

/**
 * Batches longest-first, each right-padded to its own longest text, holding at most
 * `batchSize` texts and (when given) `maxTokens` padded tokens, one text at least.
 * Each batch: {indices (caller's order), rows, width, inputIds, attentionMask, tokenTypeIds (BigInt64Array)}.
 *
 * Example: lengths [3, 9, 4], batchSize 2 -> rows [1, 2] padded to 9, then row [0] at 3.
 */
export function* lengthSortedBatches(encoded, batchSize, padId, maxTokens = null) {
  const lengths = encoded.ids.map((ids) => ids.length);
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b); // stable, longest first
  let start = 0;
  while (start < order.length) {
    const width = lengths[order[start]];
    const count = maxTokens == null ? batchSize : Math.max(1, Math.min(batchSize, Math.floor(maxTokens / Math.max(width, 1))));
    const indices = order.slice(start, start + count);
    start += indices.length;
    const size = indices.length * width;
    const inputIds = new BigInt64Array(size).fill(BigInt(padId));
    const attentionMask = new BigInt64Array(size);
    const tokenTypeIds = new BigInt64Array(size);
    indices.forEach((row, r) => {
      encoded.ids[row].forEach((id, t) => {
        inputIds[r * width + t] = BigInt(id);
        attentionMask[r * width + t] = 1n;
        tokenTypeIds[r * width + t] = BigInt(encoded.typeIds[row][t]);
      });
    });
    yield { indices, rows: indices.length, width, lengths: indices.map((i) => lengths[i]), inputIds, attentionMask, tokenTypeIds };
  }
}
