"""Request bodies into typed requests: ``/embed`` and ``/embed_all`` (TEI) and ``/v1/embeddings``
(OpenAI) into one EmbedRequest; ``/tokenize`` and ``/decode`` into their own.

Every refusal names the field: bad JSON and wrong types are 422, no input or an empty
string 400, more inputs than allowed 422 (TEI: 413). As in text-embeddings-inference, fields a route does
not know are ignored (TEI's clients send some, e.g. langchain's ``options``) and named in the
``x-ignored-fields`` response header; every known field, ours included, is checked. Inputs are
strings or token ids (OpenAI's and TEI's ``[int]`` and ``[[int]]``), run as given. Defaults follow TEI: the last layer,
pooled the model's own way (``EncoderInfo.default_pooling``, else mean), normalised
(per-token output is not, as TEI's /embed_all), one flat vector per input, no truncation unless the server runs with ``auto_truncate``.
``null`` counts as absent. Not handled here: token lengths (they need the tokenizer; see
pipeline.py).

Layerwise extensions beside TEI's ``truncate``: ``"overflow": "truncate" | "error" | "chunk"`` and
``"stride"`` (chunk only): "chunk" embeds a long input whole as overlapping windows merged as
runtime/windows.py defines; all windows' tokens count against the request's token limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..runtime import EncoderInfo
from ..runtime.errors import InputError
from ..runtime.options import POOLS, check_combine, check_pool, resolve_layers
from ..runtime.windows import check_overflow
from .errors import EmptyInput, InvalidRequest

OPTION_FIELDS = {"normalize", "truncate", "overflow", "stride", "layers", "pool", "combine"}
TEI_FIELDS = {"inputs", "truncation_direction", "prompt_name", "dimensions"} | OPTION_FIELDS  # TEI's /embed has no encoding_format
EMBED_ALL_FIELDS = TEI_FIELDS - {"pool"}  # always one vector per token
OPENAI_FIELDS = {"input", "model", "dimensions", "user", "encoding_format"} | OPTION_FIELDS
TRUNCATION_DIRECTIONS = ("right", "Right")  # layerwise keeps a text's start; TEI's "Left" is refused
TOKENIZE_FIELDS = {"inputs", "add_special_tokens", "prompt_name"}
DECODE_FIELDS = {"ids", "skip_special_tokens"}
ENCODINGS = ("float", "base64")
JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


@dataclass(frozen=True)
class EmbedOptions:
    """What a run computes; requests with equal options can share a run."""

    layers: tuple[int, ...]  # resolved, 0..num_layers
    pool: str  # "none": per-token states (TEI's /embed_all), else pooled
    combine: str | None
    normalize: bool
    chunk: bool = False  # "overflow": "chunk": long inputs run whole, as windows
    stride: int | None = None  # tokens shared by consecutive windows (None: the runtime's default)


@dataclass(frozen=True)
class EmbedRequest:
    """A validated embedding request, whichever route it came by."""

    field: str  # "inputs" or "input", for error messages
    texts: list[str | list[int]]  # a text, or token ids run as given
    options: EmbedOptions
    truncate: bool
    squeeze: bool  # drop the layer axis: TEI's [[float]] by default, OpenAI's one vector per input
    encoding: str  # "float" or "base64" (OpenAI's route only)
    ignored: tuple[str, ...] = ()  # unknown fields, ignored as TEI does


@dataclass(frozen=True)
class TokenizeRequest:
    texts: list[str]
    add_special_tokens: bool
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecodeRequest:
    ids: list[list[int]]
    skip_special_tokens: bool
    ignored: tuple[str, ...] = ()


def parse_tei(body: bytes, info: EncoderInfo, max_inputs: int, auto_truncate: bool = False) -> EmbedRequest:
    """``{"inputs": str | [str], "normalize", "truncate", "layers", "pool", "combine", "encoding_format", "dimensions"}``."""
    return _parse_tei(*_object(body, TEI_FIELDS, "/embed", "inputs"), info, max_inputs, auto_truncate)


def parse_tei_all(body: bytes, info: EncoderInfo, max_inputs: int, auto_truncate: bool = False) -> EmbedRequest:
    """``/embed_all``: as ``/embed`` without ``pool`` (every token's vector), not normalised unless asked."""
    return _parse_tei(*_object(body, EMBED_ALL_FIELDS, "/embed_all", "inputs"), info, max_inputs, auto_truncate, pool="none")


def parse_tokenize(body: bytes, max_inputs: int) -> TokenizeRequest:
    """``{"inputs": str | [str], "add_special_tokens": true}``, as TEI's /tokenize."""
    data, ignored = _object(body, TOKENIZE_FIELDS, "/tokenize", "inputs")
    texts = _texts(data, "inputs", max_inputs)
    _no_prompt(data)
    return TokenizeRequest(texts, _get(data, "add_special_tokens", bool, True), ignored)


def parse_decode(body: bytes, max_inputs: int) -> DecodeRequest:
    """``{"ids": [int] | [[int]], "skip_special_tokens": true}``, as TEI's /decode."""
    data, ignored = _object(body, DECODE_FIELDS, "/decode", "ids")
    value = data.get("ids")
    if not isinstance(value, list):
        raise InvalidRequest(f"`ids` must be a list of token ids or a list of such lists, got {_kind(value)}")
    batch = value if value and all(isinstance(v, list) for v in value) else [value]
    _check_batch_size(len(batch), max_inputs)
    for index, ids in enumerate(batch):
        where = f"`ids[{index}]`" if batch is value else "`ids`"
        if not ids:
            raise EmptyInput(f"{where} cannot be empty; send at least one token id")
        bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or i < 0]
        if bad:
            raise InvalidRequest(f"{where} must hold token ids (integers from 0), got {json.dumps(bad[0])}")
    return DecodeRequest(batch, _get(data, "skip_special_tokens", bool, True), ignored)


