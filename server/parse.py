"""Request bodies into request models, and pydantic's refusals into the server's words.

``Body`` is the base of every request model: strict JSON types (a boolean is not a number, "5"
not an integer), ``null`` as absent, and fields a route does not know kept aside, ignored as TEI
ignores them and named in the ``x-ignored-fields`` header. ``parse`` validates in one pass
(``model_validate_json``: parsed and checked in Rust) and words the first refusal from ``ROWS``,
one table keyed by what was wrong (the field, or the tags of fields.py's unions) and pydantic's
error type (``BY_TYPE`` by the type alone where no row says more): 422 for a wrong type or value,
400 for an empty input, the tokenizer's 422 for an id outside its vocabulary or a lone surrogate.
Not handled here: what fields mean together (rules.py) and the runtime's own refusals (the
``InputError``s EmbedOptions raises, worded by errors.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..runtime.errors import UntokenizableText
from ..runtime.tokenize import not_unicode
from .errors import EmptyInput, InvalidRequest, TokenizerError
from .fields import Limits
from .rules import Rule

JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
JSON_NAMES = {"string": "a string", "bool": "a boolean", "int": "an integer", "float": "a number", "list": "a list"}  # pydantic's types
BATCH_TAGS = ("batch", "many")  # the unions' tags whose items are the request's inputs, named `field[i]`
B = TypeVar("B", bound="Body")


def _schema_extra(schema: dict[str, Any], model: type[Body]) -> None:
    """The model's JSON Schema, with what it refuses across fields (rules.py) in its ``allOf``."""
    rules = [schema for rule in model.rules for schema in rule.schemas(model.limits, model.field)]
    if rules:
        schema["allOf"] = rules


class Body(BaseModel):
    """A request body; subclasses are built per ``Limits`` (tei.py, openai.py) and set the class variables."""

    model_config = ConfigDict(strict=True, extra="allow", json_schema_extra=_schema_extra)
    route: ClassVar[str]  # the route's name in messages: "/embed"
    field: ClassVar[str]  # the required field: "inputs"
    example: ClassVar[str]  # a smallest body
    limits: ClassVar[Limits]
    rules: ClassVar[tuple[Rule, ...]] = ()  # combinations refused across fields
    messages: ClassVar[Mapping[tuple[str, str], Row]] = {}  # rows of ROWS this route words otherwise

    @classmethod
    def for_limits(cls: type[B], limits: Limits, **fields: Any) -> type[B]:
        """This model with ``fields`` (``create_model``'s field definitions, from fields.py) bounded by ``limits``."""
        model = create_model(cls.__name__, __base__=cls, **fields)
        model.limits = limits
        return model

    @property
    def ignored(self) -> tuple[str, ...]:
        """The fields this route does not know, sorted."""
        return tuple(sorted(self.model_extra or ()))


def parse(model: type[B], body: bytes) -> B:
    """``body`` as a ``model``, or the RequestError naming the first thing wrong with it."""
    if not body.strip():
        raise InvalidRequest(f"request body is empty; {model.route} takes a JSON object such as {model.example}")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        if first["type"] != "json_invalid":
            raise refusal(first, model) from None
    # pydantic's JSON parser refused it: Python's names the fault, or reads it (a lone surrogate
    # escape such as "\ud800" is JSON; the tokenizer then refuses that input by its index)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidRequest("request body nests too deeply to be a request") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise refusal(e.errors(include_url=False)[0], model) from None


def refusal(error: Any, model: type[Body]) -> Exception:
    """One pydantic error as the server's refusal, worded by the first of ``model.messages``, ``ROWS`` and ``BY_TYPE`` that has it."""
    loc, kind, value = tuple(error["loc"]), error["type"], error["input"]
    if value is None and len(loc) == 1 and kind != "none_required":  # null counts as absent
        kind = "missing"
    words = _words(loc, error, value, model.limits)
    if kind == "string_unicode" and loc[:1] == (model.field,):  # a lone surrogate in an input: the tokenizer's refusal
        return UntokenizableText(words["index"], not_unicode(value) or error["msg"])
    what = _what(loc)
    row = model.messages.get((what, kind)) or ROWS.get((what, kind)) or BY_TYPE.get(kind) or (InvalidRequest, "{where}: {msg}")
    exception, message = row
    return exception(message(words) if callable(message) else message.format(**words))


