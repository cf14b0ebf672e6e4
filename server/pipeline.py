"""One parsed embedding request: tokenize it once, enforce length and size limits, wait for its run.

Not handled here: HTTP (bodies, headers, statuses) and output formats (see render.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..runtime import EncoderInfo, Tokenized
from ..runtime.windows import Windows
from .batcher import Admission, Batcher, RunResult
from .errors import TooLarge
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
    inputs: Tokenized | Windows
    if request.options.chunk:
        inputs = await batcher.split(request.texts, request.options.stride)
        tokenization = time.perf_counter() - started
        tokenized, rows = inputs.tokenized, inputs.output_lengths
        check_window_tokens(request, inputs, max_tokens)
    else:
        inputs = tokenized = await batcher.tokenize(request.texts)
        tokenization = time.perf_counter() - started
        check_lengths(request, tokenized)
        rows = tokenized.lengths.tolist()  # after truncation
    if json_floats:
        check_json_size(request, rows, batcher.encoder.info)
    run = await admission.embed(inputs, request.options)
    return Embedded(run, int(tokenized.lengths.sum()), sum(len(text) for text in request.texts), tokenization)


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
            f"{limit} ({len(too_long)} input(s) too long): shorten it, or send \"truncate\": true to cut it to {limit} tokens"
        )


def check_json_size(request: EmbedRequest, tokens: list[int], info: EncoderInfo) -> None:
    """Refuse, before running, an output too large to send as JSON numbers."""
    options = request.options
    per_vector = info.hidden_size * (1 if options.combine in ("sum", "mean") else len(options.layers))
    floats = per_vector * (sum(tokens) if options.pool == "none" else len(tokens))
    if floats > JSON_FLOAT_LIMIT:
        raise TooLarge(
            f"the response would hold {floats} floats, more than the JSON limit of {JSON_FLOAT_LIMIT}: ask for a binary "
            'body (header Accept: application/x-npy or application/x-npz, or "encoding_format": "base64"), '
            "fewer layers, or fewer inputs per request"
        )
