"""Scores over HTTP: TEI's ``POST /similarity`` and layerwise's ``POST /bertscore`` and ``POST /maxsim``.

``/similarity`` is text-embeddings-inference's (what huggingface_hub's
``InferenceClient.sentence_similarity`` posts): ``{"inputs": {"source_sentence": str, "sentences":
[str]}}`` -> the cosine of the source sentence's vector with each sentence's, the vectors as
``/embed`` makes them by default (the last layer, the model's own pooling, normalised), computed in
the same batched runs. ``/bertscore`` (runtime/bertscore.py: equal to the bert-score package) and
``/maxsim`` (runtime/maxsim.py: ColBERT's late interaction) take a ``layer`` field: a hidden state,
a list of them, or "all"; they run one at a time on the same worker as the embedding runs.
``/bertscore`` takes ``pairs`` of a candidate and its reference (or references: the best counts), so
a request cannot hold more candidates than references. All
three go through the same body limits, deadlines, admission cap and disconnect handling as
``/embed``, with at most ``--max-client-batch-size`` candidates, documents or sentences (and as
up to MAX_REFERENCES references each). Errors are TEI's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Optional, TypeVar, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..runtime.options import EmbedOptions
from . import fields
from .batcher import Batcher
from .body import INLINE_BYTES, ignored_header, read_body, unless_disconnected
from .embedding import run
from .errors import EmptyInput, InvalidRequest
from .fields import Limits, Text, optional
from .openapi import Doc, documented
from .parse import Body, Row, parse
from .render import json_bytes
from .rules import Rule, several_need_combine
from .settings import max_request_tokens
from .tei import DIALECT

B = TypeVar("B", bound=Body)
MAX_REFERENCES = 8  # references of one candidate at most: a request embeds at most --max-client-batch-size x 9 texts


SEVERAL_LAYERS = Rule(several_need_combine("layer"))  # /maxsim: one vector per token (the runtime refuses the rest)


class Similarity(Body):
    route: ClassVar[str] = "/similarity"
    field: ClassVar[str] = "inputs"
    example: ClassVar[str] = '{"inputs": {"source_sentence": "a text", "sentences": ["another", "a third"]}}'
    messages: ClassVar[Mapping[tuple[str, str], Row]] = {
        ("sentences", "missing"): (InvalidRequest, "`inputs.sentences` is missing; send the sentences to compare the source sentence with"),
        ("source_sentence", "missing"): (InvalidRequest, "`inputs.source_sentence` is missing; send the sentence to compare with"),
        ("sentences", "too_short"): (EmptyInput, "`inputs.sentences` cannot be empty; send at least one sentence"),
    }
    if TYPE_CHECKING:  # the fields similarity_model adds
        inputs: Any
        truncate: bool | None


class BERTScoreRequest(Body):
    route: ClassVar[str] = "/bertscore"
    field: ClassVar[str] = "pairs"
    example: ClassVar[str] = '{"pairs": [{"candidate": "a cat sat", "reference": "the cat sat"}], "layer": 4}'
    if TYPE_CHECKING:  # the fields bertscore_model adds
        pairs: list[Any]
        layer: Any
        idf: bool | None
        overflow: str | None


class MaxSimRequest(Body):
    route: ClassVar[str] = "/maxsim"
    field: ClassVar[str] = "documents"
    example: ClassVar[str] = '{"query": "cat on a mat", "documents": ["the cat sat on the mat"]}'
    rules: ClassVar[tuple[Rule, ...]] = (SEVERAL_LAYERS,)
    if TYPE_CHECKING:  # the fields maxsim_model adds
        query: str
        documents: list[str]
        layer: Any
        combine: str | None
        normalize: bool | None
        matches: bool | None


def _texts(limits: Limits, what: str) -> Any:
    return Annotated[list[Text], Field(min_length=1, max_length=limits.max_inputs, description=f"{what}; at most {limits.max_inputs}")]


class SimilarityInputs(BaseModel):
    source_sentence: Text
    sentences: list[Text] = Field(min_length=1)


@functools.cache
def similarity_model(limits: Limits) -> type[Similarity]:
    inputs = Annotated[SimilarityInputs, Field(description=f"the sentence and at most {limits.max_inputs} others to compare it with")]
    truncate = optional(bool, "cut sentences longer than the model maximum instead of a 413")
    return Similarity.for_limits(limits, inputs=(inputs, ...), truncate=truncate)


@functools.cache
def bertscore_model(limits: Limits) -> type[BERTScoreRequest]:
    several = Annotated[list[Text], Field(min_length=1, max_length=MAX_REFERENCES)]
    reference: Any = Annotated[Union[Text, several], Field(description="a reference, or a list of them (the best counts)")]  # noqa: UP007
    pair = create_model(
        "Pair",
        candidate=(Text, ...),
        reference=(reference, ...),
        __config__=ConfigDict(strict=True),
    )
    pairs = Annotated[list[pair], Field(min_length=1, max_length=limits.max_inputs, description="candidates, each with its references")]  # type: ignore[valid-type]
    return BERTScoreRequest.for_limits(
        limits,
        pairs=(pairs, ...),
        layer=(Annotated[fields.layers(limits), Field(description='a hidden state, a list of them, or "all" (one row each)')], ...),
        idf=optional(bool, "weight tokens by idf counted over the references (default false)"),
        overflow=optional(Literal["truncate", "error"], "texts over the model maximum: cut (the default, as bert-score) or refuse"),
    )


@functools.cache
def maxsim_model(limits: Limits) -> type[MaxSimRequest]:
    return MaxSimRequest.for_limits(
        limits,
        query=(Text, ...),
        documents=(_texts(limits, "the documents to score the query against"), ...),
        layer=optional(fields.layers(limits), "a hidden state (default the last), or several with `combine`"),
        combine=optional(Literal["concat", "sum", "mean"], "one vector per token from several layers"),
        normalize=optional(bool, "cosines (default true) or, false, dot products"),
        matches=optional(bool, "also each query token's best document token (default false)"),
    )


class BERTScoreAnswer(BaseModel):
    precision: list[Any]
    recall: list[Any]
    f1: list[Any]
    layers: list[int]
    hash: str = Field(description="what produced the scores: bundle, manifest digest, variant, layers, idf")
    truncated_candidates: list[int]


class MaxSimAnswer(BaseModel):
    scores: list[float]
    layers: list[int]
    query_tokens: list[str]
    matches: Optional[list[dict[str, Any]]] = None  # noqa: UP045 - pydantic reads it at run time


async def _read(request: Request, model: Callable[[Limits], type[B]], body: bytes) -> B:
    """``body`` parsed as ``model`` for the served model's limits, off the event loop when it is large."""
    read = functools.partial(parse, model(request.app.state.lifecycle.limits), body)
    return await asyncio.to_thread(read) if len(body) > INLINE_BYTES else read()


