"""One embedding request from body to answer, in either dialect: parse, tokenize once, enforce the limits, run, render.

Order: readiness (503), body size (413, before parsing) and body deadline (408), then the
concurrency cap (429 at once: a slow body holds no slot), parsing (422/400), the runtime's
options (422), token lengths (413), the batched run, NaN check (424), body. A client that
disconnects while its request waits is dropped (``unless_disconnected``). Token-id inputs skip
the tokenizer (``TextTokenizer.encode_ids``); rows stay in the request's order, so a runtime
error's text index is the request's input index. A chunked request's tokens are bounded before
its texts are split into windows (``check_chunk_budget``: splitting a 2 MB text takes seconds).
Bodies are parsed and answers written on the event loop when small, in a thread when large.
Not handled here: the dialects' fields and bodies (tei.py, openai.py), output formats (render.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ..runtime import Tokenized
from ..runtime.errors import UntokenizableText
from ..runtime.options import EmbedOptions
from ..runtime.tokenize import TOO_LONG, TextTokenizer, refuse_too_long
from ..runtime.windows import Windows
from .batcher import Admission, Batcher, RunResult
from .body import INLINE_BYTES, ignored_header, read_body, unless_disconnected
from .dialect import Answer, Dialect
from .embed_body import EmbedBody, Inputs
from .errors import TooLarge
from .fields import Limits
from .openapi import Doc, documented
from .parse import parse
from .render import binary_body, binary_media, check_acceptable, check_finite
from .settings import Settings, max_request_tokens

JSON_FLOAT_LIMIT = 1 << 24  # floats in one JSON-of-floats response (~350 MB of text); binary bodies are not capped
INLINE_FLOATS = 1 << 16  # larger outputs are checked and serialised in a thread
IDS_TOO_LONG = (
    "{text} has {value} tokens, more than {p:max_length} {limit} ({count} of {total} {item}(s) too long); "
    "pass {s:overflow=truncate} to cut them, or send fewer ids"
)


@dataclass(frozen=True)
class Embedded:
    """A request's share of a run, and the figures of its own behind the timing headers."""

    run: RunResult
    tokens: int
    characters: int
    tokenization_s: float

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


def endpoint(
    dialect: Dialect, summary: str, model: Callable[[Limits], type[EmbedBody]], answer: Any
) -> Callable[[Request], Awaitable[Response]]:
    """The handler of an embedding route speaking ``dialect``, its body a ``model(limits)``, documented as ``summary``
    with a JSON answer of type ``answer``."""

    async def embed(request: Request) -> Response:
        started = time.perf_counter()
        settings: Settings = request.app.state.settings
        lifecycle = request.app.state.lifecycle
        batcher: Batcher = lifecycle.batcher()
        body = await read_body(request, settings)
        with batcher.admit() as admission:
            read = functools.partial(parse, model(lifecycle.limits), body)
            parsed = await asyncio.to_thread(read) if len(body) > INLINE_BYTES else read()
            info = batcher.encoder.info
            options = parsed.embed_options(info.default_pooling.get("pool"), settings.auto_truncate)
            media = binary_media(request.headers.get("accept")) if dialect.binary else None
            check_acceptable(options, media)
            limit = JSON_FLOAT_LIMIT if media is None and parsed.encoding == "float" else None
            work = run(batcher, admission, parsed.input_list(), options, dialect, max_request_tokens(settings, info.max_length), limit)
            done = await unless_disconnected(request, work)
            answer = Answer(parsed, options, done.run.output, settings.model_id, done.tokens)
            finish = functools.partial(_finished, dialect, answer, media)
            content = await asyncio.to_thread(finish) if sum(a.size for a in answer.output) > INLINE_FLOATS else finish()
        headers = done.headers(time.perf_counter() - started, info.provider) | ignored_header(parsed.ignored)
        return Response(content, media_type=media or "application/json", headers=headers)

    return documented(Doc(summary, model, answer, dialect.error_model, dialect.binary))(embed)


def _finished(dialect: Dialect, answer: Answer, media: str | None) -> bytes:
    """The body in the asked format, made only after NaN and Inf are ruled out (else a 424)."""
    check_finite(dialect.field, answer.output)
    if media is not None:
        return binary_body(answer.options, answer.output, media, answer.body.squeeze)
    return dialect.render(answer)


