"""The server load test's results: medians per cell, issue 30's targets, the markdown table, the files.

Pure functions over the report dictionary that benchmarks/server_load/load_test.py builds; no timing here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from layerwise.io.atomic import write_text_atomic

from ..common import results_stem
from .accuracy import REFERENCE

CONTENDERS = {"layerwise": "layerwise serve", "infinity": "Infinity", "inprocess": "in-process embed"}


def median_figures(runs: list[dict[str, Any]], texts_per_request: int) -> dict[str, Any]:
    """One cell's figures: the median over repeats of requests/s and each percentile, errors summed.

    >>> median_figures([{"requests_per_s": 10.0, "p50_ms": 1.0, "p99_ms": 3.0, "errors": 0},
    ...                 {"requests_per_s": 12.0, "p50_ms": 2.0, "p99_ms": 5.0, "errors": 1}], 32)["texts_per_s"]
    352.0
    """

    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    rps = median("requests_per_s") or 0.0
    return {
        "requests_per_s": rps,
        "texts_per_s": round(rps * texts_per_request, 1),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "errors": sum(run["errors"] for run in runs),
        "runs": runs,
    }


def _cell(cells: list[dict], size: int, concurrency: int, name: str) -> dict | None:
    return next((c for c in cells if (c["texts_per_request"], c["concurrency"], c["contender"]) == (size, concurrency, name)), None)


def targets(cells: list[dict]) -> list[dict[str, Any]]:
    """Issue 30's targets, checked on the medians (shown, never asserted): at every cell at least 1.5x
    Infinity's requests/s with a lower p99; at concurrency >= 32 with 32-text requests at least 85% of
    in-process texts/s; at concurrency 1 with one text at most 1 ms above in-process p50."""
    rows = []
    for size, concurrency in sorted({(c["texts_per_request"], c["concurrency"]) for c in cells}):
        ours, peer, local = (_cell(cells, size, concurrency, n) for n in ("layerwise", "infinity", "inprocess"))
        if ours and peer and peer["requests_per_s"] and ours["p99_ms"] is not None and peer["p99_ms"] is not None:
            ratio = ours["requests_per_s"] / peer["requests_per_s"]
            rows.append(
                {
                    "target": "req/s >= 1.5x Infinity, lower p99",
                    "texts_per_request": size,
                    "concurrency": concurrency,
                    "value": f"{ratio:.2f}x, p99 {ours['p99_ms']} vs {peer['p99_ms']} ms",
                    "met": ratio >= 1.5 and ours["p99_ms"] < peer["p99_ms"],
                }
            )
        if ours and local and local["texts_per_s"] and size == 32 and concurrency >= 32:
            share = ours["texts_per_s"] / local["texts_per_s"]
            rows.append(
                {
                    "target": "texts/s >= 85% of in-process",
                    "texts_per_request": size,
                    "concurrency": concurrency,
                    "value": f"{share:.0%}",
                    "met": share >= 0.85,
                }
            )
        if ours and local and size == 1 and concurrency == 1 and ours["p50_ms"] is not None and local["p50_ms"] is not None:
            extra = ours["p50_ms"] - local["p50_ms"]
            rows.append(
                {
                    "target": "p50 <= in-process + 1 ms",
                    "texts_per_request": size,
                    "concurrency": concurrency,
                    "value": f"{extra:+.2f} ms",
                    "met": extra <= 1.0,
                }
            )
    return rows


def markdown(report: dict[str, Any]) -> str:
    cpu, setup = report["machine"], report["setup"]
    names = {k: v for k, v in CONTENDERS.items() if k in report["contenders"]}
    lines = [
        f"## Server load: {', '.join(names.values())} ({report['bundle']}, {report['model']['variant']}, {report['model']['provider']})",
        "",
        f"{cpu['cpu']} ({cpu['cpu_family_title']}; /proc/cpuinfo: {' '.join(report['cpuinfo_flags'])}), {cpu['cpu_count']} logical cores. "
        f"{setup['load']}",
        "",
    ]
    lines += [f"- {names[name]}: {text}" for name, text in report["contender_notes"].items() if name in names]
    if report["accuracy"]:
        lines += [
            "",
            f"### Accuracy: pooled cosine to the reference on {report['accuracy_texts']} held-out sentences",
            "",
            f"Reference: {REFERENCE}.",
            "",
        ]
        lines += ["| contender | cos mean | cos min |", "|---|---|---|"]
        lines += [f"| {names[n]} | {s['cos_mean']:.5f} | {s['cos_min']:.5f} |" for n, s in report["accuracy"].items()]
    for size in sorted({c["texts_per_request"] for c in report["cells"]}):
        lines += ["", f"### {size} text{'s' if size > 1 else ''} per request", ""]
        lines += ["| concurrency | contender | req/s | texts/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
        for c in (c for c in report["cells"] if c["texts_per_request"] == size):
            lines.append(
                f"| {c['concurrency']} | {names[c['contender']]} | {c['requests_per_s']} | {c['texts_per_s']} "
                f"| {c['p50_ms']} | {c['p99_ms']} | {c['errors']} |"
            )
    if report["targets"]:
        lines += [
            "",
            "### Issue 30's targets (medians above; shown, not asserted)",
            "",
            "| target | texts/request | concurrency | value | met |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {t['target']} | {t['texts_per_request']} | {t['concurrency']} | {t['value']} | {'yes' if t['met'] else 'no'} |"
            for t in report["targets"]
        ]
    if report["after"]:
        lines += ["", "### The servers after the run", ""]
        lines += [f"- {names[n]}: {a}" for n, a in report["after"].items()]
    return "\n".join(lines)


def write_results(report: dict[str, Any], directory: Path | None = None) -> tuple[Path, Path]:
    """<date>-<host>-<cpu family>-server.{json,md}, each written atomically."""
    stem = results_stem(report["date"], report["host"], report["machine"]["cpu_family"], "-server")
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / stem.name
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")  # a host name may hold dots
    write_text_atomic(json_path, json.dumps(report, indent=2) + "\n")
    write_text_atomic(md_path, markdown(report) + "\n")
    return json_path, md_path
