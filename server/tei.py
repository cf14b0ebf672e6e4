"""text-embeddings-inference's dialect: its request models, answers, error body and every route TEI has for an embedding model.

``POST /embed`` (also ``POST /`` and SageMaker's ``/invocations``) answers one vector per input,
``POST /embed_all`` every token's vectors (not normalised unless asked, no ``pool``), both as
nested JSON lists or, when the Accept header asks, ``.npy``/``.npz``; layerwise's extensions
(``layers``, ``pool``, ``combine``, ``overflow``, ...) are fields.py's. TEI has no
``encoding_format`` on /embed, so it is ignored there, as TEI ignores it: clients that send it
(huggingface_hub's ``InferenceClient``) read the answer as floats. ``GET /`` and ``/ping`` are
/health. ``POST /tokenize`` answers TEI's token objects ``{id, text, special, start, stop}``:
``start``/``stop`` are UTF-8 byte offsets (TEI's Rust tokenizer counts bytes), null for special
tokens, whose ``text`` is the token itself; it never truncates. ``POST /decode`` turns ids into
text. Errors are ``{"error": message, "error_type": kind}``. Not handled here: the embedding
flow (embedding.py) and OpenAI's route (openai.py).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tokenizers import Encoding

from ..runtime.options import POOLS
from . import fields, status
from .body import INLINE_BYTES, ignored_header, read_body
from .dialect import Dialect, ErrorBody
from .embed_body import EmbedBody
from .embedding import Answer, endpoint
from .fields import Limits, optional
from .openapi import Doc, documented
from .parse import Body, parse
from .render import json_bytes, vectors


class Error(ErrorBody):
    error: str
    error_type: str = Field(description="validation, empty, tokenizer, backend, overloaded, unhealthy, ...")

    @classmethod
    def of(cls, message: str, kind: str, status: int) -> Error:
        return cls(error=message, error_type=kind)


def _render(answer: Answer) -> bytes:
    return json_bytes(vectors(answer.vectors(), "float"))


DIALECT = Dialect("tei", "inputs", Error, _render, binary=True)
INPUTS = "a string, a list of strings, token ids ([int], special tokens included, run as given) or a list mixing both"
PROMPT_NAME = optional(None, "not supported (no prompts configured): null or absent")


class TeiEmbed(EmbedBody):
    route: ClassVar[str] = "/embed"
    example: ClassVar[str] = '{"inputs": "some text"}'


class TeiEmbedAll(TeiEmbed):
    route: ClassVar[str] = "/embed_all"
    route_pool: ClassVar[str | None] = "none"


def _embed_fields(limits: Limits) -> dict[str, Any]:
    description = f"{INPUTS}; at most {limits.max_inputs} inputs"
    return {
        "inputs": (Annotated[fields.inputs(limits), Field(description=description, examples=["What is Deep Learning?"])], ...),
        "truncation_direction": optional(Literal["right", "Right"], "only 'Right': layerwise keeps the start of a text"),
        "prompt_name": PROMPT_NAME,
    }


@functools.cache
def embed_model(limits: Limits) -> type[TeiEmbed]:
    return TeiEmbed.for_limits(limits, **_embed_fields(limits), **fields.option_fields(limits, POOLS))


@functools.cache
def embed_all_model(limits: Limits) -> type[TeiEmbedAll]:
    return TeiEmbedAll.for_limits(limits, **_embed_fields(limits), **fields.option_fields(limits, None))


class Tokenize(Body):
    route: ClassVar[str] = "/tokenize"
    field: ClassVar[str] = "inputs"
    example: ClassVar[str] = '{"inputs": "some text"}'
    if TYPE_CHECKING:  # the fields tokenize_model adds
        inputs: str | list[str]
        add_special_tokens: bool | None


class Decode(Body):
    route: ClassVar[str] = "/decode"
    field: ClassVar[str] = "ids"
    example: ClassVar[str] = '{"ids": [101, 102]}'
    if TYPE_CHECKING:  # the fields decode_model adds
        ids: list[int] | list[list[int]]
        skip_special_tokens: bool | None


@functools.cache
def tokenize_model(limits: Limits) -> type[Tokenize]:
    inputs: Any = Annotated[fields.texts(limits), Field(description=f"a string or a list of strings; at most {limits.max_inputs}")]
    special = optional(bool, "wrap each input in the model's special tokens; default true")
    return Tokenize.for_limits(limits, inputs=(inputs, ...), add_special_tokens=special, prompt_name=PROMPT_NAME)


@functools.cache
def decode_model(limits: Limits) -> type[Decode]:
    ids: Any = Annotated[fields.sequences(limits), Field(description=f"token ids, or a list of at most {limits.max_inputs} lists of them")]
    skip = optional(bool, "leave the special tokens out of the text; default true")
    return Decode.for_limits(limits, ids=(ids, ...), skip_special_tokens=skip)


class Token(BaseModel):
    id: int
    text: str
    special: bool
    start: int | None = Field(description="UTF-8 byte offset, null for special tokens")
    stop: int | None


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


@documented(Doc("TEI's token objects per input", tokenize_model, list[list[Token]]))
async def tokenize(request: Request) -> Response:
    lifecycle = request.app.state.lifecycle
    tokenizer = lifecycle.batcher().encoder.tokenizer  # 503 until the model is ready
    body = await read_body(request, request.app.state.settings)
    parsed = parse(tokenize_model(lifecycle.limits), body)
    texts = [parsed.inputs] if isinstance(parsed.inputs, str) else parsed.inputs
    special = parsed.add_special_tokens is not False

    def answer() -> list[list[dict[str, Any]]]:
        return [token_objects(text, encoding) for text, encoding in zip(texts, tokenizer.tokens(texts, special))]

    tokens = await asyncio.to_thread(answer) if len(body) > INLINE_BYTES else answer()
    return JSONResponse(tokens, headers=ignored_header(parsed.ignored))


@documented(Doc("Texts for token ids", decode_model, list[str]))
async def decode(request: Request) -> Response:
    lifecycle = request.app.state.lifecycle
    tokenizer = lifecycle.batcher().encoder.tokenizer
    parsed = parse(decode_model(lifecycle.limits), await read_body(request, request.app.state.settings))
    ids = parsed.ids if parsed.ids and isinstance(parsed.ids[0], list) else [parsed.ids]
    texts = tokenizer.decode(ids, parsed.skip_special_tokens is not False)
    return JSONResponse(texts, headers=ignored_header(parsed.ignored))


VECTORS = list[list[Any]]  # per input a vector, or per layer (or per token) a vector
EMBED = "One vector per input (TEI /embed; also POST / and /invocations), with layers, pool and combine"
embed = endpoint(DIALECT, EMBED, embed_model, VECTORS)
embed_all = endpoint(DIALECT, "Every token's vectors per input (TEI /embed_all), with layers and combine", embed_all_model, VECTORS)
ROUTES = [
    Route("/embed", embed, methods=["POST"]),
    Route("/embed_all", embed_all, methods=["POST"]),
    Route("/", status.by_method(GET=status.health, POST=embed), methods=["GET", "POST"]),
    Route("/invocations", embed, methods=["POST"]),
    Route("/ping", status.health, methods=["GET"]),
    Route("/tokenize", tokenize, methods=["POST"]),
    Route("/decode", decode, methods=["POST"]),
]
