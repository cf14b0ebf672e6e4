"""A ``Dialect``: how one API (TEI's, OpenAI's) names its inputs and shapes its answers and errors.

tei.py and openai.py each declare theirs once, with the routes that speak it; the embedding
handler (embedding.py), the error answers (errors.py) and the API description (openapi.py) ask
it, and app.py maps each path to its route module's dialect (any other path answers as TEI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from typing_extensions import Self

from ..runtime.options import EmbedOptions
from .embed_body import EmbedBody
from .render import Output


@dataclass(frozen=True)
class Answer:
    """What a dialect renders: the request, the options it ran with, one array per input, the model's name, its tokens."""

    body: EmbedBody
    options: EmbedOptions
    output: Output
    model_id: str
    tokens: int

    def vectors(self) -> Output:
        """The arrays in the request's shape: flat vectors when it asked for TEI's or OpenAI's (``squeeze``)."""
        return [row[0] for row in self.output] if self.body.squeeze else self.output


class ErrorBody(BaseModel):
    """A dialect's error body: its declaration is both what is sent and what the API description shows."""

    @classmethod
    def of(cls, message: str, kind: str, status: int) -> Self:
        raise NotImplementedError


@dataclass(frozen=True)
class Dialect:
    name: str
    field: str  # the inputs field, as error messages name an input: `inputs[3]`
    error_model: type[ErrorBody]
    render: Callable[[Answer], bytes]  # an embedding answer's JSON body
    binary: bool = False  # also answers application/x-npy and -npz when the Accept header asks

    def error_body(self, message: str, kind: str, status: int) -> dict[str, Any]:
        """The error answer's JSON: a refusal's message, its kind (TEI's error_type) and its HTTP status."""
        return self.error_model.of(message, kind, status).model_dump()
