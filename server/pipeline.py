"""One parsed embedding request: tokenize it once, enforce length and size limits, wait for its run.

Token-id inputs skip the tokenizer (``TextTokenizer.encode_ids``) and are checked against the
vocabulary here. A chunked request's tokens are bounded before its texts are split into
windows (``check_chunk_budget``: splitting a 2 MB text takes seconds). Not handled here: HTTP
(bodies, headers, statuses) and output formats (see render.py).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from ..runtime import EncoderInfo, Tokenized
from ..runtime.errors import UntokenizableText
from ..runtime.tokenize import TextTokenizer
from ..runtime.windows import Windows
from .batcher import Admission, Batcher, RunResult
from .errors import InvalidRequest, TokenizerError, TooLarge
from .schema import EmbedRequest

JSON_FLOAT_LIMIT = 1 << 24  # floats in one JSON-of-floats response (~350 MB of text); binary bodies are not capped


@dataclass(frozen=True)
class Embedded:
    """A request's share of a run, and the figures of its own behind the timing headers."""

    run: RunResult
    tokens: int
    characters: int
    tokenization_s: float

    @property
    def output(self) -> list[np.ndarray]:
        return self.run.output

    def headers(self, total_s: float, compute_type: str) -> dict[str, str]:
        """Timing headers as text-embeddings-inference sends them (milliseconds), plus the run's size."""
        total = _ms(total_s)
        return {
            "x-compute-type": compute_type,
            "x-compute-time": total,
            "x-compute-characters": str(self.characters),
            "x-compute-tokens": str(self.tokens),
            "x-total-time": total,
            "x-tokenization-time": _ms(self.tokenization_s),
            "x-queue-time": _ms(self.run.queue_s),
            "x-inference-time": _ms(self.run.inference_s),
            "x-batch-requests": str(self.run.batch_requests),
        }


def _ms(seconds: float) -> str:
    return str(int(seconds * 1000))


async def embed(batcher: Batcher, admission: Admission, request: EmbedRequest, json_floats: bool, max_tokens: int) -> Embedded:
    """Check the request against the model's limits (``max_tokens``: all windows of chunked inputs
    together), then queue it; ``json_floats`` caps the output size."""
    started = time.perf_counter()
    texts = [text for text in request.texts if isinstance(text, str)]
    characters = sum(map(len, texts))
    inputs: Tokenized | Windows
    try:
        if request.options.chunk:  # texts only (schema.py refuses token ids with chunk)
            if characters > max_tokens:  # fewer characters cannot make a costly split
                await batcher.offload(
                    functools.partial(check_chunk_budget, request, texts, batcher.encoder.tokenizer, max_tokens), characters
                )
            inputs = await batcher.split(texts, request.options.stride)
            tokenized, rows = inputs.tokenized, inputs.output_lengths
            check_window_tokens(request, inputs, max_tokens)
        else:
            inputs = tokenized = await _tokenize(batcher, request, texts)
            check_lengths(request, tokenized)
            rows = tokenized.lengths.tolist()  # after truncation
    except UntokenizableText as e:
        where = [i for i, text in enumerate(request.texts) if isinstance(text, str)][e.index]
        raise TokenizerError(f"`{request.field}[{where}]` {e.reason}") from None
    tokenization = time.perf_counter() - started
    if json_floats:
        check_json_size(request, rows, batcher.encoder.info)
    run = await admission.embed(inputs, request.options)
    return Embedded(run, int(tokenized.lengths.sum()), characters, tokenization)


