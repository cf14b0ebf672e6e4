"""One JSONL input row checked and read: the rules `layerwise embed --input` and `layerwise extract` share.

Each error names the row (``where``: file and line) and the fix. Standard library only, so the
embed command does not need the extract extra (pyarrow).
"""

from __future__ import annotations

import json
from typing import Any

from ..runtime.errors import InputError


def json_object(line: str, where: str, holding: str = "") -> dict[str, Any]:
    """The JSON object on ``line`` (``where`` names the line in errors; ``holding`` says what it should hold)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where} is not valid JSON ({e.msg}); each line must be one JSON object") from e
    if not isinstance(record, dict):
        raise InputError(f"{where} is a JSON {type(record).__name__}, expected an object{holding}")
    return record


def read_record(line: str, where: str, text_column: str = "text", column_flag: str | None = "--text-column") -> dict[str, Any]:
    """The JSON object on ``line``, checked to hold a string in ``text_column`` (``column_flag``,
    when the command has one, is named in the fix)."""
    record = json_object(line, where, f" with a {text_column!r} field")
    value = record.get(text_column)
    if not isinstance(value, str):
        found = "is missing" if text_column not in record else "is null" if value is None else f"is {type(value).__name__}, not a string"
        fix = f"fix the row or pass {column_flag}" if column_flag else "fix the row"
        raise InputError(f"{where}: the text field {text_column!r} {found}; {fix}")
    return record
