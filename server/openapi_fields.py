"""JSON schemas of the request fields and answers, with the served model's own limits.

What the parsers (schema.py) refuse, the schemas say where OpenAPI 3.0 can: input counts
(``minItems``/``maxItems``), empty strings (``minLength``), token ids (0 .. vocabulary - 1),
layers (-(L+1) .. L), ``overflow`` and ``truncate`` never both. Optional fields are nullable:
``null`` counts as absent, as TEI's ``Option`` fields. Bounds that need the model are left
out while it loads. Not handled here: paths and operations (openapi.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runtime.combine import COMBINERS
from ..runtime.options import OVERFLOWS, POOLS
from .schema import ENCODINGS, TRUNCATION_DIRECTIONS


@dataclass(frozen=True)
class Limits:
    """What the schemas bound: the server's input count, and the model's (None while it loads)."""

    max_inputs: int
    num_layers: int | None = None
    vocab_size: int | None = None


def _ids(limits: Limits) -> dict[str, Any]:
    token = {"type": "integer", "minimum": 0} | ({"maximum": limits.vocab_size - 1} if limits.vocab_size else {})
    return {"type": "array", "items": token, "minItems": 1}


def _texts(limits: Limits, ids: bool) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    item = {"oneOf": [text, _ids(limits)]} if ids else text
    batch = {"type": "array", "items": item, "minItems": 1, "maxItems": limits.max_inputs}
    choices = [text, _ids(limits), batch] if ids else [text, batch]
    how = "a string, a list of strings" + (", token ids ([int], special tokens included, run as given) or a list mixing both" if ids else "")
    return {"oneOf": choices, "description": f"{how}; at most {limits.max_inputs} inputs", "example": "What is Deep Learning?"}


def _layers(limits: Limits) -> dict[str, Any]:
    layer: dict[str, Any] = {"type": "integer"}
    if limits.num_layers is not None:
        layer |= {"minimum": -(limits.num_layers + 1), "maximum": limits.num_layers}
    return {
        "oneOf": [layer, {"type": "array", "items": layer, "minItems": 1}, {"type": "string", "enum": ["all"]}],
        "description": "hidden states: 0 is the embedding output, -1 the last layer; default the last",
    }


def fields(limits: Limits) -> dict[str, dict[str, Any]]:
    """Every request field's schema, by name (schema.py's field sets pick them per route)."""
    return {
        "inputs": _texts(limits, ids=True),
        "input": _texts(limits, ids=True),
        "normalize": {"type": "boolean", "description": "unit-length vectors; default true on /embed, false on /embed_all"},
        "truncate": {"type": "boolean", "default": False, "description": "cut texts longer than the model maximum instead of a 413; not with `overflow`"},
        "overflow": {"type": "string", "enum": list(OVERFLOWS), "description": "layerwise extension, instead of truncate: 'chunk' embeds a long text whole as overlapping windows (all windows' tokens count against max_request_tokens in /info); texts only"},
        "stride": {"type": "integer", "minimum": 0, "description": "with overflow 'chunk' only: tokens shared by consecutive windows (default min(128, half a window))"},
        "truncation_direction": {"type": "string", "enum": list(TRUNCATION_DIRECTIONS), "default": "Right", "description": "only 'Right': layerwise keeps the start of a text"},
        "prompt_name": {"enum": [None], "description": "not supported (no prompts configured): null or absent"},
        "dimensions": {"type": "integer", "description": "only the width the request gives anyway (vectors are never shortened)"},
        "layers": _layers(limits),
        "pool": {"type": "string", "enum": list(POOLS), "description": "default: the checkpoint's own pooling, else mean"},
        "combine": {"type": "string", "enum": [name for name in COMBINERS if name]},
        "encoding_format": {"type": "string", "enum": list(ENCODINGS), "default": "float"},
        "model": {"type": "string"},
        "user": {"type": "string"},
        "add_special_tokens": {"type": "boolean", "default": True},
        "ids": {"oneOf": [_ids(limits), {"type": "array", "items": _ids(limits), "minItems": 1, "maxItems": limits.max_inputs}]},
        "skip_special_tokens": {"type": "boolean", "default": True},
    }


ONLY_ONE_OVERFLOW = {  # schema.py refuses overflow and truncate together, and stride without overflow 'chunk'
    "not": {
        "anyOf": [
            {"required": ["overflow", "truncate"], "properties": {"overflow": {"type": "string"}, "truncate": {"type": "boolean"}}},
            {"required": ["stride"], "properties": {"stride": {"type": "integer"}, "overflow": {"not": {"enum": ["chunk"]}}}},
        ]
    }
}


def request_schema(names: set[str], required: str, limits: Limits) -> dict[str, Any]:
    """A route's body: its fields (optional ones nullable), unknown fields allowed and ignored."""
    every = fields(limits)
    properties = {name: every[name] | ({} if name == required else {"nullable": True}) for name in sorted(names)}
    schema: dict[str, Any] = {"type": "object", "required": [required], "properties": properties, "additionalProperties": True}
    if "overflow" in names:
        schema |= ONLY_ONE_OVERFLOW
    return schema


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
OPENAI_ERROR = {"type": "object", "properties": {"error": {"type": "object", "properties": {"message": {"type": "string"}, "type": {"type": "string"}, "code": {"type": "integer"}}}}}
OPENAI_RESPONSE = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {"type": "array", "items": {"type": "object", "properties": {"object": {"type": "string"}, "index": {"type": "integer"}, "embedding": {}}}},
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
