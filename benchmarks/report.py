"""Turn a benchmark results dict into Markdown tables and PNG plots.

``results["models"][key]`` holds one model's facts (name, shape, weights) and its jobs; every table
heading starts with the model's title, so a table copied elsewhere still says what it measured.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from layerwise.io.atomic import atomic_write


def _rate(per_s: float) -> str:
    """Three significant figures or whole numbers: 786, 22.4, 2.61 (BERT-base on 2 cores runs a few texts/s)."""
    return f"{per_s:.0f}" if per_s >= 99.5 else f"{per_s:.1f}" if per_s >= 9.95 else f"{per_s:.2f}"


def _all_layers(job: dict[str, Any], model: str) -> list[str]:
    t = job["texts"]
    lines = [
        f"### {model}: all hidden states, mean-pooled, real sentences (batch {job['batch_size']}, {job['threads']} threads)",
        "",
        f"{t['texts']} sentences, tokens mean {t['tokens_mean']:.1f}, p50 {t['tokens_p50']:.0f}, p90 {t['tokens_p90']:.0f}, "
        f"max {t['tokens_max']}; padding share of the plain loop {t['padding_share_plain_loop']:.0%}.",
        "",
        "| contender | texts/s | vs plain PyTorch | vs sorted PyTorch | pooled cos min (worst layer) | pooled cos mean (worst layer) | "
        "median s (min-max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in job["contenders"].items():
        lines.append(
            f"| {name} | {_rate(r['texts_per_s'])} | {r['speedup_vs_plain']:.2f}x | {r['speedup_vs_sorted']:.2f}x | {r['cos_min']:.5f} | "
            f"{r['cos_mean_worst_layer']:.5f} | {r['median_s']:.2f} ({r['min_s']:.2f}-{r['max_s']:.2f}) |"
        )
    return lines + [f"| {name} | not applicable | | | | | {why} |" for name, why in job.get("not_applicable", {}).items()]


def _long_docs(job: dict[str, Any], model: str) -> list[str]:
    d = job["documents"]
    tokens = d["tokens"]
    lines = [
        f'### {model}: long documents, all hidden states, mean-pooled (overflow="chunk", windows of {job["max_length"]} sharing '
        f'{job["stride"]} tokens, '
        f"batch {job['batch_size']}, {job['threads']} threads)",
        "",
        f"{d['count']} documents from the Python reference manual, {min(tokens)}-{max(tokens)} tokens (median "
        f"{statistics.median(tokens):.0f}, "
        f"{d['tokens_total']} in all); {d['windows']} windows ({d['window_tokens_total']} window tokens). PyTorch runs the runtime's own "
        "windows document by document and merges them by the same rule; tokens/s counts the documents' tokens.",
        "",
        "| contender | texts/s | tokens/s | windows | vs PyTorch | pooled cos min (worst layer) | pooled cos mean (worst layer) | "
        "median s (min-max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in job["contenders"].items():
        lines.append(
            f"| {name} | {r['texts_per_s']:.2f} | {r['tokens_per_s']:.0f} | {r['windows']} | {r['speedup_vs_pytorch']:.2f}x | "
            f"{r['cos_min']:.5f} | "
            f"{r['cos_mean_worst_layer']:.5f} | {r['median_s']:.2f} ({r['min_s']:.2f}-{r['max_s']:.2f}) |"
        )
    return lines + [f"| layerwise {v} | skipped | | | | | | {why} |" for v, why in job.get("skipped_variants", {}).items()]


def _batching(job: dict[str, Any], model: str) -> list[str]:
    names = list(next(iter(job["sets"].values()))["configurations"])
    lines = [
        f"### {model}: CPU batching defaults re-measured ({job['variant']}, all layers mean-pooled, batch {job['batch_size']}, "
        f"{job['threads']} threads; "
        f"default: {job['default']})",
        "",
        "texts/s per text set; the best of each set in bold.",
        "",
        "| configuration | " + " | ".join(job["sets"]) + " |",
        "|---|" + "---|" * len(job["sets"]),
    ]
    for name in names:
        cells = []
        for result in job["sets"].values():
            value = f"{result['configurations'][name]['texts_per_s']:.1f}"
            cells.append(f"**{value}**" if result["best"] == name else value)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + _call_sizes(job["call_sizes"]) if "call_sizes" in job else lines


def _call_sizes(job: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Small calls (last layer pooled, texts/s): spread, cut into a multiple of the threads of about equal tokens run side by "
        "side, or cut by the caps alone (one batch on intra-op threads when the call fits one). "
        + (f"Spreading pays from {job['spread_from']} texts on here " if job["spread_from"] else "Spreading pays at no size here ")
        + f"(the family's default: {job['default_spread_from']}); only sizes whose calls fit one batch decide it (one text "
        + "measures the noise); for the others the ratio is what balancing the batches over the threads gains.",
        "",
        "| texts per call | spread | caps alone | ratio | decides |",
        "|---|---|---|---|---|",
    ]
    for size, row in job["sizes"].items():
        decides = "yes" if row.get("one_batch_fits") else "no"
        lines.append(f"| {size} | {row['spread texts_per_s']} | {row['one batch texts_per_s']} | {row['ratio']:.2f}x | {decides} |")
    return lines


def _peer_rows(job: dict[str, Any], bases: dict[str, str]) -> list[str]:
    """The peer table, speeds relative to the first of ``bases`` (peer name -> title) that ran."""
    base_name = next((name for name in bases if name in job["peers"]), None)
    base_title = bases[base_name] if base_name else f"{list(bases.values())[-1]} (did not run)"
    lines = [f"| contender | texts/s | vs {base_title} | cos min | cos mean | notes |", "|---|---|---|---|---|---|"]
    base = job["peers"][base_name]["texts_per_s"] if base_name else None
    for name, r in sorted(job["peers"].items(), key=lambda kv: -kv[1]["texts_per_s"]):
        ratio = f"{r['texts_per_s'] / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {_rate(r['texts_per_s'])} | {ratio} | {r['cos_min']:.5f} | {r['cos_mean']:.5f} | {r.get('notes', '')} |")
    lines += [f"| {name} | not applicable | | | | {why} |" for name, why in job.get("not_applicable", {}).items()]
    return lines + [f"| {name} | failed | | | | {error} |" for name, error in job.get("errors", {}).items()]


def _peers(job: dict[str, Any], model: str) -> list[str]:
    title = (
        f"### {model}: pooled last-layer sentence embeddings against peers ({job['texts']} sentences, batch {job['batch_size']}, "
        f"{job['threads']} threads)"
    )
    note = "Same rounds, same texts; cosine against PyTorch's plain loop (min and mean over texts)."
    return [title, "", note, ""] + _peer_rows(job, {"st-onnx-int8": "sentence-transformers ONNX int8", "openvino-fp32": "OpenVINO fp32"})


def _all_layers_peers(job: dict[str, Any], model: str) -> list[str]:
    title = (
        f"### {model}: all hidden states, mean-pooled, against the engines that return them ({job['texts']} sentences, "
        f"batch {job['batch_size']}, {job['threads']} threads)"
    )
    note = "Same rounds, same texts; cosine against PyTorch for the worst layer (min and mean over texts)."
    return [title, "", note, ""] + _peer_rows(job, {"openvino-fp32": "OpenVINO fp32"})


def _grid(job: dict[str, Any], model: str) -> list[str]:
    lines = [
        f"### {model}: latency grid, synthetic tokens, all layers mean-pooled",
        "",
        "| variant | batch | seq | p50 ms | p90 ms | p99 ms | sequences/s | tokens/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, cells in job["variants"].items():
        for c in cells:
            lines.append(
                f"| {variant} | {c['batch_size']} | {c['seq_len']} | {c['p50_ms']:.1f} | {c['p90_ms']:.1f} | {c['p99_ms']:.1f} | "
                f"{c['sequences_per_s']:.1f} | {c['tokens_per_s']:.0f} |"
            )
    return lines


def _layer_cut(job: dict[str, Any], model: str) -> list[str]:
    lines = [
        f"### {model}: cost of layer k of L (batch {job['batch_size']} x {job['seq_len']})",
        "",
        "| variant | k | fraction of full | target k/L + 0.1 |",
        "|---|---|---|---|",
    ]
    for variant, rows in job["variants"].items():
        lines += [f"| {variant} | {r['layer']} | {r['fraction_of_full']:.2f} | {r['target']:.2f} |" for r in rows]
    return lines


def _roofline(job: dict[str, Any], model: str) -> list[str]:
    c, kernel = job["ceilings"], job["int8_kernel"]
    shapes = ", ".join(f"{s['k']}x{s['n']} x{s['count']}" for s in job["shapes"])
    peak = lambda kind: f"{c[kind]['peak']['weighted_gflops']:.0f} / {c[kind]['in_rounds']['weighted_gflops']:.0f}"  # noqa: E731
    lines = [
        f"### {model}: roofline at batch {job['batch_size']} x {job['seq_len']} and on the natural-length sentences ({job['threads']} "
        "threads)",
        "",
        f"ONNX Runtime matmul throughput on the model's projection shapes ({shapes}), "
        f"{job['batch_size'] * job['seq_len']} rows, each shape back to back (peak) / within the alternating rounds: "
        f"fp32 MatMul {peak('fp32')} GFLOP/s; int8 MatMulInteger u8s8 {peak('int8_u8s8')} GOP/s; the int8 variant's own form "
        f"({kernel['op_type']}, weights within [-{kernel['weight_absmax']}, {kernel['weight_absmax']}]) {peak('int8_variant')} GOP/s. "
        f"Model: {job['flops_per_token'] / 1e6:.1f} MFLOP per token at {job['seq_len']} tokens.",
        "",
        "| variant | ceiling | 32x128 p50 ms | 32x128 GFLOP/s | fraction of peak | fraction of in-rounds | natural: GFLOP/s run (real "
        "tokens) | natural: fraction of peak (real tokens) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, v in job["variants"].items():
        n = v["natural"]
        lines.append(
            f"| {variant} | {v['ceiling']} | {v['p50_ms']:.0f} | {v['achieved_gflops']:.0f} | {v['fraction_of_ceiling']:.0%} | "
            f"{v['fraction_of_in_rounds']:.0%} "
            f"| {n['achieved_gflops']:.0f} ({n['useful_gflops']:.0f}) | {n['fraction_of_ceiling']:.0%} "
            f"({n['useful_fraction_of_ceiling']:.0%}) |"
        )
    return lines


def _gpu(job: dict[str, Any], model: str) -> list[str]:
    lines = [
        f"### {model}: accelerator path ({job['provider']}, {job['variant']}, batch {job['batch_size']} x {job['seq_len']})",
        "",
        "| contender | median ms |",
        "|---|---|",
    ]
    return lines + [f"| {name} | {t['median_s'] * 1e3:.2f} |" for name, t in job["contenders"].items()]


SECTIONS = {
    "all_layers": _all_layers,
    "long_docs": _long_docs,
    "batching": _batching,
    "all_layers_peers": _all_layers_peers,
    "peers": _peers,
    "grid": _grid,
    "layer_cut": _layer_cut,
    "roofline": _roofline,
    "gpu": _gpu,
}


def _model_line(m: dict[str, Any]) -> str:
    shape = f"{m['layers']} layers x hidden {m['hidden']}, {m['heads']} heads, feed-forward {m['intermediate']}, vocabulary {m['vocab']}"
    return f"{shape}, {m['parameters'] / 1e6:.1f}M parameters; {m['weights']}." + (f" {m['note']}" if m.get("note") else "")


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"## Benchmark {results['date']} on {results['host']}: {m['cpu_family_title']}",
        "",
        f"CPU: {m['cpu']}, family {m['cpu_family']}, {m.get('physical_cores')} physical cores, flags: {' '.join(m['cpu_flags'])}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in m.get('versions', {}).items())}. Medians over alternated repeats; "
        "absolute figures are context only on a shared machine.",
    ]
    for entry in results["models"].values():
        title = entry["model"]["title"]
        lines += ["", f"## {title}", "", _model_line(entry["model"])]
        for key, render in SECTIONS.items():
            job = entry["jobs"].get(key)
            if job is not None:
                lines += [""] + ([f"### {title}: {key} skipped ({job['skipped']})"] if "skipped" in job else render(job, title))
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    return path


def _latency_figure(plt: Any, variants: dict[str, Any], title: str) -> Any:
    seq_lens = sorted({c["seq_len"] for cells in variants.values() for c in cells})
    fig, axes = plt.subplots(1, len(seq_lens), figsize=(4 * len(seq_lens), 3.5), squeeze=False)
    for ax, seq in zip(axes[0], seq_lens):
        for variant, cells in variants.items():
            cells = [c for c in cells if c["seq_len"] == seq]
            xs = [c["batch_size"] for c in cells]
            ax.plot(xs, [c["p50_ms"] for c in cells], marker="o", label=f"{variant} p50")
            ax.fill_between(xs, [c["p50_ms"] for c in cells], [c["p99_ms"] for c in cells], alpha=0.2)
        ax.set(title=f"sequence {seq}", xlabel="batch size", ylabel="latency ms (p50, band to p99)", xscale="log", yscale="log")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _throughput_bars(results: dict[str, Any]) -> dict[str, float]:
    """texts/s per contender of every model's sentence jobs, labelled with the model and the job."""
    bars = {}
    for key, entry in results["models"].items():
        jobs = {name: job for name, job in entry["jobs"].items() if "skipped" not in job}
        if "all_layers" in jobs:
            bars.update({f"{key}: {k} (all layers)": v["texts_per_s"] for k, v in jobs["all_layers"]["contenders"].items()})
        if "peers" in jobs:
            bars.update({f"{key}: {k} (last layer)": v["texts_per_s"] for k, v in jobs["peers"]["peers"].items()})
        if "all_layers_peers" in jobs:
            bars.update({f"{key}: {k} (all layers, peer run)": v["texts_per_s"] for k, v in jobs["all_layers_peers"]["peers"].items()})
    return bars


def plots(results: dict[str, Any], stem: Path) -> list[Path]:
    """Latency percentiles against batch size and sequence length (<stem>-latency.png for the first
    model with a grid, <stem>-<model>-latency.png for any other); throughput per contender of every model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    grids = [(key, entry) for key, entry in results["models"].items() if "variants" in entry["jobs"].get("grid", {})]
    for i, (key, entry) in enumerate(grids):
        fig = _latency_figure(plt, entry["jobs"]["grid"]["variants"], entry["model"]["title"])
        written.append(_save(fig, stem.with_name(stem.name + ("" if i == 0 else f"-{key}") + "-latency.png")))
        plt.close(fig)
    bars = _throughput_bars(results)
    if bars:
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(bars) + 1))
        names = list(bars)
        ax.barh(names, [bars[n] for n in names])
        ax.set(
            xlabel="texts/s (real sentences, batch 32)",
            title="Throughput per contender",
            xscale="log" if len(results["models"]) > 1 else "linear",
        )
        ax.invert_yaxis()
        fig.tight_layout()
        written.append(_save(fig, stem.with_name(stem.name + "-throughput.png")))
        plt.close(fig)
    return written