async def run(
    batcher: Batcher,
    admission: Admission,
    inputs: Inputs,
    options: EmbedOptions,
    dialect: Dialect,
    max_tokens: int,
    json_floats: int | None,
) -> Embedded:
    """Check the inputs against the model's limits (``max_tokens``: all windows of chunked inputs together; ``json_floats``:
    the most floats a JSON answer may hold, None for binary), then queue them."""
    started, field = time.perf_counter(), dialect.field
    texts = [item for item in inputs if isinstance(item, str)]
    characters = sum(map(len, texts))
    run_inputs: Tokenized | Windows
    if options.overflow == "chunk":  # texts only (rules.CHUNKING)
        if characters > max_tokens:  # fewer characters cannot make a costly split
            check = functools.partial(check_chunk_budget, field, texts, batcher.encoder.tokenizer, max_tokens)
            await batcher.offload(check, characters)
        run_inputs = await batcher.split(texts, options.stride)
        tokenized, rows = run_inputs.tokenized, run_inputs.output_lengths
        check_window_tokens(field, run_inputs, max_tokens)
    else:
        run_inputs = tokenized = await _tokenized(batcher, inputs, texts)
        if options.overflow == "error":
            too_long = next((row for row, n in enumerate(tokenized.full_lengths) if n > tokenized.limit), None)
            ids = too_long is not None and not isinstance(inputs[too_long], str)
            refuse_too_long(tokenized.full_lengths, tokenized.limit, IDS_TOO_LONG if ids else TOO_LONG)
        rows = tokenized.lengths.tolist()  # after truncation
    tokenization = time.perf_counter() - started
    if json_floats is not None:
        check_json_size(dialect, options, rows, batcher.encoder.info.hidden_size, json_floats)
    result = await admission.embed(run_inputs, options)
    return Embedded(result, int(tokenized.lengths.sum()), characters, tokenization)


async def _tokenized(batcher: Batcher, inputs: Inputs, texts: list[str]) -> Tokenized:
    """The texts and token ids as one Tokenized in the request's order, cut to the model maximum."""
    if len(texts) == len(inputs):
        return await batcher.tokenize(texts)
    at = [row for row, item in enumerate(inputs) if isinstance(item, str)]
    try:
        from_texts = await batcher.tokenize(texts)
    except UntokenizableText as e:  # it counts texts only: name the request's input
        raise UntokenizableText(at[e.index], e.reason) from None
    from_ids = batcher.encoder.tokenizer.encode_ids([item for item in inputs if not isinstance(item, str)], truncate=True)
    if not texts:
        return from_ids
    text_rows, id_rows = iter(range(len(texts))), iter(range(len(inputs) - len(texts)))
    parts = []
    for item in inputs:
        source, row = (from_texts, next(text_rows)) if isinstance(item, str) else (from_ids, next(id_rows))
        parts.append(source.rows(slice(row, row + 1)))
    return Tokenized.concat(parts)


def check_chunk_budget(field: str, texts: list[str], tokenizer: TextTokenizer, max_tokens: int) -> None:
    """A 413 before any window is made when the texts' tokens alone (each counted only until the
    remaining budget is passed, on prefixes) pass what one request may run. ``texts`` are all
    the request's inputs: a chunked request holds no token ids (rules.CHUNKING)."""
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
                f"`{field}[{index}]` has at least {counted} tokens{so_far}, more than the "
                f"limit of {max_tokens} tokens per request (--max-client-batch-size times the model's maximum input length), "
                "even before windows overlap: split the document across requests"
            )


def check_window_tokens(field: str, windows: Windows, max_tokens: int) -> None:
    """A 413 for a chunked request whose windows hold more tokens than one request may run."""
    total = int(windows.tokenized.lengths.sum())
    if total > max_tokens:
        per_text = np.bincount([p.text for p in windows.placements], weights=windows.tokenized.lengths, minlength=len(windows.texts))
        largest = int(np.argmax(per_text))
        raise TooLarge(
            f"the inputs come to {total} tokens in {len(windows.placements)} windows (`{field}[{largest}]` alone "
            f"{int(per_text[largest])} tokens), more than the limit of {max_tokens} tokens per request "
            "(--max-client-batch-size times the model's maximum input length): split the document across requests, "
            "or send a smaller `stride`"
        )


def check_json_size(dialect: Dialect, options: EmbedOptions, tokens: list[int], hidden_size: int, limit: int) -> None:
    """Refuse, before running, an output too large to send as JSON numbers."""
    assert isinstance(options.layers, tuple)  # resolved (EmbedBody.embed_options)
    per_vector = hidden_size * (len(options.layers) if options.combine in (None, "concat") else 1)
    floats = per_vector * (sum(tokens) if options.pool == "none" else len(tokens))
    if floats > limit:
        binary = "header Accept: application/x-npy or application/x-npz" if dialect.binary else '"encoding_format": "base64"'
        raise TooLarge(
            f"the response would hold {floats} floats, more than the JSON limit of {limit}: ask for a binary "
            f"body ({binary}), fewer layers, or fewer inputs per request"
        )
