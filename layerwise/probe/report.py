"""What a probe found: the table, the JSON, the plot, and the flags that use the best layer set.

``ProbeReport`` is built complete by ``run.probe``; its methods only format. The plot needs
matplotlib (in the probe extra) and is drawn to bytes, so the caller writes it atomically.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from .fit import METRIC_NAMES, METRICS, FeatureSet, RowScores
from .mix import ScalarMix

FORMAT = "layerwise-probe"
DECIMALS = 4  # printed scalar-mix parameters and gamma


@dataclass(frozen=True)
class ProbeReport:
    """Fold scores of every feature set on one labelled set, with the scalar mix refit on all texts."""

    setup: dict[str, Any]  # data, task, bundle, pooling, folds, seed, C, ... (the JSON's header)
    rows: list[RowScores]
    mix: ScalarMix  # refit on every text: the weights the printed flags carry
    unconverged: int

    @property
    def task(self) -> str:
        return str(self.setup["task"])

    @property
    def metric(self) -> str:
        """The metric the best row is chosen by: accuracy for classes, R² for numbers."""
        return METRICS[self.task][0]

    @property
    def best(self) -> RowScores:
        """Highest mean score; on a tie the row computing fewer layers (its deepest layer runs a shorter graph)."""
        return max(self.rows, key=lambda r: (round(r.mean(self.metric), 12), -max(r.feature_set.layers), -len(r.feature_set.layers)))

    def row(self, combine: str) -> RowScores:
        return next(r for r in self.rows if r.feature_set.combine == combine)

    def table(self) -> str:
        metrics = METRICS[self.task]
        s = self.setup
        head = [
            f"{s['texts']} texts from {s['data']}: {self.task} of {s['label_column']!r}"
            + (f" into {len(s['classes'])} classes" if s["classes"] else "")
            + f" ({s['task_reason']})",
            f"{Path(s['bundle']).name} ({s['variant']}), pool {s['pool']}; {s['folds']} "
            + ("stratified " if self.task == "classification" else "")
            + f"folds, seed {s['seed']}, the same for every row; {s['probe']}, C={s['C']:g}; mean ± std over folds",
            "",
        ]
        width = max(len(r.feature_set.name) for r in self.rows) + 2
        header = "features".ljust(width) + "".join(METRIC_NAMES[m].ljust(17) for m in metrics) + f"{METRIC_NAMES[metrics[0]]} per fold"
        lines = [header]
        best = self.best
        for r in self.rows:
            cells = "".join(f"{r.mean(m):.3f} ± {r.std(m):.3f}".ljust(17) for m in metrics)
            folds = " ".join(f"{v:.3f}" for v in r.scores[metrics[0]])
            lines.append(r.feature_set.name.ljust(width) + cells + folds + ("   <- best" if r is best else ""))
        metric = METRIC_NAMES[self.metric]
        tail = ["", f"best: {best.feature_set.name}, {metric} {best.mean(self.metric):.3f} ± {best.std(self.metric):.3f}"]
        if self.unconverged:
            tail.append(f"note: {self.unconverged} fits stopped at the iteration cap before converging (their scores still count)")
        return "\n".join(head + lines + tail)

    def mix_lines(self) -> list[str]:
        s = self.setup
        fold_weights = np.array([m.weights for m in self.row("scalar_mix").mixes])
        shares = " ".join(f"{k}:{w:.3f}" for k, w in zip(self.row("scalar_mix").feature_set.layers, self.mix.weights))
        spread = " ".join(f"{k}:{w:.3f}±{d:.3f}" for k, w, d in zip(
            self.row("scalar_mix").feature_set.layers, fold_weights.mean(axis=0), fold_weights.std(axis=0)))
        return [
            f"scalar mix, refit on all {s['texts']} texts: softmax weights by layer {shares}, gamma {self.mix.gamma:.{DECIMALS}g}",
            f"  (learned in each training fold, mean ± std over the {s['folds']} folds: {spread})",
        ]

    def usage(self, feature_set: FeatureSet | None = None) -> dict[str, str]:
        """The ``layerwise embed`` flags, the server request and the Python call computing ``feature_set`` (default: the best)."""
        fs = feature_set or self.best.feature_set
        s = self.setup
        flags = [f"--layers {','.join(map(str, fs.layers))}", f"--pool {s['pool']}"]
        request: dict[str, Any] = {"inputs": ["..."], "layers": fs.layers, "pool": s["pool"]}
        call = [f"layers={fs.layers[0] if len(fs.layers) == 1 else fs.layers}", f"pool={s['pool']!r}"]
        if fs.combine is not None:
            flags.append(f"--combine {fs.combine}")
            request["combine"] = fs.combine
            call.append(f"combine={fs.combine!r}")
        if fs.combine == "scalar_mix":
            parameters = [round(float(p), DECIMALS) for p in self.mix.parameters]
            gamma = float(f"{self.mix.gamma:.{DECIMALS}g}")
            flags += [f"--weights {','.join(map(str, parameters))}", f"--gamma {gamma}"]
            request |= {"weights": parameters, "gamma": gamma}
            call += [f"weights={parameters}", f"gamma={gamma}"]
        for key, flag in (("max_length", "--max-length"), ("overflow", "--overflow"), ("stride", "--stride")):
            if s[key] is not None:
                flags.append(f"{flag} {s[key]}")
                request[key] = s[key]
                call.append(f"{key}={s[key]!r}")
        bundle = s["bundle"]
        return {
            "embed": f"layerwise embed {bundle} {' '.join(flags)} --input texts.txt",
            "serve": f"layerwise serve {bundle}; POST /embed {json.dumps(request)}",
            "python": f"layerwise.load({bundle!r}).embed(texts, {', '.join(call)})",
        }

    def text(self) -> str:
        """Everything the command prints: the table, the scalar mix, and how to use the best row and the mix."""
        best = self.usage()
        mix = self.usage(self.row("scalar_mix").feature_set)
        lines = [self.table(), "", *self.mix_lines(), "", f"use the best ({self.best.feature_set.name}):"]
        lines += [f"  {how}" for how in best.values()]
        if self.best.feature_set.combine != "scalar_mix":
            lines += ["use the scalar mix:", *(f"  {how}" for how in mix.values())]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        metrics = METRICS[self.task]
        mix_row = self.row("scalar_mix")
        best = self.best
        return {
            "format": FORMAT,
            "layerwise_version": __version__,
            **self.setup,
            "metrics": list(metrics),
            "primary_metric": self.metric,
            "rows": [
                {
                    "name": r.feature_set.name,
                    "layers": r.feature_set.layers,
                    "combine": r.feature_set.combine,
                    "scores": r.scores,
                    "mean": {m: r.mean(m) for m in metrics},
                    "std": {m: r.std(m) for m in metrics},
                }
                for r in self.rows
            ],
            "best": {"name": best.feature_set.name, "layers": best.feature_set.layers, "combine": best.feature_set.combine,
                     "metric": self.metric, "mean": best.mean(self.metric), "std": best.std(self.metric), "use": self.usage()},
            "scalar_mix": {
                "layers": mix_row.feature_set.layers,
                "fitted_on": "all texts (the per-fold mixes scored the row)",
                "parameters": self.mix.parameters.tolist(),
                "weights": self.mix.weights.tolist(),
                "gamma": self.mix.gamma,
                "folds": [{"parameters": m.parameters.tolist(), "weights": m.weights.tolist(), "gamma": m.gamma} for m in mix_row.mixes],
                "use": self.usage(mix_row.feature_set),
            },
            "unconverged_fits": self.unconverged,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    def plot(self, fmt: str = "png") -> bytes:
        """Score by layer with ± std error bars, the combinations beside them; image bytes in ``fmt`` (png, svg, pdf)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        singles = [r for r in self.rows if r.feature_set.combine is None]
        combos = [r for r in self.rows if r.feature_set.combine is not None]
        fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
        for metric, style in zip(METRICS[self.task], ("o-", "s--")):
            xs = [r.feature_set.layers[0] for r in singles]
            ax.errorbar(xs, [r.mean(metric) for r in singles], yerr=[r.std(metric) for r in singles], fmt=style, capsize=3,
                        label=f"{METRIC_NAMES[metric]}, one layer")
            cx = [len(singles) + 0.5 + i for i in range(len(combos))]
            ax.errorbar(cx, [r.mean(metric) for r in combos], yerr=[r.std(metric) for r in combos], fmt=style[0], capsize=3,
                        color=ax.lines[-1].get_color() if ax.lines else None)
        short = {"concat": f"last {len(combos[0].feature_set.layers)}\nconcat", "mean": "mean\nof all", "scalar_mix": "scalar\nmix"}
        ax.axvline(len(singles) - 0.25, color="0.8", linestyle=":")
        ax.set_xticks(list(range(len(singles))) + [len(singles) + 0.5 + i for i in range(len(combos))])
        ax.set_xticklabels([str(r.feature_set.layers[0]) for r in singles] + [short.get(str(r.feature_set.combine), "") for r in combos])
        ax.set_xlabel("hidden state (0: embeddings)")
        ax.set_ylabel(" / ".join(METRIC_NAMES[m] for m in METRICS[self.task]))
        s = self.setup
        ax.set_title(f"{Path(s['bundle']).name}, pool {s['pool']}: {Path(s['data']).name} ({s['texts']} texts, {s['folds']} folds, ± std)",
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata={"Software": None} if fmt == "png" else None)
        plt.close(fig)
        return buffer.getvalue()