@documented(Doc("TEI's sentence similarity: the cosine of the source sentence with each of the others", similarity_model, list[float]))
async def similarity(request: Request) -> Response:
    settings = request.app.state.settings
    batcher: Batcher = request.app.state.lifecycle.batcher()
    body = await read_body(request, settings)
    with batcher.admit() as admission:
        parsed = await _read(request, similarity_model, body)
        info = batcher.encoder.info
        if len(parsed.inputs.sentences) > settings.max_client_batch_size:
            raise InvalidRequest(
                f"`inputs.sentences` holds {len(parsed.inputs.sentences)} sentences, more than the limit of "
                f"{settings.max_client_batch_size} (--max-client-batch-size): split the request"
            )
        default = info.default_pooling.get("pool") or "mean"
        options = EmbedOptions(layers=-1, pool=default if default != "none" else "mean", normalize=True,
                               overflow="truncate" if parsed.truncate or settings.auto_truncate else "error")  # fmt: skip
        texts: list[str | list[int]] = [parsed.inputs.source_sentence, *parsed.inputs.sentences]
        max_tokens = max_request_tokens(settings, info.max_length)
        done = await unless_disconnected(request, run(batcher, admission, texts, options, DIALECT, max_tokens, None))
        vectors = np.stack([row[0] for row in done.run.output]).astype(np.float64)
    cosines = vectors[1:] @ vectors[0]
    return Response(json_bytes([float(c) for c in cosines]), media_type="application/json", headers=ignored_header(parsed.ignored))


async def _scored(request: Request, model: Callable[[Limits], type[B]], work: Callable[[Any, B], Any]) -> tuple[B, Any]:
    """Read and parse a score request, then run ``work(encoder, parsed)`` on the embedding runs' worker."""
    settings = request.app.state.settings
    batcher: Batcher = request.app.state.lifecycle.batcher()
    body = await read_body(request, settings)
    with batcher.admit() as admission:
        parsed = await _read(request, model, body)
        result = await unless_disconnected(request, admission.alone(functools.partial(work, batcher.encoder, parsed)))
    return parsed, result


def _bertscore(encoder: Any, parsed: BERTScoreRequest) -> Any:
    """Scores as the Python API gives them; "truncate" cuts silently, the answer lists the cut candidates."""
    layers = parsed.layer if not isinstance(parsed.layer, list) else list(parsed.layer)
    candidates = [pair.candidate for pair in parsed.pairs]
    references = [pair.reference if isinstance(pair.reference, list) else [pair.reference] for pair in parsed.pairs]
    return encoder.bertscore(candidates, references, layers, idf=bool(parsed.idf), overflow=parsed.overflow or "truncate")


@documented(Doc("BERTScore (equal to the bert-score package 0.3.13) of each candidate against its references, from any layer",
                bertscore_model, BERTScoreAnswer))  # fmt: skip
async def bertscore(request: Request) -> Response:
    parsed, result = await _scored(request, bertscore_model, _bertscore)
    answer = {
        "precision": result.precision.tolist(),
        "recall": result.recall.tolist(),
        "f1": result.f1.tolist(),
        "layers": list(result.layers),
        "hash": result.hash,
        "truncated_candidates": list(result.truncated_candidates),
    }
    return Response(json_bytes(answer), media_type="application/json", headers=ignored_header(parsed.ignored))


def _maxsim(encoder: Any, parsed: MaxSimRequest) -> Any:
    layers = -1 if parsed.layer is None else parsed.layer if not isinstance(parsed.layer, list) else list(parsed.layer)
    return encoder.maxsim(parsed.query, parsed.documents, layers, combine=parsed.combine, normalize=parsed.normalize is not False,
                          return_matches=bool(parsed.matches))  # fmt: skip


@documented(Doc("MaxSim (ColBERT late interaction) of a query against documents, from any layer", maxsim_model, MaxSimAnswer))
async def maxsim(request: Request) -> Response:
    parsed, result = await _scored(request, maxsim_model, _maxsim)
    answer: dict[str, Any] = {"scores": result.scores.tolist(), "layers": list(result.layers), "query_tokens": list(result.query_tokens)}
    if result.matches is not None:
        answer["matches"] = [
            {"positions": m.positions.tolist(), "tokens": list(m.tokens), "similarities": m.similarities.tolist()} for m in result.matches
        ]
    return Response(json_bytes(answer), media_type="application/json", headers=ignored_header(parsed.ignored))


ROUTES = [
    Route("/similarity", similarity, methods=["POST"]),
    Route("/bertscore", bertscore, methods=["POST"]),
    Route("/maxsim", maxsim, methods=["POST"]),
]
