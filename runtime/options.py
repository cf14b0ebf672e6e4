"""What a caller asks of ``Encoder.embed``: ``EmbedOptions``, the one options type, and its checks.

The Python keywords, the CLI flags, the server's request fields, Ray's ``Embedder`` and the
extract job all map onto ``EmbedOptions``; it checks what needs no model when built, and
``resolve`` checks the rest against the model once (layers, max_length, stride, weights). Every
refusal is an ``InputError`` naming the parameter, worded by each front end (runtime/errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .combine import COMBINES
from .errors import InputError
from .manifest import POOLING_KINDS

BATCH_SIZE = 32  # texts per run unless the caller says (the padded-token cap may cut a batch smaller)
POOLS = (*POOLING_KINDS, "none")
OVERFLOWS = ("truncate", "error", "chunk")  # what to do with a text longer than max_length (runtime/windows.py)
CORPUS_OVERFLOWS = ("truncate", "chunk")  # what `layerwise extract` takes: one long text must not stop a corpus job


@dataclass(frozen=True)
class EmbedOptions:
    """Which hidden states, pooled and combined how, and what happens to texts over ``max_length``.

    ``layers``: "all", an int or ints (0 is the embedding output, negative counts from the end).
    ``pool``: "mean", "max", "cls", or "none" for per-token states. ``combine``: None (one vector
    per layer), "concat", "sum", "mean", or "scalar_mix" (``softmax(weights)`` per layer, times
    ``gamma``, summed, as AllenNLP's ScalarMix). ``overflow``: None (cut with a TruncationWarning),
    "truncate" (cut), "error" (refuse), "chunk" (embed whole as windows sharing ``stride`` tokens).

    Example:
        >>> EmbedOptions(layers=[-4, -1], combine="concat").layers
        (-4, -1)
    """

    layers: str | int | tuple[int, ...] = "all"
    pool: str = "mean"
    combine: str | None = None
    normalize: bool = False
    overflow: str | None = None
    max_length: int | None = None
    stride: int | None = None
    batch_size: int = BATCH_SIZE
    weights: tuple[float, ...] | None = None
    gamma: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", _checked_layers(self.layers))
        _one_of("pool", self.pool, POOLS)
        _one_of("combine", self.combine, (None, *COMBINES))
        if self.overflow is not None:
            _one_of("overflow", self.overflow, OVERFLOWS)
        if not isinstance(self.normalize, bool):
            raise InputError("{p:normalize} must be True or False, got {value}", parameter="normalize", value=self.normalize)
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise InputError("{p:batch_size} must be a positive int, got {value}", parameter="batch_size", value=self.batch_size)
        # max_length's range needs the model (tokenize.TextTokenizer.check_limit), as stride's does (windows.check_stride)
        if self.stride is not None and self.overflow != "chunk":  # its range needs the model: windows.check_stride
            raise InputError(
                "{p:stride} applies to {s:overflow=chunk} only (the overlap of its windows): pass {s:overflow=chunk} with it, "
                "or leave {p:stride} out",
                parameter="stride",
                value=self.stride,
            )
        self._check_mix()

    def _check_mix(self) -> None:
        if self.combine != "scalar_mix":
            if self.weights is not None or self.gamma != 1.0:
                raise InputError(
                    "{p:weights} and {p:gamma} are the parameters of {s:combine=scalar_mix}: pass it with them, or leave them out",
                    parameter="weights",
                )
            return
        if self.weights is None:
            raise InputError("{s:combine=scalar_mix} needs {p:weights}, one number per chosen layer", parameter="weights")
        weights = tuple(self.weights) if isinstance(self.weights, (list, tuple)) else None
        if not weights or not all(_is_number(w) and np.isfinite(w) for w in weights):
            raise InputError("{p:weights} must be a non-empty list of finite numbers, got {value}", parameter="weights", value=self.weights)
        object.__setattr__(self, "weights", tuple(float(w) for w in weights))
        if not _is_number(self.gamma) or not np.isfinite(self.gamma):
            raise InputError("{p:gamma} must be a finite number, got {value}", parameter="gamma", value=self.gamma)

    def layer_indices(self, num_layers: int) -> list[int]:
        """The chosen layers as hidden-state indices 0..num_layers, in the caller's order.

        Example with num_layers=6: "all" -> [0..6]; -1 -> [6]; (0, -2) -> [0, 5].
        """
        count = num_layers + 1
        chosen = range(count) if self.layers == "all" else (self.layers,) if isinstance(self.layers, int) else self.layers
        assert not isinstance(chosen, str)  # __post_init__ allows no other string than "all"
        for layer in chosen:
            if not -count <= layer < count:
                raise InputError(
                    "layer {value} does not exist: this model has hidden states 0..{num_layers} (0 is the embedding output), "
                    "or -{count}..-1 counting from the end",
                    parameter="layers",
                    value=layer,
                    num_layers=num_layers,
                    count=count,
                )
        indices = [layer % count for layer in chosen]
        if self.weights is not None and len(self.weights) != len(indices):
            raise InputError(
                "{p:weights} has {value} numbers but {chosen} layers are chosen: give one weight per layer, in the order of {p:layers}",
                parameter="weights",
                value=len(self.weights),
                chosen=len(indices),
            )
        return indices

    def for_tokenized(self) -> EmbedOptions:
        """These options for texts already tokenized or split into windows (``Tokenized``, ``Windows``):
        what to compute, without the fields that apply when tokenizing (overflow, max_length, stride)."""
        return replace(self, overflow=None, max_length=None, stride=None)

    @property
    def truncate(self) -> bool | None:
        """What the tokenizer does with a too-long text: cut with a warning (None), cut (True), refuse (False)."""
        return {None: None, "truncate": True, "error": False}.get(self.overflow)


def options_from_keywords(truncate: bool | None = None, stacklevel: int = 3, **keywords: Any) -> EmbedOptions:
    """``EmbedOptions`` from the keyword API, with the deprecated ``truncate=`` as ``overflow`` (its warning
    ``stacklevel`` frames up: the caller of the public method)."""
    if truncate is not None:
        import warnings

        warnings.warn(
            f"truncate={truncate} is deprecated and will be removed: pass overflow={'truncate' if truncate else 'error'!r} instead",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if keywords.get("overflow") is not None:
            raise InputError(
                "pass {p:overflow} or {p:truncate}, not both "
                "({s:overflow=truncate} is truncate=True, {s:overflow=error} is truncate=False)",
                parameter="truncate",
            )
        keywords["overflow"] = "truncate" if truncate else "error"
    if isinstance(keywords.get("layers"), list):
        keywords["layers"] = tuple(keywords["layers"])
    if isinstance(keywords.get("weights"), list):
        keywords["weights"] = tuple(keywords["weights"])
    return EmbedOptions(**keywords)


def resolve_layers(layers: Any, num_layers: int) -> list[int]:
    """``layers`` as the keyword API takes it ("all", an int or ints) -> hidden-state indices 0..num_layers."""
    return EmbedOptions(layers=tuple(layers) if isinstance(layers, list) else layers).layer_indices(num_layers)


def check_texts(texts: Any) -> list[str]:
    """A str or a list/tuple of str, as a list; anything else is a TypeError naming the index."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, (list, tuple)):
        raise TypeError(f"texts must be a str or a list of str, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
    return list(texts)


def preview(text: str, width: int = 60) -> str:
    """A short, printable excerpt of a text for error messages."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def unique_sorted(layers: Sequence[int]) -> list[int]:
    return sorted(set(layers))


def _checked_layers(layers: Any) -> str | int | tuple[int, ...]:
    if isinstance(layers, str):
        if layers != "all":
            raise InputError("{p:layers} must be 'all', an int or a list of ints, got {value}", parameter="layers", value=layers)
        return layers
    if isinstance(layers, int) and not isinstance(layers, bool):
        return layers
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InputError("{p:layers} must be 'all', an int or a non-empty list of ints, got {value}", parameter="layers", value=layers)
    for layer in layers:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise InputError("{p:layers} must hold ints, got {value}", parameter="layers", value=layer)
    return tuple(layers)


def _one_of(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if not any(value is choice or (isinstance(value, str) and value == choice) for choice in allowed):
        listed = ", ".join(str(choice) if name == "pool" else repr(choice) for choice in allowed)
        raise InputError("{p:" + name + "} must be one of {allowed}, got {value}", parameter=name, value=value, allowed=listed)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
