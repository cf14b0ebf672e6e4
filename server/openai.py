"""OpenAI's dialect: ``POST /v1/embeddings`` (also ``/embeddings``, as TEI), its request model, answer and error body.

The request is OpenAI's ``{"input", "model", "encoding_format", "dimensions", "user"}`` plus
layerwise's option fields (fields.py); ``model`` and ``user`` are accepted and not used (the
server serves one model). One vector per input: ``pool`` 'none' is refused and several layers
need ``combine`` (rules.ONE_VECTOR). ``"encoding_format": "base64"`` gives each vector as
little-endian float32 bytes, as the OpenAI client asks by default. Errors are
``{"error": {"message", "type", "code"}}``. Not handled here: the embedding flow (embedding.py).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field
from starlette.routing import Route

from ..runtime.options import POOLS
from . import fields
from .dialect import Dialect, ErrorBody
from .embed_body import EmbedBody
from .embedding import Answer, endpoint
from .errors import InvalidRequest
from .fields import Limits, optional
from .parse import BY_TYPE, Row
from .render import json_bytes, vectors
from .rules import EMBED_RULES, ONE_VECTOR, Rule

POOLED = tuple(pool for pool in POOLS if pool != "none")


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int


class Error(ErrorBody):
    error: ErrorDetail

    @classmethod
    def of(cls, message: str, kind: str, status: int) -> Error:
        return cls(error=ErrorDetail(message=message, type=kind, code=status))


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="numbers, or with encoding_format 'base64' little-endian float32 bytes")


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


def _render(answer: Answer) -> bytes:
    items = vectors(answer.vectors(), answer.body.encoding)
    data = [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(items)]
    usage = {"prompt_tokens": answer.tokens, "total_tokens": answer.tokens}
    return json_bytes({"object": "list", "data": data, "model": answer.model_id, "usage": usage})


DIALECT = Dialect("openai", "input", Error, _render)


def _pool(words: dict[str, Any]) -> str:
    if words["value"] == '"none"':
        return "`pool` 'none' (one vector per token) is served by /embed only; /v1/embeddings returns one vector per input"
    literal = BY_TYPE["literal_error"][1]
    assert callable(literal)
    return literal(words)


class OpenAIEmbed(EmbedBody):
    route: ClassVar[str] = "/v1/embeddings"
    field: ClassVar[str] = "input"
    example: ClassVar[str] = '{"input": "some text"}'
    one_vector: ClassVar[bool] = True
    rules: ClassVar[tuple[Rule, ...]] = (*EMBED_RULES, ONE_VECTOR)
    messages: ClassVar[Mapping[tuple[str, str], Row]] = {("pool", "literal_error"): (InvalidRequest, _pool)}


@functools.cache
def embed_model(limits: Limits) -> type[OpenAIEmbed]:
    description = f"a string, a list of strings, token ids ([int]) or a list mixing both; at most {limits.max_inputs} inputs"
    return OpenAIEmbed.for_limits(
        limits,
        input=(Annotated[fields.inputs(limits), Field(description=description, examples=["What is Deep Learning?"])], ...),
        model=optional(str, "accepted, not used: the server serves one model"),
        user=optional(str, "accepted, not used"),
        encoding_format=optional(Literal["float", "base64"], "default float"),
        **fields.option_fields(limits, POOLED),
    )


embed = endpoint(DIALECT, "OpenAI embeddings (also /embeddings)", embed_model, EmbeddingList)
ROUTES = [Route("/v1/embeddings", embed, methods=["POST"]), Route("/embeddings", embed, methods=["POST"])]