def _parse_tei(
    data: dict[str, Any], ignored: tuple[str, ...], info: EncoderInfo, max_inputs: int, auto_truncate: bool, pool: str | None = None
) -> EmbedRequest:
    texts = _inputs(data, "inputs", max_inputs)
    direction = _get(data, "truncation_direction", str, "Right")
    if direction not in TRUNCATION_DIRECTIONS:
        raise InvalidRequest(
            f"`truncation_direction` {direction!r} is not supported: layerwise keeps the start of a text; send 'Right' or leave it out"
        )
    _no_prompt(data)
    options = _options(data, info, pool)
    _check_dimensions(data, info, options)
    _no_chunked_ids(texts, options, "inputs")
    squeeze = data.get("layers") is None and options.combine is None
    return EmbedRequest("inputs", texts, options, _truncate(data, auto_truncate), squeeze, "float", ignored)


def _check_dimensions(data: dict[str, Any], info: EncoderInfo, options: EmbedOptions) -> None:
    """``dimensions`` is accepted only as the width the request gives anyway, or the model's hidden size
    (each layer's part of it): vectors are never shortened."""
    width = info.hidden_size * (len(options.layers) if options.combine == "concat" else 1)
    dimensions = _get(data, "dimensions", int, width)
    if dimensions not in (width, info.hidden_size):  # the hidden size: each layer's part of a concatenation
        raise InvalidRequest(
            f"`dimensions` {dimensions} is not available: this request gives {width}-dimensional vectors and layerwise does not shorten "
            "them; leave `dimensions` out"
        )


def _no_prompt(data: dict[str, Any]) -> None:
    if _get(data, "prompt_name", str, None) is not None:
        raise InvalidRequest("`prompt_name` is not supported: this server has no prompts configured; prepend the prompt to the text")


def parse_openai(body: bytes, info: EncoderInfo, max_inputs: int, auto_truncate: bool = False) -> EmbedRequest:
    """OpenAI's ``{"input", "model", "encoding_format", "dimensions", "user"}`` plus our option fields."""
    data, ignored = _object(body, OPENAI_FIELDS, "/v1/embeddings", "input")
    texts = _inputs(data, "input", max_inputs)
    _get(data, "model", str, None)
    _get(data, "user", str, None)
    options = _options(data, info)
    if options.pool == "none":
        raise InvalidRequest("`pool` 'none' (one vector per token) is served by /embed only; /v1/embeddings returns one vector per input")
    if options.combine is None and len(options.layers) > 1:
        raise InvalidRequest(
            f"`layers` {data['layers']!r} gives {len(options.layers)} vectors per input, but /v1/embeddings returns one: "
            "pass `combine` ('concat', 'sum' or 'mean'), or use /embed"
        )
    _check_dimensions(data, info, options)
    _no_chunked_ids(texts, options, "input")
    return EmbedRequest("input", texts, options, _truncate(data, auto_truncate), options.combine is None, _encoding(data), ignored)


def _no_chunked_ids(inputs: list[str | list[int]], options: EmbedOptions, field: str) -> None:
    index = next((i for i, item in enumerate(inputs) if isinstance(item, list)), None)
    if options.chunk and index is not None:
        raise InvalidRequest(
            f"`{field}[{index}]` is token ids, which `overflow` 'chunk' cannot split into windows (it splits texts): "
            "send the text, or cut the ids to the model's maximum input length yourself"
        )


