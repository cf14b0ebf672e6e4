"""JSON schemas of the request fields and answers, with the served model's own limits.

What the parsers (schema.py) refuse, the schemas say where OpenAPI 3.0 can: input counts
(``minItems``/``maxItems``), empty strings (``minLength``), token ids (0 .. vocabulary - 1),
layers (-(L+1) .. L), ``stride``, ``dimensions``, and the field combinations it refuses
(``overflow`` with ``truncate``, ``stride`` without chunking, chunked token ids, several
layers without ``combine`` on /v1/embeddings). What no schema can say: a text's token count
(413 past the model maximum unless truncated). Optional fields are nullable:
``null`` counts as absent, as TEI's ``Option`` fields. Bounds that need the model are left
out while it loads. Not handled here: paths and operations (openapi.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runtime.combine import COMBINERS
from ..runtime.options import OVERFLOWS, POOLS
from ..runtime.windows import STRIDE_DEFAULT_RULE
from .schema import ENCODINGS, TRUNCATION_DIRECTIONS


@dataclass(frozen=True)
class Limits:
    """What the schemas bound: the server's input count, and the model's (None while it loads)."""

    max_inputs: int
    num_layers: int | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    max_stride: int | None = None  # a window's content tokens - 1


def _ids(limits: Limits) -> dict[str, Any]:
    token = {"type": "integer", "minimum": 0} | ({"maximum": limits.vocab_size - 1} if limits.vocab_size else {})
    return {"type": "array", "items": token, "minItems": 1}


def _texts(limits: Limits, ids: bool) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    item = {"oneOf": [text, _ids(limits)]} if ids else text
    batch = {"type": "array", "items": item, "minItems": 1, "maxItems": limits.max_inputs}
    choices = [text, _ids(limits), batch] if ids else [text, batch]
    how = "a string, a list of strings" + (
        ", token ids ([int], special tokens included, run as given) or a list mixing both" if ids else ""
    )
    return {"oneOf": choices, "description": f"{how}; at most {limits.max_inputs} inputs", "example": "What is Deep Learning?"}


def _layers(limits: Limits) -> dict[str, Any]:
    layer: dict[str, Any] = {"type": "integer"}
    if limits.num_layers is not None:
        layer |= {"minimum": -(limits.num_layers + 1), "maximum": limits.num_layers}
    return {
        "oneOf": [layer, {"type": "array", "items": layer, "minItems": 1}, {"type": "string", "enum": ["all"]}],
        "description": "hidden states: 0 is the embedding output, -1 the last layer; default the last",
    }


def fields(limits: Limits, kind: str) -> dict[str, dict[str, Any]]:
    """Every request field's schema, by name, for a route of ``kind`` ("tei", "openai", "tokenize", "decode")."""
    width = {"enum": [limits.hidden_size]} if limits.hidden_size else {}
    stride = {"maximum": limits.max_stride} if limits.max_stride is not None else {}
    pools = [p for p in POOLS if kind != "openai" or p != "none"]  # /v1/embeddings: one vector per input
    return {
        "inputs": _texts(limits, ids=kind != "tokenize"),
        "input": _texts(limits, ids=True),
        "normalize": {"type": "boolean", "description": "unit-length vectors; default true on /embed, false on /embed_all"},
        "truncate": {
            "type": "boolean",
            "default": False,
            "description": "cut texts longer than the model maximum instead of a 413; not with `overflow`",
        },
        "overflow": {
            "type": "string",
            "enum": list(OVERFLOWS),
            "description": "layerwise extension, instead of truncate: 'chunk' embeds a long text whole as overlapping windows (all "
                "windows' tokens count against max_request_tokens in /info); texts only",
        },
        "stride": {
            "type": "integer",
            "minimum": 0,
            **stride,
            "description": f"with overflow 'chunk' only: tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})",
        },
        "truncation_direction": {
            "type": "string",
            "enum": list(TRUNCATION_DIRECTIONS),
            "default": "Right",
            "description": "only 'Right': layerwise keeps the start of a text",
        },
        "prompt_name": {"type": "string", "enum": [None], "description": "not supported (no prompts configured): null or absent"},
        "dimensions": {
            "type": "integer",
            **width,
            "description": "the model's hidden size (with combine 'concat' also the whole width); vectors are never shortened",
        },
        "layers": _layers(limits),
        "pool": {"type": "string", "enum": pools, "description": "default: the checkpoint's own pooling, else mean"},
        "combine": {"type": "string", "enum": [name for name in COMBINERS if name]},
        "encoding_format": {"type": "string", "enum": list(ENCODINGS), "default": "float"},
        "model": {"type": "string"},
        "user": {"type": "string"},
        "add_special_tokens": {"type": "boolean", "default": True},
        "ids": {"oneOf": [_ids(limits), {"type": "array", "items": _ids(limits), "minItems": 1, "maxItems": limits.max_inputs}]},
        "skip_special_tokens": {"type": "boolean", "default": True},
    }