def _what(loc: tuple[Any, ...]) -> str:
    """What a location names, by its tags: ("inputs", "batch", 1, "text") -> "batch[].text"; ("weights", 0) -> "weights[]"."""
    if not loc:
        return "body"
    parts, tagged = [str(loc[0])], False
    for part in loc[1:]:
        if isinstance(part, int):
            parts[-1] += "[]"
        elif tagged:
            parts.append(part)
        else:
            parts, tagged = [part], True
    return ".".join(parts)


def _words(loc: tuple[Any, ...], error: Any, value: Any, limits: Limits) -> dict[str, Any]:
    """What a row's message may name: ``where`` (`inputs` or `inputs[i]`), ``input`` (`inputs[i]`, i 0 for
    one input), ``index``, ``value`` (as JSON), ``kind`` (its JSON type), ``repr``, and the error's figures."""
    field = str(loc[0]) if loc else "body"
    index = next((part for before, part in zip(loc, loc[1:]) if before in BATCH_TAGS and isinstance(part, int)), None)
    context = dict(error.get("ctx") or {})
    if "le" in context:
        context["size"] = context["le"] + 1  # values from 0: a vocabulary's tokens, a window's content tokens
    return {
        **context,
        "where": f"`{field}`" if index is None else f"`{field}[{index}]`",
        "input": f"`{field}[{index or 0}]`",
        "index": index or 0,
        "value": _json(value),
        "kind": JSON_TYPES.get(type(value), "null" if value is None else type(value).__name__),
        "repr": repr(value),
        "msg": error["msg"],
        "num_layers": limits.num_layers,
        "states": limits.states,
    }


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _literal(words: dict[str, Any]) -> str:
    """A value outside a field's choices: its type if it is no string, else the choices."""
    if words["kind"] != "a string":
        return "{where} must be a string, got {kind}".format(**words)
    return "{where} must be {expected}, got {repr}".format(**words)


TOKEN_IDS = "{where} must hold token ids (integers from 0), got {value}"
VOCABULARY = (
    "{input} holds token id {value}, not in the model's vocabulary of {size} tokens (ids 0..{le}): send ids from this "
    "model's tokenizer (POST /tokenize gives them), or the text (langchain-openai sends tiktoken's ids unless told "
    "check_embedding_ctx_length=False)"
)
NOT_IN_VOCABULARY = "token id {value} (sequence {index}) is not in the vocabulary of {size} tokens (ids 0..{le})"  # the tokenizer's words
NO_LAYER = (
    "layer {value} does not exist: this model has hidden states 0..{num_layers} (0 is the embedding output), "
    "or -{states}..-1 counting from the end"
)
BATCH_SIZE = (
    "batch size {actual_length} > maximum allowed batch size {max_length}: split the request, or start the server with a larger "
    "--max-client-batch-size"
)
PROMPT = "is not supported: this server has no prompts configured; prepend the prompt to the text"
RIGHT = "is not supported: layerwise keeps the start of a text; send 'Right' or leave it out"
STRIDE = (
    "{where} must be an integer from 0 to {le} (windows hold {size} tokens besides the special ones, and consecutive windows "
    "must advance), got {value}; send a smaller `stride`"
)
Row = tuple[Callable[[str], Exception], "str | Callable[[dict[str, Any]], str]"]


