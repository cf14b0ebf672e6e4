"""One extract output folder: what it holds (``_layerwise_extract.json``), who writes it (a lock),
and what is left to do.

A rerun with the same arguments and unchanged inputs resumes: rows already in complete parts
are skipped, temp files of a killed run are removed. Different arguments or changed inputs
are refused with the fix (a new --output), never mixed into one dataset.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..io.atomic import write_text_atomic
from ..runtime import Encoder
from ..runtime.bundle import sha256_of
from ..runtime.errors import InputError
from ..runtime.manifest import MANIFEST_NAME, POOLING_KINDS
from ..runtime.options import CORPUS_OVERFLOWS, EmbedOptions
from ..runtime.windows import check_stride
from .inputs import Plan, Unit
from .parts import ExtractOptions, check_id_column, done_rows, remove_temp_files

SPEC_NAME = "_layerwise_extract.json"
OLD_LOCK_NAME = "_layerwise_extract.lock"  # outputs written before the folder itself became the lock held this file
FORMAT = "layerwise-extract"
SPEC_DEFAULTS = {"overflow": "truncate", "stride": None}  # options added after the first outputs were written
SPEC_KEYS = ("bundle_sha256", "variant", "layers", "pool", "combine", "normalize", "max_length", "overflow", "stride")
MIX_KEYS = ("weights", "gamma")  # with combine "scalar_mix" only
TOKEN_KEYS = ("words", "dtype")  # per-token (HDF5) outputs only


def embed_options(encoder: Encoder, embed: EmbedOptions, tokens: dict[str, Any] | None = None) -> ExtractOptions:
    """``embed`` checked against the model, with the schema metadata that names the bundle, variant, pooling and layers.
    Every option is checked here, before the output folder is touched. ``tokens`` (``words``,
    ``dtype``): per-token output (hdf5.py), which takes ``pool="none"`` and no ``combine``."""
    if tokens is not None:
        if embed.pool != "none" or embed.combine is not None:
            raise InputError(
                "per-token output keeps every layer apart: {s:pool=none} and no {p:combine}, got {value}",
                parameter="pool",
                value=[embed.pool, embed.combine],
            )
    elif embed.pool not in POOLING_KINDS:
        raise InputError(
            "a Parquet output holds pooled vectors: {p:pool} must be one of {allowed}, got {value} "
            "({s:pool=none} writes per-token vectors to an output ending in .hdf5)",
            parameter="pool",
            value=embed.pool,
            allowed=", ".join(POOLING_KINDS),
        )
    if embed.overflow not in CORPUS_OVERFLOWS:
        raise InputError(
            "a corpus job takes {s:overflow=truncate} or {s:overflow=chunk} (it does not stop at one long text), got {value}",
            parameter="overflow",
            value=embed.overflow,
        )
    layers = embed.layer_indices(encoder.info.num_layers)
    tokenizer = encoder.tokenizer
    limit = tokenizer.check_limit(embed.max_length)  # a bad max_length fails now
    stride = check_stride(embed.stride, limit - tokenizer.special_tokens) if embed.overflow == "chunk" else None
    info = encoder.info
    metadata = {
        "format": FORMAT,
        "layerwise_version": __version__,
        "bundle": Path(info.bundle).resolve().name,
        "bundle_sha256": sha256_of(Path(info.bundle) / MANIFEST_NAME),
        "model_type": info.model_type,
        "variant": info.variant,
        "hidden_size": info.hidden_size,
        "layers": layers,
        "pool": embed.pool,
        "combine": embed.combine,
        "normalize": embed.normalize,
        "max_length": limit,
        "overflow": embed.overflow,
        "stride": stride,
        **({"weights": list(embed.weights or ()), "gamma": embed.gamma} if embed.combine == "scalar_mix" else {}),
        **(tokens or {}),
    }
    return ExtractOptions(embed, layers, metadata)


@dataclass(frozen=True)
class Output:
    """An output folder locked for one run, with the rows already done."""

    path: Path
    done: np.ndarray  # sorted global rows in complete parts

    def missing(self, plan: Plan) -> Iterator[tuple[Unit, np.ndarray]]:
        """Units with rows still to compute, each with its rows already done (usually none)."""
        for unit in plan.units():
            lo, hi = np.searchsorted(self.done, [unit.first_row, unit.first_row + unit.stop - unit.start])
            if hi - lo < unit.stop - unit.start:
                yield unit, self.done[lo:hi]


def spec_of(options: ExtractOptions, plan: Plan) -> dict[str, Any]:
    """What a rerun must match to resume: the options that change a row, the columns, the input files."""
    keep = SPEC_KEYS + tuple(k for k in MIX_KEYS + TOKEN_KEYS if k in options.metadata)
    return {
        "format": FORMAT,
        "options": {k: options.metadata[k] for k in keep},
        "text_column": plan.text_column,
        "id_column": plan.id_column,
        "inputs": [f.fingerprint() for f in plan.files],
        "rows": plan.rows,
    }


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before = {**SPEC_DEFAULTS, **old.get("options", {})}  # outputs written before an option existed used its default
    diffs = [f"{k}: {before.get(k)!r} then, {v!r} now" for k, v in new["options"].items() if before.get(k) != v]
    diffs += [f"{k}: {old.get(k)!r} then, {new[k]!r} now" for k in ("text_column", "id_column") if old.get(k) != new[k]]
    if old.get("inputs") != new["inputs"]:
        diffs.append("the input files changed (paths, sizes or modification times)")
    return diffs


@contextmanager
def open_output(
    out_dir: str | os.PathLike[str], options: ExtractOptions, plan: Plan, read_done: Callable[[Path], np.ndarray] = done_rows
) -> Iterator[Output]:
    """Create or resume ``out_dir`` for this run, holding its lock throughout; ``read_done`` lists the
    rows in its complete parts (Parquet parts by default; hdf5.done_rows for HDF5 parts)."""
    check_id_column(plan.id_column)
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise InputError(f"--output {str(path)!r} is a file; give a folder")
    path.mkdir(parents=True, exist_ok=True)
    spec = spec_of(options, plan)
    spec_path = path / SPEC_NAME
    with _locked(path):
        (path / OLD_LOCK_NAME).unlink(missing_ok=True)
        remove_temp_files(path)
        done = read_done(path)
        if spec_path.exists():
            diffs = differences(json.loads(spec_path.read_text(encoding="utf-8")), spec)
            if diffs and len(done):
                raise InputError(
                    f"--output {str(path)!r} holds a run with other arguments or inputs ({'; '.join(diffs)}): pass a new --output, or "
                    "delete this folder"
                )
        elif any(path.iterdir()):
            raise InputError(f"--output {str(path)!r} is not empty and was not written by layerwise extract; pass a new or empty folder")
        write_text_atomic(spec_path, json.dumps(spec, indent=1) + "\n")  # (re)written: a run with no part yet may change its arguments
        yield Output(path, done)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output folder itself (no lock file is left behind), or refuse at once."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another layerwise extract is writing to {str(path)!r}; wait for it or pass another --output") from None
        yield
    finally:
        os.close(fd)
