"""``probe``: embed every text once, score every feature set on the same folds, refit the scalar mix on all texts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from ..runtime import EmbedOptions, Encoder
from ..runtime.bundle import sha256_of
from ..runtime.errors import InputError
from ..runtime.manifest import MANIFEST_NAME, POOLING_KINDS
from .data import Labelled, make_target
from .features import embed_all, feature_bytes, human_bytes
from .fit import FIT_THREADS, cross_validate, feature_sets, make_folds
from .mix import learn_scalar_mix
from .report import ProbeReport

log = logging.getLogger("layerwise")


def labelled(texts: Sequence[str], labels: Sequence[Any], name: str = "texts") -> Labelled:
    """Texts and labels given in Python, checked as a file's rows are."""
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels; give one label per text")
    for i, (text, label) in enumerate(zip(texts, labels)):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"texts[{i}] is {'empty' if isinstance(text, str) else type(text).__name__}; give a non-empty string")
        if label is None or not isinstance(label, (str, int, float, bool)):
            raise InputError(f"labels[{i}] is {label!r}; a label is a string or a number")
    return Labelled(name, list(texts), list(labels), [f"row {i}" for i in range(len(texts))])


def probe(
    encoder: Encoder,
    data: Labelled,
    task: str = "auto",
    options: EmbedOptions | None = None,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    label_column: str = "label",
    bundle_name: str | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> ProbeReport:
    """Cross-validated linear probes of every layer and combination of ``encoder`` on ``data``.

    Example:
        >>> from layerwise.probe import labelled, probe
        >>> report = probe(layerwise.load("bundles/all-MiniLM-L6-v2"), labelled(texts, labels))
        >>> print(report.text())          # the table, the learned scalar mix, the flags that use the best row
    """
    options = options or EmbedOptions()
    if options.pool not in POOLING_KINDS or options.layers != "all" or options.combine is not None:
        raise InputError(
            "a probe embeds every layer apart, pooled: {p:options} needs {s:layers=all}, a {p:pool} of {allowed} and no {p:combine}, "
            "got {value}",
            parameter="options",
            value=[options.layers, options.pool, options.combine],
            allowed=", ".join(POOLING_KINDS),
        )
    if not (isinstance(C, (int, float)) and C > 0):
        raise InputError(f"--C must be a positive number, got {C!r}")
    target = make_target(data, task, folds, label_column)
    info = encoder.info
    size = feature_bytes(len(data.texts), info.num_layers, info.hidden_size)
    log.info(
        "embedding %d texts once: hidden states 0..%d, pool %s, held as one float32 array [%d, %d, %d] (%s)",
        len(data.texts), info.num_layers, options.pool, len(data.texts), info.num_layers + 1, info.hidden_size, human_bytes(size),
    )
    hidden = embed_all(encoder, data.texts, options, progress)
    split = make_folds(target, folds, seed)
    sets = feature_sets(info.num_layers)
    log.info("fitting %d probes on %d folds (%s)", len(sets), folds, target.task)
    rows, unconverged = cross_validate(hidden, target, sets, split, C, seed, lambda name: log.debug("probed %s", name))
    with threadpool_limits(FIT_THREADS):
        mix = learn_scalar_mix(hidden, target.y, target.task, len(target.classes), C, seed)
    setup = {
        "data": data.path,
        "label_column": label_column,
        "texts": len(data.texts),
        "task": target.task,
        "task_reason": target.reason,
        "classes": target.classes,
        "class_counts": [int((target.y == k).sum()) for k in range(len(target.classes))],
        "bundle": bundle_name or info.bundle,
        "bundle_sha256": sha256_of(Path(info.bundle) / MANIFEST_NAME),
        "model_type": info.model_type,
        "variant": info.variant,
        "hidden_size": info.hidden_size,
        "num_layers": info.num_layers,
        "pool": options.pool,
        "max_length": options.max_length,
        "overflow": options.overflow,
        "stride": options.stride,
        "folds": folds,
        "seed": seed,
        "C": C,
        "probe": "standardised features, logistic regression (lbfgs)" if target.task == "classification" else
        "standardised features and target, ridge regression (alpha = 1/C)",
        "embedding_bytes": size,
    }
    return ProbeReport(setup, rows, mix, unconverged)
