"""The field combinations the embedding routes refuse, each declared once: its JSON Schema and who refuses it.

A ``Rule``'s ``schemas`` are the refused combinations as OpenAPI 3.0 JSON Schema (the request
models put them in their description as ``allOf: [{not: ...}]``, so schemathesis and other
generators know them); its ``check`` is the server's own refusal, or None where the runtime
refuses it (``EmbedOptions``: stride without chunking, scalar_mix's weights and gamma). In these
schemas a field absent or ``null`` takes its default. What JSON Schema cannot say, a rule spells
out for each count up to the model's hidden states (a scalar mix's weights per layer, a
concatenation's width); the server refuses the longer layer lists those rules leave open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .fields import Limits

Schema = dict[str, Any]
ABSENT = {"nullable": True, "not": {}}  # absent or null
ONE_LAYER = {"type": "integer", "nullable": True}  # absent, null or one layer
MIX = {"enum": ["scalar_mix"]}
NOT_MIX = {"nullable": True, "not": {"enum": ["scalar_mix"]}}


class EmbedBody(Protocol):
    """What the checks read of an embedding request (embed_body.EmbedBody)."""

    overflow: str | None
    truncate: bool | None
    combine: str | None
    layers: int | str | list[int] | None
    dimensions: int | None

    @property
    def limits(self) -> Limits: ...

    @property
    def field(self) -> str: ...

    def input_list(self) -> list[str | list[int]]: ...

    def layer_count(self) -> int: ...


@dataclass(frozen=True)
class Rule:
    schemas: Callable[[Limits, str], list[Schema]]  # (limits, the inputs field) -> refused combinations
    check: Callable[[EmbedBody], str | None] | None = None  # the refusal's message, None if allowed; None: the runtime refuses


def _both(body: EmbedBody) -> str | None:
    if body.overflow is None or body.truncate is None:
        return None
    return 'send `overflow` or `truncate`, not both ("truncate": true is "overflow": "truncate", "truncate": false is "overflow": "error")'


OVERFLOW_AND_TRUNCATE = Rule(
    lambda limits, field: [
        {"required": ["overflow", "truncate"], "properties": {"overflow": {"type": "string"}, "truncate": {"type": "boolean"}}}
    ],
    _both,
)
STRIDE_WITHOUT_CHUNK = Rule(
    lambda limits, field: [
        {"required": ["stride"], "properties": {"stride": {"type": "integer"}, "overflow": {"nullable": True, "not": {"enum": ["chunk"]}}}}
    ]
)


def _chunked_ids(body: EmbedBody) -> str | None:
    index = next((i for i, item in enumerate(body.input_list()) if isinstance(item, list)), None)
    if body.overflow != "chunk" or index is None:
        return None
    return (
        f"`{body.field}[{index}]` is token ids, which `overflow` 'chunk' cannot split into windows (it splits texts): "
        "send the text, or cut the ids to the model's maximum input length yourself"
    )


CHUNKED_IDS = Rule(
    lambda limits, field: [
        {
            "required": ["overflow", field],
            "properties": {
                "overflow": {"type": "string", "enum": ["chunk"]},
                field: {"not": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
            },
        }
    ],
    _chunked_ids,
)


def _counted(limits: Limits, combine: str, refused: Callable[[int], Schema]) -> list[Schema]:
    """For ``combine``, ``refused(n)`` (the schema of a wrong companion value when ``n`` layers are chosen) for each
    way of choosing them: one (absent, null or an int), every hidden state ("all"), and lists of 1 to that many."""
    states = limits.states or 0
    forms = [(1, ONE_LAYER)] + ([(states, {"type": "string"})] if states else [])
    forms += [(n, {"type": "array", "minItems": n, "maxItems": n}) for n in range(1, states + 1)]
    return [
        {
            "required": ["combine", *([] if layers is ONE_LAYER else ["layers"]), *refused(n)],
            "properties": {"combine": {"enum": [combine]}, "layers": layers, **refused(n)},
        }
        for n, layers in forms
    ]


def _mix_schemas(limits: Limits, field: str) -> list[Schema]:
    """scalar_mix: weights with it and only with it (gamma too, unless 1), one weight per chosen layer."""
    rules: list[Schema] = [
        {"required": ["combine"], "properties": {"combine": MIX, "weights": ABSENT}},
        {"required": ["weights"], "properties": {"weights": {"type": "array"}, "combine": NOT_MIX}},
        {"required": ["gamma"], "properties": {"gamma": {"type": "number", "not": {"enum": [1]}}, "combine": NOT_MIX}},
    ]
    rules += _counted(limits, "scalar_mix", lambda n: {"weights": {"type": "array", "not": {"minItems": n, "maxItems": n}}})
    if limits.states:
        longer = {"type": "array", "minItems": limits.states + 1}
        rules.append({"required": ["combine", "layers"], "properties": {"combine": MIX, "layers": longer}})
    return rules


def _mix(body: EmbedBody) -> str | None:
    states = body.limits.states
    if body.combine != "scalar_mix" or not isinstance(body.layers, list) or states is None or len(body.layers) <= states:
        return None
    return f"`combine` 'scalar_mix' weighs at most {states} layers (this model's hidden states), got a list of {len(body.layers)}"


SCALAR_MIX = Rule(_mix_schemas, _mix)


def _dimension_schemas(limits: Limits, field: str) -> list[Schema]:
    """``dimensions``: the hidden size, or with combine 'concat' the whole width of up to every hidden state."""
    hidden = limits.hidden_size
    if hidden is None:
        return []
    other = {"type": "integer", "not": {"enum": [hidden]}}
    not_concat = {"nullable": True, "not": {"enum": ["concat"]}}
    rules: list[Schema] = [{"required": ["dimensions"], "properties": {"dimensions": other, "combine": not_concat}}]
    rules += _counted(limits, "concat", lambda n: {"dimensions": {"type": "integer", "not": {"enum": sorted({hidden, n * hidden})}}})
    if limits.states:
        longer = {"type": "array", "minItems": limits.states + 1}
        concat = {"combine": {"enum": ["concat"]}, "layers": longer, "dimensions": other}
        rules.append({"required": ["combine", "layers", "dimensions"], "properties": concat})
    return rules


def _dimensions(body: EmbedBody) -> str | None:
    hidden, states = body.limits.hidden_size, body.limits.states
    if body.dimensions is None or hidden is None:
        return None
    count = body.layer_count()
    width = hidden * count if body.combine == "concat" else hidden
    if body.dimensions == hidden or (body.dimensions == width and (states is None or count <= states)):
        return None
    return (
        f"`dimensions` {body.dimensions} is not available: this request gives {width}-dimensional vectors and layerwise does not "
        "shorten them; leave `dimensions` out"
    )


DIMENSIONS = Rule(_dimension_schemas, _dimensions)


def _one_vector(body: EmbedBody) -> str | None:
    count = body.layer_count()
    if body.combine is not None or count < 2:
        return None
    return (
        f"`layers` {body.layers!r} gives {count} vectors per input, but /v1/embeddings returns one: pass `combine` "
        "('concat', 'sum' or 'mean'), or use /embed"
    )


ONE_VECTOR = Rule(  # OpenAI's route: one vector per input, so several layers need `combine`
    lambda limits, field: [
        {
            "required": ["layers"],
            "properties": {
                "layers": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 2}]},
                "combine": {"nullable": True, "not": {"type": "string"}},
            },
        }
    ],
    _one_vector,
)
EMBED_RULES = (OVERFLOW_AND_TRUNCATE, STRIDE_WITHOUT_CHUNK, CHUNKED_IDS, SCALAR_MIX, DIMENSIONS)
