"""Probe input: a labelled file (.csv, .tsv, .jsonl, .parquet) read and checked, and its labels turned into a target.

Every row is checked before any model work: a missing column names the columns there are, an
empty or missing text or label names its row, and labels that cannot make a task (one class,
a class smaller than the folds, fewer texts than folds, words where numbers are needed) say
the fix. Not handled here: embedding and fitting (features.py, fit.py).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.jsonl import json_object
from ..runtime.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
TASKS = ("auto", "classification", "regression")
MAX_AUTO_CLASSES = 20  # integer labels with more distinct values than this are taken as a regression target


@dataclass(frozen=True)
class Labelled:
    """The texts and labels of one file, in file order; ``where[i]`` names row i in messages."""

    path: str
    texts: list[str]
    labels: list[Any]
    where: list[str]


@dataclass(frozen=True)
class Target:
    """What the probes predict: class indices (with the class names) or standardisable numbers."""

    task: str  # "classification" or "regression"
    y: np.ndarray  # int64 class indices, or float64 values
    classes: list[str]  # class names in index order; empty for regression
    reason: str  # how the task was chosen, for the report


def _rows_csv(path: Path, delimiter: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        rows = [(f"{path} row {i} (0-based, after the header)", dict(row)) for i, row in enumerate(reader)]
    return columns, rows


def _rows_jsonl(path: Path) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    columns: dict[str, None] = {}
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            record = json_object(line, where)
            columns.update(dict.fromkeys(record))
            rows.append((where, record))
    return list(columns), rows


def _rows_parquet(path: Path, wanted: list[str]) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError(f"reading .parquet needs pyarrow ({e.name} is missing): pip install 'layerwise[probe]'") from e
    columns = pq.read_schema(path).names
    if any(name not in columns for name in wanted):
        return columns, []
    table = pq.read_table(path, columns=wanted)
    values = {name: table.column(name).to_pylist() for name in wanted}
    return columns, [(f"{path} row {i} (0-based)", {k: v[i] for k, v in values.items()}) for i in range(table.num_rows)]


def read_labelled(path: str | Path, text_column: str = "text", label_column: str = "label") -> Labelled:
    """Read ``path`` (by suffix: .csv, .tsv, .jsonl, .parquet) and check every row's text and label.

    Example:
        >>> data = read_labelled("reviews.csv", text_column="review", label_column="stars")
        >>> len(data.texts) == len(data.labels)
        True
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"DATA {str(path)!r} has an unknown suffix: use {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError(f"DATA {str(path)!r} does not exist or is not a file")
    if fmt == "parquet":
        columns, rows = _rows_parquet(path, [text_column, label_column])
    elif fmt == "jsonl":
        columns, rows = _rows_jsonl(path)
    else:
        try:
            columns, rows = _rows_csv(path, "," if fmt == "csv" else "\t")
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not UTF-8 ({e.reason}); re-encode the file as UTF-8") from e
    for name, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if name not in columns:
            there = ", ".join(repr(c) for c in columns) or "none"
            raise InputError(f"{path} has no column {name!r} (its columns: {there}); pass {flag} NAME")
    texts, labels, where = [], [], []
    for place, record in rows:
        text, label = record.get(text_column), record.get(label_column)
        if not isinstance(text, str):
            found = "missing" if text is None else type(text).__name__
            raise InputError(f"{place}: the text {text_column!r} is {found}; fix or drop the row")
        if not text.strip():
            raise InputError(f"{place}: the text {text_column!r} is empty; fill or drop the row")
        if label is None or (isinstance(label, str) and not label.strip()) or (isinstance(label, float) and math.isnan(label)):
            raise InputError(f"{place}: the label {label_column!r} is missing; fill or drop the row")
        if not isinstance(label, (str, int, float, bool)):
            raise InputError(f"{place}: the label {label_column!r} is a {type(label).__name__}; a label is a string or a number")
        texts.append(text)
        labels.append(label.strip() if isinstance(label, str) else label)
        where.append(place)
    if not texts:
        raise InputError(f"{path} holds no rows")
    return Labelled(str(path), texts, labels, where)


def _number(label: Any) -> float | None:
    if isinstance(label, bool):
        return None
    if isinstance(label, (int, float)):
        return float(label)
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def make_target(data: Labelled, task: str = "auto", folds: int = 5, label_column: str = "label") -> Target:
    """Turn the labels into a classification or regression target, checked against ``folds``.

    ``task="auto"``: numeric labels that are not all integers, or integers with more than
    MAX_AUTO_CLASSES distinct values, are a regression target; anything else is classes.
    """
    if task not in TASKS:
        raise InputError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if not isinstance(folds, int) or folds < 2:
        raise InputError(f"--folds must be an int of at least 2, got {folds!r}")
    if len(data.texts) < folds:
        raise InputError(f"{data.path} has {len(data.texts)} texts, fewer than the {folds} folds; add texts or lower --folds")
    numbers = [_number(label) for label in data.labels]
    numeric = all(n is not None for n in numbers)
    reason = f"--task {task}"
    if task == "auto":
        values = np.array(numbers, dtype=np.float64) if numeric else None
        distinct = len(set(numbers)) if numeric else 0
        integral = values is not None and bool(np.all(values == np.round(values)))
        if numeric and (not integral or distinct > MAX_AUTO_CLASSES):
            task = "regression"
            kind = "non-integer numbers" if not integral else f"{distinct} distinct integers (more than {MAX_AUTO_CLASSES})"
            reason = f"labels are {kind}; pass --task classification to treat them as classes"
        else:
            task = "classification"
            if numeric:
                reason = f"labels are {distinct} distinct integers; pass --task regression to predict them as numbers"
            else:
                word = next(i for i, n in enumerate(numbers) if n is None)
                reason = f"labels are not all numbers: {data.labels[word]!r} in {data.where[word].removeprefix(data.path + ' ')}"
    if task == "regression":
        if not numeric:
            bad = next(i for i, n in enumerate(numbers) if n is None)
            raise InputError(
                f"{data.where[bad]}: the label {label_column!r} is {data.labels[bad]!r}, not a number; --task regression needs a number "
                "in every row (or pass --task classification)"
            )
        y = np.array(numbers, dtype=np.float64)
        if np.ptp(y) == 0:
            raise InputError(f"{data.path}: every label is {y[0]:g}; a regression probe needs labels that vary")
        return Target("regression", y, [], reason)
    names = [_class_name(label) for label in data.labels]
    classes = sorted(set(names), key=_class_order)
    if len(classes) < 2:
        raise InputError(
            f"{data.path}: the label {label_column!r} has one class only ({classes[0]!r}); a classification probe needs at least two"
        )
    index = {name: i for i, name in enumerate(classes)}
    y = np.array([index[name] for name in names], dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < folds:
        small = classes[int(counts.argmin())]
        raise InputError(
            f"{data.path}: class {small!r} has {int(counts.min())} texts, fewer than the {folds} folds (every fold needs one); "
            "add texts of that class, drop it, or lower --folds"
        )
    return Target("classification", y, classes, reason)


def _class_name(label: Any) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)


def _class_order(name: str) -> tuple[int, float, str]:
    """Numeric class names in numeric order (2 before 10), then the others alphabetically."""
    number = _number(name)
    return (0, number, name) if number is not None else (1, 0.0, name)