def _object(body: bytes, known: set[str], route: str, field: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The body's JSON object without the fields ``route`` does not know, and those fields' names."""
    if not body.strip():
        raise InvalidRequest(f'request body is empty; {route} takes a JSON object such as {{"{field}": "some text"}}')
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"request body is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidRequest("request body nests too deeply to be a request") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {_kind(data)}")
    ignored = tuple(sorted(set(data) - known))
    return {k: v for k, v in data.items() if k in known}, ignored


def _texts(data: dict[str, Any], field: str, max_inputs: int) -> list[str]:
    value = data.get(field)
    if value is None:
        raise InvalidRequest(f"`{field}` is missing; send a string or a list of strings")
    if isinstance(value, str):
        if not value:
            raise EmptyInput(f"`{field}` is an empty string; send some text")
        return [value]
    if not isinstance(value, list):
        raise InvalidRequest(f"`{field}` must be a string or a list of strings, got {_kind(value)}")
    if not value:
        raise EmptyInput(f"`{field}` cannot be empty; send at least one string")
    _check_batch_size(len(value), max_inputs)
    for index, text in enumerate(value):
        if not isinstance(text, str):
            raise InvalidRequest(f"`{field}[{index}]` must be a string, got {_kind(text)}")
        if not text:
            raise EmptyInput(f"`{field}[{index}]` is an empty string; every input needs some text")
    return value


def _inputs(data: dict[str, Any], field: str, max_inputs: int) -> list[str | list[int]]:
    """A string, a list of token ids, or a list of strings and token-id lists (TEI's and OpenAI's inputs)."""
    value = data.get(field)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [_ids(value, f"`{field}`")]
    if not isinstance(value, list) or not any(isinstance(v, list) for v in value):
        return list(_texts(data, field, max_inputs))
    _check_batch_size(len(value), max_inputs)
    inputs: list[str | list[int]] = []
    for index, item in enumerate(value):
        where = f"`{field}[{index}]`"
        if isinstance(item, list):
            inputs.append(_ids(item, where))
        elif isinstance(item, str) and item:
            inputs.append(item)
        elif isinstance(item, str):
            raise EmptyInput(f"{where} is an empty string; every input needs some text")
        else:
            raise InvalidRequest(f"{where} must be a string or a list of token ids, got {_kind(item)}")
    return inputs


def _ids(value: list[Any], where: str) -> list[int]:
    if not value:
        raise EmptyInput(f"{where} is an empty list of token ids; send at least one id")
    for token in value:
        if not isinstance(token, int) or isinstance(token, bool) or token < 0:
            raise InvalidRequest(f"{where} must hold token ids (integers from 0), got {json.dumps(token)}")
    return value


def _check_batch_size(size: int, max_inputs: int) -> None:
    """A 422 (TEI answers 413): the API description bounds the count (maxItems), and a body that breaks
    its schema is a 422 like every other."""
    if size > max_inputs:
        raise InvalidRequest(
            f"batch size {size} > maximum allowed batch size {max_inputs}: split the request, "
            "or start the server with a larger --max-client-batch-size"
        )


def _options(data: dict[str, Any], info: EncoderInfo, pool: str | None = None) -> EmbedOptions:
    """The run's options; ``pool`` fixed by the route (``/embed_all``), else the request's or the model's own."""
    default_pool = info.default_pooling.get("pool")
    pool = pool or _get(data, "pool", str, default_pool if default_pool in POOLS else "mean")
    combine = _get(data, "combine", str, None)
    layers = data.get("layers")
    try:
        chosen = resolve_layers(layers, info.num_layers) if layers is not None else [info.num_layers]
        check_pool(pool)
        check_combine(combine)
    except InputError as e:
        raise InvalidRequest(str(e)) from None
    # TEI and OpenAI return unit vectors unless told otherwise; token states (TEI's /embed_all) stay raw
    normalize = _get(data, "normalize", bool, pool != "none")
    overflow = _get(data, "overflow", str, None)
    return EmbedOptions(tuple(chosen), pool, combine, normalize, overflow == "chunk", _get(data, "stride", int, None))


def _truncate(data: dict[str, Any], auto_truncate: bool) -> bool:
    """Whether too-long inputs are cut: TEI's ``truncate``, or our ``overflow`` (checked with ``stride`` as the runtime checks them)."""
    try:
        truncate = check_overflow(_get(data, "overflow", str, None), _get(data, "truncate", bool, None), _get(data, "stride", int, None))
    except InputError as e:
        raise InvalidRequest(str(e).replace("pass overflow or truncate", "send `overflow` or `truncate`")) from None
    return auto_truncate if truncate is None else truncate


def _encoding(data: dict[str, Any]) -> str:
    encoding = _get(data, "encoding_format", str, "float")
    if encoding not in ENCODINGS:
        raise InvalidRequest(f"`encoding_format` must be 'float' or 'base64', got {encoding!r}")
    return encoding


def _get(data: dict[str, Any], field: str, kind: type, default: Any) -> Any:
    """``data[field]`` checked to be ``kind`` (bool is not a number), or ``default`` when absent or null."""
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidRequest(f"`{field}` must be {JSON_TYPES[kind]}, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)