# What schema.py refuses across fields, each as "not (the refused combination)"; non-null values only.
OVERFLOW_AND_TRUNCATE = {
    "required": ["overflow", "truncate"],
    "properties": {"overflow": {"type": "string"}, "truncate": {"type": "boolean"}},
}
STRIDE_WITHOUT_CHUNK = {
    "required": ["stride"],
    "properties": {"stride": {"type": "integer"}, "overflow": {"nullable": True, "not": {"enum": ["chunk"]}}},
}


def _chunked_ids(field: str) -> dict[str, Any]:
    """overflow 'chunk' with token ids among the inputs (anything but a string or a list of strings)."""
    texts = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return {"required": ["overflow", field], "properties": {"overflow": {"type": "string", "enum": ["chunk"]}, field: {"not": texts}}}


SEVERAL_VECTORS = {  # /v1/embeddings: several layers need `combine`
    "required": ["layers"],
    "properties": {
        "layers": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 2}]},
        "combine": {"nullable": True, "not": {"type": "string"}},
    },
}


def request_schema(names: set[str], required: str, limits: Limits, kind: str) -> dict[str, Any]:
    """A route's body: its fields (optional ones nullable, ``null`` in their enums), unknown fields
    allowed and ignored, and the combinations schema.py refuses ruled out."""
    every = fields(limits, kind)
    properties = {}
    for name in sorted(names):
        field = dict(every[name])
        if name != required:
            field["nullable"] = True
            if "enum" in field and None not in field["enum"]:
                field["enum"] = [*field["enum"], None]  # OpenAPI 3.0: a nullable enum lists null
        properties[name] = field
    refused = []
    if "overflow" in names:
        refused += [OVERFLOW_AND_TRUNCATE, STRIDE_WITHOUT_CHUNK, _chunked_ids(required)]
    if kind == "openai":
        refused.append(SEVERAL_VECTORS)
    schema: dict[str, Any] = {"type": "object", "required": [required], "properties": properties, "additionalProperties": True}
    return schema | ({"allOf": [{"not": rule} for rule in refused]} if refused else {})


VECTORS = {"type": "array", "items": {"type": "array", "items": {}}}
TOKEN = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "special": {"type": "boolean"},
        "start": {"type": "integer", "nullable": True, "description": "UTF-8 byte offset, null for special tokens"},
        "stop": {"type": "integer", "nullable": True},
    },
}
TEI_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "error_type": {"type": "string"}}}
OPENAI_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "object", "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"}}}
    },
}
OPENAI_RESPONSE = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {"type": "object", "properties": {"object": {"type": "string"}, "index": {"type": "integer"}, "embedding": {}}},
        },
        "model": {"type": "string"},
        "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}},
    },
}
ERROR_STATUSES = {
    "400": "empty input",
    "408": "request body too slow (--body-timeout)",
    "413": "over a limit",
    "422": "invalid request or tokenizer error",
    "424": "backend error",
    "429": "overloaded",
    "503": "not ready",
}
