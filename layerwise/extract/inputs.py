"""Extract inputs: find the files, check every row once, and cut them into units of work.

A unit is a run of consecutive rows of one file (``Unit``); both engines read units, so a
rerun finds the same rows under the same global row numbers. Rows are numbered 0.. across
the files in sorted order. The checking pass runs before anything is written: a missing or
non-string text, or an empty input, fails naming the file and line (or row) and the fix.
Not handled here: embedding and writing (see parts.py).
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..io.jsonl import read_record
from ..runtime.errors import InputError

log = logging.getLogger("layerwise")

DEFAULT_TEXT_COLUMN = "text"
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet", ".txt": "text", ".text": "text"}
ID_TYPES = {str: "string", int: "int64"}
PARQUET_STRING_TYPES = (pa.string(), pa.large_string())


@dataclass(frozen=True)
class InputFile:
    """One input file as checked: its rows, the global number of its first row, and byte offsets of its units."""

    path: str
    format: str
    size: int
    mtime_ns: int
    rows: int
    first_row: int
    offsets: tuple[int, ...]  # byte offset of each unit's first line (jsonl/text); empty for parquet

    def fingerprint(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns, "rows": self.rows}


@dataclass(frozen=True)
class Unit:
    """Rows ``start..stop`` of one file (``first_row`` is the global number of row ``start``)."""

    path: str
    format: str
    start: int
    stop: int
    first_row: int
    offset: int  # byte offset of row ``start`` (jsonl/text)


@dataclass(frozen=True)
class Plan:
    """Every input file, checked, and what the rows look like."""

    files: tuple[InputFile, ...]
    text_column: str
    id_column: str | None
    id_type: str | None  # "string" or "int64" when there is an id column
    unit_rows: int

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def units(self) -> Iterator[Unit]:
        for f in self.files:
            for k, start in enumerate(range(0, f.rows, self.unit_rows)):
                offset = f.offsets[k] if f.offsets else 0
                yield Unit(f.path, f.format, start, min(start + self.unit_rows, f.rows), f.first_row + start, offset)


def find_inputs(spec: str) -> list[Path]:
    """A file, a folder (every known file inside, recursively) or a glob -> the input files, sorted."""
    path = Path(spec)
    if path.is_file():
        found = [path]
    elif path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    else:
        found = [Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file()]
        if not found:
            raise InputError(f"--input {spec!r} matches no file: give a file, a folder or a glob such as 'data/*.jsonl'")
    unknown = [p for p in found if p.suffix.lower() not in FORMATS]
    if unknown and (path.is_file() or not path.is_dir()):
        raise InputError(f"input {str(unknown[0])!r} has an unknown suffix: use {', '.join(FORMATS)}")
    if unknown:
        log.warning("--input %s: skipping %d file(s) with other suffixes, e.g. %s", spec, len(unknown), unknown[0])
    files = sorted(p for p in found if p.suffix.lower() in FORMATS)
    if not files:
        raise InputError(f"--input {spec!r} holds no {', '.join(FORMATS)} file")
    return files


def _check_id(value: Any, where: str, id_column: str, seen: list[str]) -> None:
    kind = ID_TYPES.get(type(value))
    if kind is None:
        raise InputError(f"{where}: id column {id_column!r} must be a string or an integer, got {value!r}")
    if seen and seen[0] != kind:
        raise InputError(f"{where}: id column {id_column!r} is {kind} here but {seen[0]} in earlier rows; use one type")
    seen[:1] = [kind]


def _scan_lines(
    path: Path, fmt: str, text_column: str, id_column: str | None, unit_rows: int, id_types: list[str]
) -> tuple[int, tuple[int, ...]]:
    """Check a jsonl or text file line by line; return its rows and each unit's byte offset."""
    rows, offsets, position = 0, [], 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            start, position = position, position + len(raw)
            where = f"{path} line {number}"
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise InputError(f"{where} is not UTF-8 ({e.reason}); re-encode the file as UTF-8") from e
            if fmt == "jsonl":
                if not line.strip():
                    continue
                record = read_record(line, where, text_column)
                if id_column is not None:
                    if record.get(id_column) is None:
                        raise InputError(f"{where}: the id field {id_column!r} is missing; fix the row or pass another --id-column")
                    _check_id(record[id_column], where, id_column, id_types)
            elif not line.strip():
                raise InputError(f"{where} is empty: a text file holds one text per line; remove blank lines or use JSONL")
            if rows % unit_rows == 0:
                offsets.append(start)
            rows += 1
    return rows, tuple(offsets)