async def _tokenize(batcher: Batcher, request: EmbedRequest, texts: list[str]) -> Tokenized:
    """The request's texts and token ids as one Tokenized, in the request's order, cut to the model maximum."""
    if len(texts) == len(request.texts):
        return await batcher.tokenize(texts)
    tokenizer = batcher.encoder.tokenizer
    id_rows = [item for item in request.texts if not isinstance(item, str)]
    size = tokenizer.vocab_size
    for index, item in enumerate(request.texts):
        unknown = next((i for i in item if i >= size), None) if not isinstance(item, str) else None
        if unknown is not None:
            raise InvalidRequest(
                f"`{request.field}[{index}]` holds token id {unknown}, not in the model's vocabulary of {size} tokens (ids 0..{size - 1}): "
                "send ids from this model's tokenizer (POST /tokenize gives them), or the text (langchain-openai sends "
                "tiktoken's ids unless told check_embedding_ctx_length=False)"
            )
    from_ids = tokenizer.encode_ids(id_rows, truncate=True)
    if not texts:
        return from_ids
    from_texts = await batcher.tokenize(texts)
    parts = {str: iter(range(len(from_texts.ids))), list: iter(range(len(from_ids.ids)))}
    rows = [(from_texts if isinstance(item, str) else from_ids, next(parts[type(item)])) for item in request.texts]
    return Tokenized(
        texts=[part.texts[i] for part, i in rows],
        ids=[part.ids[i] for part, i in rows],
        type_ids=[part.type_ids[i] for part, i in rows],
        full_lengths=[part.full_lengths[i] for part, i in rows],
        limit=from_ids.limit,
        warn_truncated=False,
    )


def check_chunk_budget(request: EmbedRequest, texts: list[str], tokenizer: TextTokenizer, max_tokens: int) -> None:
    """A 413 before any window is made when the texts' tokens alone (each counted only until the
    remaining budget is passed, on prefixes) pass what one request may run. ``texts`` are all
    the request's inputs: a chunked request holds no token ids (schema.py)."""
    total = 0
    for index, text in enumerate(texts):
        try:
            counted = tokenizer.count_at_least(text, max_tokens - total) + tokenizer.special_tokens
        except UntokenizableText as e:  # it names text 0 of the one it was given
            raise UntokenizableText(index, e.reason) from None
        total += counted
        if total > max_tokens:
            so_far = f" (the inputs up to it at least {total})" if index else ""
            raise TooLarge(
                f"`{request.field}[{index}]` has at least {counted} tokens{so_far}, more than the "
                f"limit of {max_tokens} tokens per request (--max-client-batch-size times the model's maximum input length), "
                "even before windows overlap: split the document across requests"
            )


def check_window_tokens(request: EmbedRequest, windows: Windows, max_tokens: int) -> None:
    """A 413 for a chunked request whose windows hold more tokens than one request may run."""
    total = int(windows.tokenized.lengths.sum())
    if total > max_tokens:
        per_text = np.bincount([p.text for p in windows.placements], weights=windows.tokenized.lengths, minlength=len(windows.texts))
        largest = int(np.argmax(per_text))
        raise TooLarge(
            f"the inputs come to {total} tokens in {len(windows.placements)} windows (`{request.field}[{largest}]` alone "
            f"{int(per_text[largest])} tokens), more than the limit of {max_tokens} tokens per request "
            "(--max-client-batch-size times the model's maximum input length): split the document across requests, "
            "or send a smaller `stride`"
        )


def check_lengths(request: EmbedRequest, tokenized: Tokenized) -> None:
    """A 413 naming the first input longer than the model maximum, unless truncate is on."""
    too_long, limit = tokenized.truncated, tokenized.limit
    if too_long and not request.truncate:
        first = too_long[0]
        raise TooLarge(
            f"`{request.field}[{first}]` has {tokenized.full_lengths[first]} tokens, more than the model's maximum input length "
            f'{limit} ({len(too_long)} input(s) too long): shorten it, or send "truncate": true to cut it to {limit} tokens'
        )


def check_json_size(request: EmbedRequest, tokens: list[int], info: EncoderInfo) -> None:
    """Refuse, before running, an output too large to send as JSON numbers."""
    options = request.options
    per_vector = info.hidden_size * (1 if options.combine in ("sum", "mean") else len(options.layers))
    floats = per_vector * (sum(tokens) if options.pool == "none" else len(tokens))
    if floats > JSON_FLOAT_LIMIT:
        binary = "header Accept: application/x-npy or application/x-npz" if request.field == "inputs" else '"encoding_format": "base64"'
        raise TooLarge(
            f"the response would hold {floats} floats, more than the JSON limit of {JSON_FLOAT_LIMIT}: ask for a binary "
            f"body ({binary}), fewer layers, or fewer inputs per request"
        )
