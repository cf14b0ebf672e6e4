"""``layerwise probe``: which layers carry what a task needs? Cross-validated linear probes per layer and combination.

Modules: data.py (read and check a labelled file, make the target), features.py (every text
embedded once), fit.py (folds, probes, scores), mix.py (the learned scalar mix), report.py
(table, JSON, plot, flags), run.py (``probe``). Needs the probe extra (scikit-learn, scipy,
matplotlib, pyarrow for .parquet): ``pip install 'layerwise[probe]'``; the runtime never imports it.

Example:
    >>> import layerwise
    >>> from layerwise.probe import labelled, probe, read_labelled
    >>> report = probe(layerwise.load("bundles/all-MiniLM-L6-v2"), read_labelled("topics.csv"))
    >>> report.best.feature_set.name, report.usage()["python"]
"""

from .data import read_labelled
from .run import labelled, probe

__all__ = ["labelled", "probe", "read_labelled"]
