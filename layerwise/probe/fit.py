"""Cross-validated linear probes on one set of folds, one row per feature set.

Every row is scored on the same folds (stratified for classes, seeded), so two rows differ
only by their features and their fold scores are paired. A probe is a standardiser and an
L2-penalised linear model fitted on the training folds only: logistic regression (lbfgs,
multinomial) for classes, ridge regression on a standardised target for numbers; the same
``C`` everywhere (ridge's alpha is 1/C). The scalar-mix row learns its weights inside each
training fold (mix.py) before its probe is fitted. Not handled here: reading and reporting.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .data import Target
from .mix import ScalarMix, learn_scalar_mix

METRICS = {"classification": ("accuracy", "macro_f1"), "regression": ("r2",)}
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "r2": "R²"}
MAX_ITER = 2000
# One BLAS/OpenMP thread per fit: these problems are small, and on a busy machine threads that
# spin-wait for each other made one 800 x 384 logistic fit 30x slower (5.7 s instead of 0.19 s, 2 cores).
FIT_THREADS = 1


@dataclass(frozen=True)
class FeatureSet:
    """One probe row: which hidden states, combined how."""

    name: str
    layers: list[int]  # hidden states 0..L used
    combine: str | None  # None (one layer), "concat", "mean" or "scalar_mix"

    def features(self, hidden: np.ndarray, mix: ScalarMix | None = None) -> np.ndarray:
        """[texts, L + 1, dim] -> [texts, features] for this row."""
        chosen = hidden[:, self.layers]
        if self.combine == "scalar_mix":
            if mix is None:
                raise ValueError("a scalar-mix row needs the mix learned on its training fold")
            return mix.apply(chosen)
        if self.combine == "mean":
            return chosen.mean(axis=1, dtype=np.float32)
        return chosen.reshape(len(hidden), -1)


@dataclass
class RowScores:
    """One row's score per fold for every metric, and the scalar mixes it learned (per fold)."""

    feature_set: FeatureSet
    scores: dict[str, list[float]] = field(default_factory=dict)
    mixes: list[ScalarMix] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        return float(np.mean(self.scores[metric]))

    def std(self, metric: str) -> float:
        return float(np.std(self.scores[metric]))


def feature_sets(num_layers: int) -> list[FeatureSet]:
    """Each hidden state alone, the last four concatenated (as the BERT paper's NER features), the mean of all, a scalar mix."""
    every = list(range(num_layers + 1))
    last = every[-4:]
    return [
        *(FeatureSet(f"layer {k}", [k], None) for k in every),
        FeatureSet(f"last {len(last)} concatenated", last, "concat"),
        FeatureSet("mean of all layers", every, "mean"),
        FeatureSet("scalar mix (learned)", every, "scalar_mix"),
    ]


def make_folds(target: Target, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) row indices every row is scored on."""
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if target.task == "classification" else KFold(
        folds, shuffle=True, random_state=seed
    )
    return [(train, test) for train, test in splitter.split(np.zeros(len(target.y)), target.y)]


def make_probe(task: str, C: float, seed: int) -> Pipeline:
    if task == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))
    return make_pipeline(StandardScaler(), TransformedTargetRegressor(Ridge(alpha=1.0 / C), transformer=StandardScaler()))


def score(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return {"accuracy": float(accuracy_score(y_true, y_pred)), "macro_f1": float(f1_score(y_true, y_pred, average="macro"))}
    return {"r2": float(r2_score(y_true, y_pred))}


def cross_validate(
    hidden: np.ndarray,
    target: Target,
    sets: list[FeatureSet],
    folds: list[tuple[np.ndarray, np.ndarray]],
    C: float = 1.0,
    seed: int = 0,
    advance: Callable[[str], None] = lambda name: None,
) -> tuple[list[RowScores], int]:
    """Score every feature set on every fold; also return how many fits hit the iteration cap."""
    rows = [RowScores(s, {m: [] for m in METRICS[target.task]}) for s in sets]
    unconverged = 0
    with threadpool_limits(FIT_THREADS):
        for row in rows:
            unconverged += _score_row(row, hidden, target, folds, C, seed)
            advance(row.feature_set.name)
    return rows, unconverged


def _score_row(row: RowScores, hidden: np.ndarray, target: Target, folds: list[tuple[np.ndarray, np.ndarray]], C: float, seed: int) -> int:
    """Fill ``row``'s fold scores (learning its scalar mix in each training fold); return the fits that did not converge."""
    unconverged = 0
    for k, (train, test) in enumerate(folds):
        mix = None
        if row.feature_set.combine == "scalar_mix":
            mix = learn_scalar_mix(
                hidden[train][:, row.feature_set.layers], target.y[train], target.task, len(target.classes), C, seed + k
            )
            row.mixes.append(mix)
        x = row.feature_set.features(hidden, mix)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            probe = make_probe(target.task, C, seed).fit(x[train], target.y[train])
        unconverged += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        for metric, value in score(target.task, target.y[test], probe.predict(x[test])).items():
            row.scores[metric].append(value)
    return unconverged
