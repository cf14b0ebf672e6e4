"""Exceptions the runtime raises, and ``LayerwiseError``, the base of every error layerwise raises
on purpose; none of them knows anything about HTTP or CLIs. The exporter's errors are in
exporter/errors.py, ``OutputError`` (an unwritable output file) in io/atomic.py.

An ``InputError`` carries what went wrong as fields (the parameter, the text's index, the value,
the limit) and a message template; each front end words it with its own ``Wording`` (CLI flag
names and global indices, ``inputs[i]`` on HTTP, keyword names in Python), so none of them
parses or rewrites a message.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class LayerwiseError(Exception):
    """Base class of every error layerwise raises on purpose."""


class BundleError(LayerwiseError):
    """The bundle folder is missing, malformed, tampered with or unsafe to load."""


class ProviderError(LayerwiseError):
    """The requested ONNX Runtime execution provider cannot be used."""


@dataclass(frozen=True)
class Wording:
    """How one front end names things in an InputError's message.

    ``parameter``: a parameter by its Python keyword ("max_length" -> "--max-length" on the CLI);
    ``setting``: a parameter with a value ("overflow", "chunk" -> "overflow='chunk'");
    ``text``: a text by its index in the call; ``value``: a value. ``names`` overrides parameter
    names that a front end calls otherwise (HTTP has no max_length: "the model's maximum input length");
    ``item`` is what one input is called in counts.
    """

    parameter: Callable[[str], str]
    setting: Callable[[str, Any], str]
    text: Callable[[int], str]
    value: Callable[[Any], str]
    names: Mapping[str, str] = field(default_factory=dict)
    item: str = "text"  # what one input is called: "text", or "input" on HTTP

    def name(self, parameter: str) -> str:
        return self.names.get(parameter) or self.parameter(parameter)


PYTHON = Wording(
    parameter=lambda name: name,
    setting=lambda name, value: f"{name}={value!r}",
    text=lambda index: f"text {index}",
    value=repr,
)


def cli_wording(offset: int = 0, names: Mapping[str, str] | None = None) -> Wording:
    """The command line's words: flags, and texts counted from the first of all (``offset``: where this call's texts start)."""

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    return Wording(
        parameter=flag,
        setting=lambda name, value: f"{flag(name)} {value}",
        text=lambda index: f"text {index + offset}",
        value=lambda value: value if isinstance(value, str) else repr(value),
        names=names or {},
    )


def http_wording(field_name: str, index_of: Callable[[int], int] = lambda i: i, names: Mapping[str, str] | None = None) -> Wording:
    """A request's words: JSON fields, and inputs as ``field_name[i]`` (``index_of`` maps a row of the call to the request's input)."""
    return Wording(
        parameter=lambda name: f"`{name}`",
        setting=lambda name, value: f'"{name}": {_json(value)}',
        text=lambda index: f"`{field_name}[{index_of(index)}]`",
        value=_json,
        names=names or {},
        item="input",
    )


def _json(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


PLACEHOLDER = re.compile(r"\{(?:(p|s):(\w+)(?:=(\w+))?|(\w+))\}")


class InputError(LayerwiseError, ValueError):
    """A call the encoder cannot serve as given (too long, a bad option).

    ``template`` holds placeholders each front end fills in its own words (``render``):
    ``{text}`` names text ``index``; ``{p:NAME}`` a parameter; ``{s:NAME=VALUE}`` a parameter
    set to a value; ``{value}``, ``{limit}`` and any ``details`` key the figures. ``str()`` is
    the Python wording. Example: ``InputError("{p:stride} must be at least 0, got {value}",
    parameter="stride", value=-5)`` reads "stride must be at least 0, got -5" in Python and
    "--stride must be at least 0, got -5" on the command line.
    """

    def __init__(
        self,
        template: str,
        *,
        parameter: str | None = None,
        index: int | None = None,
        value: Any = None,
        limit: Any = None,
        **details: Any,
    ) -> None:
        self.template, self.parameter, self.value, self.limit = template, parameter, value, limit
        self.index: int | None = index
        self.details = details
        super().__init__(self.render(PYTHON))

    def render(self, wording: Wording) -> str:
        """The message in ``wording``'s words."""

        def fill(match: re.Match[str]) -> str:
            kind, name, setting, plain = match.groups()
            if kind == "p":
                return wording.name(name)
            if kind == "s":
                return wording.setting(name, setting)
            if plain == "text":
                return wording.text(self.index if self.index is not None else 0)
            if plain == "value":
                return wording.value(self.value)
            if plain == "limit":
                return str(self.limit)
            if plain == "index":
                return str(self.index)
            if plain == "item":
                return wording.item
            if plain in self.details:
                return str(self.details[plain])
            return match.group(0)

        return PLACEHOLDER.sub(fill, self.template)

    def at(self, offset: int) -> InputError:
        """The same error with its text counted ``offset`` further (a call over texts offset.. of a larger list)."""
        moved = copy.copy(self)
        if moved.index is not None:
            moved.index += offset
        moved.args = (moved.render(PYTHON),)
        return moved

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (Ray sends exceptions between processes) keeps the fields
        return (_rebuild, (type(self), self.template, self.parameter, self.index, self.value, self.limit, self.details))


def _rebuild(cls: type[InputError], template: str, parameter: Any, index: Any, value: Any, limit: Any, details: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    InputError.__init__(error, template, parameter=parameter, index=index, value=value, limit=limit, **details)
    return error


class TooLongError(InputError):
    """A text (or token-id sequence) longer than the limit, with overflow="error"."""


class UntokenizableText(InputError):
    """The tokenizer refuses one text (e.g. a lone surrogate, which is not valid Unicode); ``index`` names it."""

    index: int

    def __init__(self, index: int, reason: str) -> None:
        super().__init__("{text} {reason}", index=index, reason=reason)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (UntokenizableText, (self.index, self.reason))


class TruncationWarning(UserWarning):
    """Some texts were longer than max_length and were cut."""


class NonFiniteOutputError(LayerwiseError, FloatingPointError):
    """The model produced NaN or Inf; the offending text is named, nothing is returned."""
