"""What the embedding routes share: the request's options mapped onto the runtime's ``EmbedOptions``.

Defaults follow TEI: the last layer, pooled the model's own way (``EncoderInfo.default_pooling``,
else mean), normalised (per-token output is not, as TEI's /embed_all), one flat vector per input,
too-long inputs refused unless the request says ``truncate`` (or ``overflow``) or the server runs
with ``--auto-truncate``. ``overflow`` "chunk" embeds a long text whole as windows sharing
``stride`` tokens (runtime/windows.py). The runtime checks the options once more when they are
built (``EmbedOptions``: stride without chunking, scalar_mix's weights); rules.py holds what the
server refuses across fields itself. Not handled here: the fields' types (fields.py) and a
route's own fields (tei.py, openai.py).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, ClassVar

from pydantic import model_validator

from ..runtime.options import POOLS, EmbedOptions
from .errors import InvalidRequest
from .parse import Body
from .rules import EMBED_RULES, Rule

Inputs = list[str | list[int]]  # texts, or token ids run as given


class EmbedBody(Body):
    """An embedding request; tei.py and openai.py build one per route and ``Limits``, adding the fields."""

    field: ClassVar[str] = "inputs"
    route_pool: ClassVar[str | None] = None  # the pool a route fixes: "none" on /embed_all
    one_vector: ClassVar[bool] = False  # one vector per input, whatever the layers (OpenAI's route)
    rules: ClassVar[tuple[Rule, ...]] = EMBED_RULES

    if TYPE_CHECKING:  # the fields fields.option_fields adds, as the validated model holds them
        normalize: bool | None
        truncate: bool | None
        overflow: str | None
        stride: int | None
        dimensions: int | None
        layers: int | str | list[int] | None
        combine: str | None
        weights: list[float] | None
        gamma: float | None

    @model_validator(mode="after")
    def _refuse_combinations(self) -> EmbedBody:
        for rule in self.rules:
            refused = rule.check(self) if rule.check else None
            if refused:
                raise InvalidRequest(refused)
        return self

    def input_list(self) -> Inputs:
        """The inputs as a list: a text or one input's token ids is a list of one."""
        value = getattr(self, self.field)
        if isinstance(value, str) or (value and isinstance(value[0], int)):
            return [value]
        return list(value)

    def layer_count(self) -> int:
        """How many layers are chosen (each entry of a list counts)."""
        if self.layers == "all":
            return self.limits.states or 1
        return len(self.layers) if isinstance(self.layers, list) else 1

    def embed_options(self, model_pool: object, auto_truncate: bool) -> EmbedOptions:
        """The run's options, layers resolved to hidden-state indices; an ``InputError`` where the runtime refuses them.
        ``model_pool``: the checkpoint's own pooling (``EncoderInfo.default_pooling["pool"]``), if any."""
        pool = self.route_pool or getattr(self, "pool", None) or (model_pool if model_pool in POOLS else "mean")
        assert self.limits.num_layers is not None  # requests are parsed once the model is loaded
        return _resolved(
            layers=tuple(self.layers) if isinstance(self.layers, list) else (-1 if self.layers is None else self.layers),
            pool=str(pool),
            combine=self.combine,
            normalize=pool != "none" if self.normalize is None else self.normalize,
            overflow=self.overflow or _overflow(self.truncate, auto_truncate),
            stride=self.stride,
            weights=None if self.weights is None else tuple(self.weights),
            gamma=1.0 if self.gamma is None else self.gamma,
            num_layers=self.limits.num_layers,
        )

    @property
    def squeeze(self) -> bool:
        """One flat vector per input (TEI's and OpenAI's shape), not the runtime's [layers, hidden]."""
        return self.combine is None and (self.one_vector or self.layers is None)

    @property
    def encoding(self) -> str:
        """"float" (JSON numbers) or "base64" (little-endian float32 per input)."""
        return getattr(self, "encoding_format", None) or "float"


@functools.lru_cache(maxsize=256)  # requests mostly repeat a few option sets: built and checked once each
def _resolved(
    *,
    layers: int | str | tuple[int, ...],
    pool: str,
    combine: str | None,
    normalize: bool,
    overflow: str,
    stride: int | None,
    weights: tuple[float, ...] | None,
    gamma: float,
    num_layers: int,
) -> EmbedOptions:
    options = EmbedOptions(
        layers=layers, pool=pool, combine=combine, normalize=normalize, overflow=overflow, stride=stride, weights=weights, gamma=gamma
    )
    return dataclasses.replace(options, layers=tuple(options.layer_indices(num_layers)))


def _overflow(truncate: bool | None, auto_truncate: bool) -> str:
    """TEI's ``truncate`` as the runtime's ``overflow``; the server's --auto-truncate when the request does not say."""
    cut = auto_truncate if truncate is None else truncate
    return "truncate" if cut else "error"
