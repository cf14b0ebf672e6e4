"""The rest of text-embeddings-inference's router for an embedding model: the default-task and
SageMaker routes, health aliases, the OpenAI alias, ``/tokenize`` and ``/decode``.

As TEI: ``POST /`` and ``POST /invocations`` are ``/embed``, ``GET /`` and ``GET /ping`` are
``/health``, ``POST /embeddings`` is ``/v1/embeddings``. ``/tokenize`` answers, per input,
TEI's token objects ``{id, text, special, start, stop}``: ``start``/``stop`` are UTF-8 byte
offsets into the input (TEI's Rust tokenizer counts bytes) and null for special tokens,
whose ``text`` is the token itself; it never truncates. ``/decode`` turns ids into text.
Not handled here: embedding itself (routes.py).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tokenizers import Encoding

from ..runtime.errors import InputError, UntokenizableText
from .errors import TokenizerError
from .routes import INLINE_BYTES, by_method, embed_openai, embed_tei, health, ignored_header, read_body
from .schema import parse_decode, parse_tokenize


def token_objects(text: str, encoding: Encoding) -> list[dict[str, Any]]:
    """TEI's tokens for one input. Example: "é!" -> [CLS], {"text": "é", "start": 0, "stop": 2}, {"text": "!", 2, 3}, [SEP]."""
    byte_at = list(itertools.accumulate((len(c.encode()) for c in text), initial=0))  # char offset -> byte offset
    tokens = []
    for token_id, token, (start, stop), special in zip(encoding.ids, encoding.tokens, encoding.offsets, encoding.special_tokens_mask):
        if special:
            tokens.append({"id": token_id, "text": token, "special": True, "start": None, "stop": None})
        else:
            tokens.append({"id": token_id, "text": text[start:stop], "special": False, "start": byte_at[start], "stop": byte_at[stop]})
    return tokens


async def tokenize(request: Request) -> Response:
    settings = request.app.state.settings
    tokenizer = request.app.state.lifecycle.batcher().encoder.tokenizer  # 503 until the model is ready
    body = await read_body(request, settings)
    parsed = parse_tokenize(body, settings.max_client_batch_size)

    def answer() -> list[list[dict[str, Any]]]:
        try:
            encodings = tokenizer.tokens(parsed.texts, parsed.add_special_tokens)
        except UntokenizableText as e:
            raise TokenizerError(f"`inputs[{e.index}]` {e.reason}") from None
        return [token_objects(text, encoding) for text, encoding in zip(parsed.texts, encodings)]

    tokens = await asyncio.to_thread(answer) if len(body) > INLINE_BYTES else answer()
    return JSONResponse(tokens, headers=ignored_header(parsed.ignored))


async def decode(request: Request) -> Response:
    settings = request.app.state.settings
    tokenizer = request.app.state.lifecycle.batcher().encoder.tokenizer
    parsed = parse_decode(await read_body(request, settings), settings.max_client_batch_size)
    try:
        texts = tokenizer.decode(parsed.ids, parsed.skip_special_tokens)
    except InputError as e:
        raise TokenizerError(str(e)) from None
    return JSONResponse(texts, headers=ignored_header(parsed.ignored))


TEI_ROUTES = [
    Route("/", by_method(GET=health, POST=embed_tei), methods=["GET", "POST"]),
    Route("/invocations", embed_tei, methods=["POST"]),
    Route("/ping", health, methods=["GET"]),
    Route("/embeddings", embed_openai, methods=["POST"]),
    Route("/tokenize", tokenize, methods=["POST"]),
    Route("/decode", decode, methods=["POST"]),
]
