"""Validate what a caller asks of ``Encoder.embed``: texts, layers, pooling, combining."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .combine import COMBINERS
from .errors import InputError
from .manifest import POOLING_KINDS

BATCH_SIZE = 32  # texts per run unless the caller says (the padded-token cap may cut a batch smaller)
POOLS = (*POOLING_KINDS, "none")
OVERFLOWS = ("truncate", "error", "chunk")  # what to do with a text longer than max_length (runtime/windows.py)
CORPUS_OVERFLOWS = ("truncate", "chunk")  # what `layerwise extract` takes: one long text must not stop a corpus job


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


def resolve_layers(layers: Any, num_layers: int) -> list[int]:
    """"all", an int or a list of ints (negative counts from the end) -> layer indices 0..L.

    Example with num_layers=6: "all" -> [0..6]; -1 -> [6]; [0, -2] -> [0, 5].
    """
    count = num_layers + 1
    if isinstance(layers, str):
        if layers != "all":
            raise InputError(f"layers must be 'all', an int or a list of ints, got {layers!r}")
        return list(range(count))
    chosen = [layers] if isinstance(layers, int) else layers
    if not isinstance(chosen, (list, tuple)) or not chosen:
        raise InputError(f"layers must be 'all', an int or a non-empty list of ints, got {layers!r}")
    resolved = []
    for layer in chosen:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise InputError(f"layers must hold ints, got {layer!r}")
        if not -count <= layer < count:
            raise InputError(
                f"layer {layer} does not exist: this model has hidden states 0..{num_layers} "
                f"(0 is the embedding output), or -{count}..-1 counting from the end"
            )
        resolved.append(layer % count)
    return resolved


def check_pool(pool: Any) -> str:
    if pool not in POOLS:
        raise InputError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    return pool


def check_combine(combine: Any) -> str | None:
    if not (combine is None or isinstance(combine, str)) or combine not in COMBINERS:
        names = ", ".join(repr(k) for k in COMBINERS)
        raise InputError(f"combine must be one of {names}, got {combine!r}")
    return combine


def check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def preview(text: str, width: int = 60) -> str:
    """A short, printable excerpt of a text for error messages."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def unique_sorted(layers: Sequence[int]) -> list[int]:
    return sorted(set(layers))