def _scan_parquet(path: Path, text_column: str, id_column: str | None, id_types: list[str]) -> int:
    """Check a Parquet file's columns (types, nulls); return its rows."""
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path} is not a readable Parquet file ({e})") from e
    schema = parquet.schema_arrow
    columns = [text_column] + ([id_column] if id_column else [])
    for name in columns:
        if name not in schema.names:
            raise InputError(f"{path} has no column {name!r} (it has {', '.join(schema.names)}); pass --text-column / --id-column")
    if schema.field(text_column).type not in PARQUET_STRING_TYPES:
        raise InputError(f"{path}: column {text_column!r} is {schema.field(text_column).type}, expected strings")
    if id_column is not None:
        id_type = schema.field(id_column).type
        kind = "string" if id_type in PARQUET_STRING_TYPES else "int64" if pa.types.is_integer(id_type) else None
        if kind is None or (id_types and id_types[0] != kind):
            raise InputError(
                f"{path}: id column {id_column!r} is {id_type}, expected {id_types[0] if id_types else 'strings or integers'} like the "
                "other inputs"
            )
        id_types[:1] = [kind]
    first = 0
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group, columns=columns)
        for name in columns:
            column = table.column(name)
            if column.null_count:
                row = first + next(i for i, v in enumerate(column.is_null().to_pylist()) if v)
                raise InputError(f"{path} row {row} (0-based): column {name!r} is null; fill or drop the row")
        first += table.num_rows
    return parquet.metadata.num_rows


def plan_inputs(spec: str, text_column: str | None = None, id_column: str | None = None, unit_rows: int = 4096) -> Plan:
    """Find and check every input file; raise InputError naming the file and row of the first bad one.

    ``text_column`` (default ``"text"``) names the JSONL field or Parquet column; a plain text file has
    no columns, so naming one with a .txt input is an error rather than silently ignored.
    """
    asked_column, text_column = text_column, text_column or DEFAULT_TEXT_COLUMN
    files: list[InputFile] = []
    id_types: list[str] = []
    first_row = 0
    offsets: tuple[int, ...]
    for path in find_inputs(spec):
        fmt = FORMATS[path.suffix.lower()]
        if fmt == "parquet":
            rows, offsets = _scan_parquet(path, text_column, id_column, id_types), ()
        else:
            if fmt == "text" and id_column is not None:
                raise InputError(f"{path} is plain text, which has no id column; leave out --id-column or use JSONL or Parquet")
            if fmt == "text" and asked_column is not None:
                raise InputError(f"{path} is plain text (one text a line), which has no columns; leave out --text-column {asked_column} "
                    "or use JSONL or Parquet")
            rows, offsets = _scan_lines(path, fmt, text_column, id_column, unit_rows, id_types)
        stat = path.stat()
        files.append(InputFile(str(path.resolve()), fmt, stat.st_size, stat.st_mtime_ns, rows, first_row, offsets))
        first_row += rows
    if first_row == 0:
        raise InputError(f"--input {spec!r} holds no texts ({len(files)} file(s), all empty)")
    return Plan(tuple(files), text_column, id_column, id_types[0] if id_types else None, unit_rows)


def read_unit(unit: Unit, plan: Plan) -> pa.Table:
    """The rows of ``unit``: ``row`` (global number), the id column when there is one, and ``text``."""
    texts: list[str] = []
    ids: list[Any] = []
    if unit.format == "parquet":
        parquet = pq.ParquetFile(unit.path)
        columns = [plan.text_column] + ([plan.id_column] if plan.id_column else [])
        groups: list[int] = []
        first, skip = 0, 0
        for g in range(parquet.num_row_groups):
            n = parquet.metadata.row_group(g).num_rows
            if first < unit.stop and first + n > unit.start:
                if not groups:
                    skip = unit.start - first
                groups.append(g)
            first += n
        table = parquet.read_row_groups(groups, columns=columns).slice(skip, unit.stop - unit.start)
        texts = table.column(plan.text_column).to_pylist()
        ids = table.column(plan.id_column).to_pylist() if plan.id_column else []
    else:
        with open(unit.path, "rb") as f:
            f.seek(unit.offset)
            for raw in f:
                line = raw.decode("utf-8").rstrip("\r\n")
                if unit.format == "text":
                    texts.append(line)
                elif line.strip():
                    record = json.loads(line)
                    texts.append(record[plan.text_column])
                    if plan.id_column:
                        ids.append(record[plan.id_column])
                if len(texts) == unit.stop - unit.start:
                    break
    columns_out: dict[str, pa.Array] = {"row": pa.array(range(unit.first_row, unit.first_row + len(texts)), pa.int64())}
    if plan.id_column:
        columns_out[plan.id_column] = pa.array(ids, pa.string() if plan.id_type == "string" else pa.int64())
    columns_out["text"] = pa.array(texts, pa.string())
    return pa.table(columns_out)
