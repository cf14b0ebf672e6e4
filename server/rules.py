"""The field combinations the embedding routes refuse, each declared once: its JSON Schema and who refuses it.

A ``Rule``'s ``schemas`` say it in OpenAPI 3.0 JSON Schema, as members of the request body's
``allOf`` (so schemathesis and other generators know them): a refused combination as
``{not: ...}``, or, where a rule depends on a count, the combinations allowed as ``{anyOf: ...}``,
one for each count up to the model's hidden states (a scalar mix's weights per layer, a
concatenation's width; the server refuses the longer layer lists these leave out). Its ``check``
is the server's own refusal, or None where the runtime refuses it (``EmbedOptions``: stride without
chunking, scalar_mix's weights and gamma). In these schemas a field absent or ``null`` takes its default.
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
LISTED = 10  # layer lists spelled out one count at a time up to this long: past it generators give up expanding the schema
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
    schemas: Callable[[Limits, str], list[Schema]]  # (limits, the inputs field) -> members of the body's ``allOf``
    check: Callable[[EmbedBody], str | None] | None = None  # the refusal's message, None if allowed; None: the runtime refuses


def _both(body: EmbedBody) -> str | None:
    if body.overflow is None or body.truncate is None:
        return None
    return 'send `overflow` or `truncate`, not both ("truncate": true is "overflow": "truncate", "truncate": false is "overflow": "error")'


OVERFLOW_AND_TRUNCATE = Rule(
    lambda limits, field: [
        {"not": {"required": ["overflow", "truncate"], "properties": {"overflow": {"type": "string"}, "truncate": {"type": "boolean"}}}}
    ],
    _both,
)
def _chunked_ids(body: EmbedBody) -> str | None:
    index = next((i for i, item in enumerate(body.input_list()) if isinstance(item, list)), None)
    if body.overflow != "chunk" or index is None:
        return None
    return (
        f"`{body.field}[{index}]` is token ids, which `overflow` 'chunk' cannot split into windows (it splits texts): "
        "send the text, or cut the ids to the model's maximum input length yourself"
    )


def _chunking_schemas(limits: Limits, field: str) -> list[Schema]:
    """``overflow`` 'chunk' and what goes with it only: ``stride`` (the runtime refuses it without), texts (the server
    refuses token ids, which it cannot split). The two ways allowed, as one ``anyOf``."""
    texts = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    not_chunk = {"properties": {"overflow": {"nullable": True, "not": {"enum": ["chunk"]}}, "stride": ABSENT}}
    return [{"anyOf": [not_chunk, {"required": ["overflow", field], "properties": {"overflow": {"enum": ["chunk"]}, field: texts}}]}]


CHUNKING = Rule(_chunking_schemas, _chunked_ids)


def _layer_count_schemas(limits: Limits, field: str) -> list[Schema]:
    """What depends on how many layers are chosen, as the combinations allowed for each way of choosing ``n`` of
    them (absent, null or an int: one; "all": every hidden state; a list of ``n``): ``combine`` 'scalar_mix' with
    ``n`` weights (and no weights or gamma without it), and ``dimensions`` the hidden size or, with 'concat', ``n``
    times it. One ``anyOf`` by count: refused combinations as ``not``s would multiply past what generators expand.
    Lists longer than ``LISTED`` are described without a mix or a concatenation's width, which the server
    takes up to the model's hidden states: the description is stricter there than the server, never looser."""
    hidden, states = limits.hidden_size, limits.states
    no_mix = {"weights": ABSENT, "gamma": {"nullable": True, "enum": [1]}}
    if hidden is None or states is None:  # while the model loads: the counts are unknown
        mix = {"required": ["combine", "weights"], "properties": {"combine": MIX}}
        return [{"anyOf": [{"properties": {"combine": NOT_MIX, **no_mix}}, mix]}]

    def widths(*values: int) -> Schema:
        return {"dimensions": {"type": "integer", "nullable": True, "enum": [*sorted(set(values)), None]}}

    def allowed(n: int) -> list[Schema]:  # n 0: a longer list (described without a mix or a concatenation's width)
        plain = {"combine": {"nullable": True, "not": {"enum": ["concat", "scalar_mix"]}}}
        ways: list[Schema] = [{"properties": {**plain, **no_mix, **widths(hidden)}}]
        concat = {"combine": {"enum": ["concat"]}, **no_mix, **widths(hidden, n * hidden or hidden)}
        ways.append({"required": ["combine"], "properties": concat})
        if n:
            weights = {"weights": {"type": "array", "minItems": n, "maxItems": n}}
            ways.append({"required": ["combine", "weights"], "properties": {"combine": MIX, **weights, **widths(hidden)}})
        return ways

    listed = min(states, LISTED)
    forms = [(1, ONE_LAYER), (states, {"type": "string"})]
    forms += [(n, {"type": "array", "minItems": n, "maxItems": n}) for n in range(1, listed + 1)]
    forms.append((0, {"type": "array", "minItems": listed + 1}))
    chosen = [{"properties": {"layers": layers}, "anyOf": allowed(n)} for n, layers in forms]
    return [{"anyOf": [way if layers is ONE_LAYER else {"required": ["layers"], **way} for way, (_, layers) in zip(chosen, forms)]}]


def _layer_counts(body: EmbedBody) -> str | None:
    """The server's part of them: a mix of more layers than hidden states, and ``dimensions``."""
    hidden, states, count = body.limits.hidden_size, body.limits.states, body.layer_count()
    if states is not None and body.combine == "scalar_mix" and isinstance(body.layers, list) and count > states:
        return f"`combine` 'scalar_mix' weighs at most {states} layers (this model's hidden states), got a list of {count}"
    if body.dimensions is None or hidden is None:
        return None
    width = hidden * count if body.combine == "concat" else hidden
    if body.dimensions == hidden or (body.dimensions == width and (states is None or count <= states)):
        return None
    return (
        f"`dimensions` {body.dimensions} is not available: this request gives {width}-dimensional vectors and layerwise does not "
        "shorten them; leave `dimensions` out"
    )


LAYER_COUNTS = Rule(_layer_count_schemas, _layer_counts)


def _one_vector(body: EmbedBody) -> str | None:
    count = body.layer_count()
    if body.combine is not None or count < 2:
        return None
    return (
        f"`layers` {body.layers!r} gives {count} vectors per input, but /v1/embeddings returns one: pass `combine` "
        "('concat', 'sum' or 'mean'), or use /embed"
    )


def several_need_combine(name: str) -> Callable[[Limits, str], list[Schema]]:
    """The schema of "several layers in ``name`` (a list of two or more, or a name such as "all") need `combine`"."""
    several = {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 2}]}
    refused = {"required": [name], "properties": {name: several, "combine": {"nullable": True, "not": {"type": "string"}}}}
    return lambda limits, field: [{"not": refused}]


ONE_VECTOR = Rule(several_need_combine("layers"), _one_vector)  # OpenAI's route: one vector per input
EMBED_RULES = (OVERFLOW_AND_TRUNCATE, CHUNKING, LAYER_COUNTS)
