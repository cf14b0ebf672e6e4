"""The request fields of every route, each declared once as a pydantic type, with the served model's limits.

tei.py and openai.py build their request models from these; the validation (pydantic's, in Rust,
by ``model_validate_json``) and the OpenAPI description (openapi.py) both come from those models,
so a bound cannot be documented and not enforced. Unions are tagged (``Tag``) and picked by the
value's JSON type (``Discriminator``): a refusal then has one cause, and its tags say what was
wrong where (parse.py words it). Bounds that need the model (layers, token ids, stride) are left
out while it loads: ``Limits`` then holds None for them. Not handled here: what fields mean
together (embed_body.py, rules.py) and the wording of refusals (parse.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag

from ..runtime import Encoder
from ..runtime.combine import COMBINES
from ..runtime.options import OVERFLOWS
from ..runtime.windows import STRIDE_DEFAULT_RULE

GAMMA = 1e6  # a scalar mix's largest scale: beyond it a vector's float32 norm can overflow to Inf (a 424, never a body)


@dataclass(frozen=True)
class Limits:
    """What the request models bound: the server's input count, and the model's (None while it loads)."""

    max_inputs: int
    num_layers: int | None = None
    vocab_size: int | None = None
    hidden_size: int | None = None
    max_stride: int | None = None  # a window's content tokens - 1

    @staticmethod
    def of(max_inputs: int, encoder: Encoder) -> Limits:
        info, tokenizer = encoder.info, encoder.tokenizer
        max_stride = info.max_length - tokenizer.special_tokens - 1
        return Limits(max_inputs, info.num_layers, tokenizer.vocab_size, info.hidden_size, max_stride)

    @property
    def states(self) -> int | None:
        """Hidden states: the embedding output and every layer's."""
        return None if self.num_layers is None else self.num_layers + 1


def _tagged(choose: Any, error: tuple[str, str] | None = None, **choices: Any) -> Any:
    """A union of ``choices`` (tag -> type), the one taken picked by ``choose(value)``; None picks
    none and refuses with ``error`` (pydantic error type, message)."""
    union: Any = Union[tuple(Annotated[kind, Tag(tag)] for tag, kind in choices.items())]  # noqa: UP007 - built at run time
    kind, message = error or (None, None)
    return Annotated[union, Discriminator(choose, custom_error_type=kind, custom_error_message=message)]


def _json_kind(value: Any, choices: dict[type, str]) -> str | None:
    return next((tag for kind, tag in choices.items() if isinstance(value, kind) and not isinstance(value, bool)), None)


Text = Annotated[str, Field(min_length=1)]


def token_ids(limits: Limits) -> Any:
    """One input as token ids: special tokens included, run as given, each in the vocabulary."""
    last = None if limits.vocab_size is None else limits.vocab_size - 1
    return Annotated[list[Annotated[int, Field(ge=0, le=last)]], Field(min_length=1)]


def _text_or_ids(value: Any) -> str:
    return "ids" if isinstance(value, list) else "text"


def _inputs_kind(value: Any) -> str | None:
    if isinstance(value, list) and value and all(type(item) is int for item in value):
        return "ids"  # one input as token ids; a list holding anything else is a batch
    return _json_kind(value, {str: "text", list: "batch"})


def inputs(limits: Limits) -> Any:
    """An embedding route's inputs: a text, token ids, or a list of at most ``max_inputs`` of either."""
    ids = token_ids(limits)
    item = _tagged(_text_or_ids, text=Text, ids=ids)
    batch = Annotated[list[item], Field(min_length=1, max_length=limits.max_inputs)]  # type: ignore[valid-type]
    return _tagged(_inputs_kind, ("inputs_type", "must be a string or a list of strings"), text=Text, ids=ids, batch=batch)


def texts(limits: Limits) -> Any:
    """/tokenize's inputs: a text or a list of at most ``max_inputs`` texts."""
    batch = Annotated[list[Text], Field(min_length=1, max_length=limits.max_inputs)]
    return _tagged(lambda value: _json_kind(value, {str: "text", list: "batch"}), ("inputs_type", "must be a string or a list of strings"),
                   text=Text, batch=batch)


def _sequences_kind(value: Any) -> str | None:
    if not isinstance(value, list):
        return None
    return "many" if value and all(isinstance(item, list) for item in value) else "one"


def sequences(limits: Limits) -> Any:
    """/decode's ids: one list of token ids, or a list of at most ``max_inputs`` such lists."""
    ids = token_ids(limits)
    many = Annotated[list[ids], Field(min_length=1, max_length=limits.max_inputs)]  # type: ignore[valid-type]
    return _tagged(_sequences_kind, ("ids_type", "must be a list of token ids or a list of such lists"), one=ids, many=many)


def layers(limits: Limits) -> Any:
    """Hidden states by index, 0 the embedding output and -1 the last layer, or "all"."""
    low, high = (None, None) if limits.num_layers is None else (-(limits.num_layers + 1), limits.num_layers)
    layer = Annotated[int, Field(ge=low, le=high)]
    return _tagged(
        lambda value: _json_kind(value, {int: "layer", list: "layer list", str: "all"}),
        ("layers_type", 'must be "all", an integer or a list of integers'),
        **{"layer": layer, "layer list": Annotated[list[layer], Field(min_length=1)], "all": Literal["all"]},
    )


def optional(kind: Any, description: str, **constraints: Any) -> Any:
    """An optional field: absent and ``null`` both mean the default."""
    return (Annotated[Optional[kind], Field(description=description, **constraints)], None)  # noqa: UP045 - kind is a run-time value


def option_fields(limits: Limits, pools: tuple[str, ...] | None) -> dict[str, Any]:
    """The embedding options both dialects take (``pools``: the route's choice of pool, None: none to choose),
    as ``create_model`` wants them. They map onto the runtime's ``EmbedOptions`` (embed_body.py)."""
    stride_max = {} if limits.max_stride is None else {"le": limits.max_stride}
    fields = {
        "normalize": optional(bool, "unit-length vectors; default true, false on /embed_all and for pool 'none'"),
        "truncate": optional(bool, "TEI's: cut inputs longer than the model maximum instead of a 413; not with `overflow`"),
        "overflow": optional(
            Literal[OVERFLOWS],
            "layerwise extension, instead of truncate: 'chunk' embeds a long text whole as overlapping windows (all windows' "
            "tokens count against max_request_tokens in /info); texts only",
        ),
        "stride": optional(
            int, f"with overflow 'chunk' only: tokens shared by consecutive windows (default {STRIDE_DEFAULT_RULE})", ge=0, **stride_max
        ),
        "dimensions": optional(
            int, "the model's hidden size (with combine 'concat' of up to every hidden state also the whole width); vectors are never "
            "shortened"
        ),
        "layers": optional(layers(limits), "hidden states: 0 is the embedding output, -1 the last layer; default the last"),
        "combine": optional(
            Literal[COMBINES],
            "layerwise extension: one vector from the chosen layers ('scalar_mix': softmax(`weights`) per layer, times `gamma`)",
        ),
        "weights": optional(
            list[float], "with combine 'scalar_mix' only: one number per chosen layer, in the order of `layers`", min_length=1
        ),
        "gamma": optional(
            float, f"with combine 'scalar_mix' only: the mix's scale (default 1), at most {GAMMA:g} either way", ge=-GAMMA, le=GAMMA
        ),
    }
    if pools:
        fields["pool"] = optional(Literal[pools], "default: the checkpoint's own pooling, else mean")
    return fields