def _rows(*entries: tuple[str, str, Callable[[str], Exception], Any]) -> dict[tuple[str, str], Row]:
    """``(whats, kinds, refusal, message)`` entries as one table: several whats separated by commas, kinds by spaces."""
    rows = ((what, kinds, refusal, message) for whats, kinds, refusal, message in entries for what in whats.split(","))
    return {(what, kind): (refusal, message) for what, kinds, refusal, message in rows for kind in kinds.split()}


# (what was wrong, pydantic error type) -> (refusal, message); what: a field, or the tags of fields.py's unions
ROWS: dict[tuple[str, str], Row] = _rows(
    ("body", "model_type", InvalidRequest, "request body must be a JSON object, got {kind}"),
    ("inputs,input", "missing", InvalidRequest, "{where} is missing; send a string or a list of strings"),
    ("ids", "missing", InvalidRequest, "{where} is missing; send a list of token ids or a list of such lists"),
    ("inputs,input,ids", "inputs_type ids_type", InvalidRequest, "{where} {msg}, got {kind}"),
    ("layers", "layers_type", InvalidRequest, '{where} must be "all", an integer or a list of integers, got {kind}'),
    ("all", "literal_error", InvalidRequest, '{where} must be "all", an integer or a list of integers, got {value}'),
    ("text", "string_too_short", EmptyInput, "{where} is an empty string; send some text"),
    ("batch[],batch[].text", "string_too_short", EmptyInput, "{where} is an empty string; every input needs some text"),
    ("batch", "too_short", EmptyInput, "{where} cannot be empty; send at least one string"),
    ("batch,many", "too_long", InvalidRequest, BATCH_SIZE),
    ("batch[].ids", "too_short", EmptyInput, "{where} is an empty list of token ids; send at least one id"),
    ("one,many[]", "too_short", EmptyInput, "{where} cannot be empty; send at least one token id"),
    ("ids[],batch[].ids[],one[],many[][]", "int_type greater_than_equal", InvalidRequest, TOKEN_IDS),
    ("ids[],batch[].ids[]", "less_than_equal", InvalidRequest, VOCABULARY),
    ("one[],many[][]", "less_than_equal", TokenizerError, NOT_IN_VOCABULARY),
    ("layer,layer list[]", "greater_than_equal less_than_equal", InvalidRequest, NO_LAYER),
    ("layer list[]", "int_type", InvalidRequest, "{where} must hold integers, got {value}"),
    ("layer list", "too_short", InvalidRequest, '{where} cannot be an empty list; send "all", a layer or a list of layers'),
    ("stride", "less_than_equal", InvalidRequest, STRIDE),
    ("weights[]", "float_type", InvalidRequest, "{where} must hold numbers, got {value}"),
    ("weights", "too_short", InvalidRequest, "{where} cannot be empty; send one number per chosen layer"),
    ("prompt_name", "none_required", InvalidRequest, "{where} " + PROMPT),
    ("truncation_direction", "literal_error", InvalidRequest, "{where} {repr} " + RIGHT),
)
# pydantic error type -> (refusal, message), where ROWS has no row for what was wrong
BY_TYPE: dict[str, Row] = {
    "missing": (InvalidRequest, "{where} is missing"),
    "literal_error": (InvalidRequest, _literal),
    "none_required": (InvalidRequest, "{where} is not supported; leave it out"),
    "greater_than_equal": (InvalidRequest, "{where} must be at least {ge}, got {value}"),
    "less_than_equal": (InvalidRequest, "{where} must be at most {le}, got {value}"),
    "string_too_short": (EmptyInput, "{where} is an empty string"),
    "string_unicode": (InvalidRequest, "{where} is not valid Unicode (it holds a lone surrogate); send valid text"),
    "too_short": (InvalidRequest, "{where} must hold at least {min_length} item(s)"),
    "too_long": (InvalidRequest, "{where} must hold at most {max_length} item(s), got {actual_length}"),
}
BY_TYPE |= {f"{kind}_type": (InvalidRequest, f"{{where}} must be {name}, got {{kind}}") for kind, name in JSON_NAMES.items()}
