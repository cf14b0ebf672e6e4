"""BERTScore baselines for rescaling: the bert-score package's file format (computing one: bertscore.compute_baseline).

The format is the package's ``rescale_baseline/<lang>/<model>.tsv`` (comma-separated despite the
name): a header ``LAYER,P,R,F``, then one row per hidden state, 0 (the embedding output) to L, in
order; the package picks a layer's row by position, so rows out of order are refused here. Values
are float32, written in the shortest form that reads back exactly (as pandas writes float32).

How the package made its baselines (get_rescale_baseline.py), which ``bertscore.compute_baseline``
follows: the first 1,000,000 lines of a monolingual corpus, stripped, those of fewer than 32
space-separated words kept, shuffled into disjoint random candidate and reference halves;
BERTScore of every pair without idf at every layer, averaged per layer. It differs in two places:
empty lines are dropped (the package's filter keeps them, and they score 0), and the shuffle is
numpy's seeded ``default_rng(seed)`` (the package's was unseeded).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

HEADER = ("LAYER", "P", "R", "F")


@dataclass(frozen=True)
class Baseline:
    """Per hidden state 0..L, the mean precision, recall and F1 of unrelated pairs: float32 [L + 1, 3]."""

    values: np.ndarray

    def to_text(self) -> str:
        """The package's file format."""
        rows = [",".join(HEADER)] + [f"{layer},{','.join(str(np.float32(v)) for v in row)}" for layer, row in enumerate(self.values)]
        return "\n".join(rows) + "\n"

    @property
    def digest(self) -> str:
        """sha256 of ``to_text()``: what a score hash pins."""
        return hashlib.sha256(self.to_text().encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the file whole or not at all (a temporary file renamed into place)."""
        target = Path(path)
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        partial.write_text(self.to_text(), encoding="utf-8")
        os.replace(partial, target)

    def rows(self, layers: Sequence[int], num_layers: int, where: str) -> np.ndarray:
        """float32 [len(layers), 3] for the given hidden states of a model with ``num_layers`` layers."""
        if len(self.values) != num_layers + 1:
            raise InputError(
                f"the baseline {where} has {len(self.values)} rows (hidden states 0..{len(self.values) - 1}), but this model has "
                f"hidden states 0..{num_layers}: it was computed for another model; compute one for this bundle"
            )
        return self.values[list(layers)]


def read_baseline(path: str | Path) -> Baseline:
    """A baseline file in the package's format (``LAYER,P,R,F``), checked."""
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the baseline file {path}: {e}") from e
    if not lines or tuple(cell.strip() for cell in lines[0].split(",")) != HEADER:
        raise InputError(f"the baseline file {path} must start with the header line {','.join(HEADER)} (bert-score's format)")
    values = []
    for number, line in enumerate(lines[1:]):
        cells = [cell.strip() for cell in line.split(",")]
        try:
            layer, scores = int(cells[0]), [float(c) for c in cells[1:]]
        except ValueError as e:
            raise InputError(f"the baseline file {path}, row {number + 2}: {line!r} is not LAYER,P,R,F numbers ({e})") from e
        if layer != number or len(scores) != 3 or not np.isfinite(scores).all():
            raise InputError(
                f"the baseline file {path}, row {number + 2}: {line!r}; rows must be layers 0, 1, 2, ... in order, each with "
                "three finite numbers P,R,F"
            )
        values.append(scores)
    if not values:
        raise InputError(f"the baseline file {path} has a header but no rows")
    return Baseline(np.asarray(values, dtype=np.float32))
