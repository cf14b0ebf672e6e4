"""A small Prometheus registry: counters, gauges and histograms rendered as text format 0.0.4.

The table ``SPECS`` is the whole list of metrics; updating a name not in it is an error.
Not thread-safe on purpose: every update happens on the event loop.
"""

from __future__ import annotations

import math
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKENS = (16, 64, 256, 1024, 4096, 16384, 65536)

# name: (type, help, label names, buckets for histograms)
SPECS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "layerwise_requests_total": ("counter", "HTTP requests by route and status.", ("route", "status"), ()),
    "layerwise_request_duration_seconds": ("histogram", "Time from request to response, by route.", ("route",), SECONDS),
    "layerwise_queue_duration_seconds": ("histogram", "Time an embedding request waited for its run.", (), SECONDS),
    "layerwise_inference_duration_seconds": ("histogram", "Duration of one batched encoder run.", (), SECONDS),
    "layerwise_batch_requests": ("histogram", "Requests merged into one encoder run.", (), COUNTS),
    "layerwise_batch_texts": ("histogram", "Texts in one encoder run.", (), COUNTS),
    "layerwise_batch_tokens": ("histogram", "Tokens in one encoder run (after truncation).", (), TOKENS),
    "layerwise_tokens_total": ("counter", "Tokens embedded (after truncation).", (), ()),
    "layerwise_queue_depth": ("gauge", "Embedding requests waiting for a run.", (), ()),
    "layerwise_requests_in_flight": ("gauge", "Embedding requests admitted and not yet answered.", (), ()),
    "layerwise_ready": ("gauge", "1 when the model is loaded and warmed, else 0.", (), ()),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Values of the metrics in ``SPECS``, keyed by their label set."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, Any]] = {name: {} for name in SPECS}
        for name, (kind, _, label_names, buckets) in SPECS.items():
            if not label_names:  # unlabelled series exist from the start, at zero
                self._values[name][()] = _empty(buckets) if kind == "histogram" else 0.0

    def _series(self, name: str, kind: str, labels: dict[str, str]) -> tuple[dict[Labels, Any], Labels]:
        if name not in SPECS or SPECS[name][0] != kind:
            raise KeyError(f"{name} is not a {kind} in metrics.SPECS")
        if tuple(sorted(labels)) != tuple(sorted(SPECS[name][2])):
            raise KeyError(f"{name} takes the labels {SPECS[name][2]}, got {tuple(labels)}")
        return self._values[name], tuple(sorted((k, str(v)) for k, v in labels.items()))

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        series, key = self._series(name, "counter", labels)
        series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        series, key = self._series(name, "gauge", labels)
        series[key] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        series, key = self._series(name, "histogram", labels)
        buckets = SPECS[name][3]
        state = series.setdefault(key, _empty(buckets))
        for i, bound in enumerate(buckets):
            if value <= bound:
                state["counts"][i] += 1
        state["sum"] += value
        state["count"] += 1

    def value(self, name: str, **labels: str) -> Any:
        """The current value (counters, gauges) or {"counts", "sum", "count"} (histograms); 0 if never set."""
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        return self._values[name].get(key, 0.0)

    def render(self) -> str:
        lines = []
        for name, (kind, help_text, _, buckets) in SPECS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for labels, value in sorted(self._values[name].items()):
                if kind != "histogram":
                    lines.append(f"{name}{_labels(labels)} {_number(value)}")
                    continue
                for bound, count in zip(buckets, value["counts"]):
                    lines.append(f"{name}_bucket{_labels(labels + (('le', _number(bound)),))} {count}")
                lines.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {value['count']}")
                lines.append(f"{name}_sum{_labels(labels)} {_number(value['sum'])}")
                lines.append(f"{name}_count{_labels(labels)} {value['count']}")
        return "\n".join(lines) + "\n"


def _empty(buckets: tuple[float, ...]) -> dict[str, Any]:
    return {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
