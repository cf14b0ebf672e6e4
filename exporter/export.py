"""``export``: checkpoint -> verified bundle (fp32, fused, int8, fp16), written atomically.

Steps: load the checkpoint safely -> trace the fp32 graph -> fuse -> quantize / halve ->
check every variant layer by layer against PyTorch on real text -> write tokenizer,
pooling graphs and manifest -> rename the finished folder into place.
"""

from __future__ import annotations

import logging
import platform
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..runtime.manifest import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAMES,
    TOKENIZER_NAME,
    VARIANTS,
    output_name,
    pooling_file,
    variant_file,
    write_manifest,
)
from ..runtime.bundle import sha256_of
from ..runtime.session import physical_cores
from . import graph_tools
from .bundle_writer import atomic_bundle, check_target
from .checkpoint import Checkpoint, load_checkpoint
from .errors import ExportError
from .fp16 import convert_fp16
from .fusion import fuse
from .parity import Thresholds, check, compare, override_thresholds
from .pooling_graphs import write_pooling_graphs
from .quantize import quantize_int8
from .reference import ParitySet, build_parity_set, calibration_feeds, run_onnx
from .texts import PARITY_TEXTS
from .tokenizer_file import write_tokenizer

log = logging.getLogger("layerwise.export")
PROVIDERS = {"fp32": ["cpu", "cuda"], "fused": ["cpu", "cuda"], "int8": ["cpu"], "fp16": ["cuda"]}


def _check_variants(variants: Sequence[str]) -> list[str]:
    chosen = [v.strip() for v in variants if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or not chosen:
        raise ExportError(f"unknown variant(s) {unknown or chosen}; choose from {', '.join(VARIANTS)}")
    return [v for v in VARIANTS if v in chosen]


def _file_entry(path: Path, bundle: Path) -> dict[str, Any]:
    return {"path": path.relative_to(bundle).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    from .. import __version__

    return {
        "layerwise": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _model_section(ckpt: Checkpoint) -> dict[str, Any]:
    config = ckpt.config
    return {
        "model_type": ckpt.model_type,
        "architecture": type(ckpt.model).__name__,
        "num_layers": ckpt.num_layers,
        "hidden_size": int(config.hidden_size),
        "num_attention_heads": int(config.num_attention_heads),
        "max_length": ckpt.max_length,
        "max_position_embeddings": int(config.max_position_embeddings),
        "vocab_size": int(config.vocab_size),
        "pad_token_id": int(ckpt.tokenizer.pad_token_id if ckpt.tokenizer.pad_token_id is not None else 0),
    }


def _graph_contract(num_layers: int, hidden: int) -> dict[str, Any]:
    outputs = [
        {
            "name": output_name(i),
            "dtype": "float32",
            "shape": ["batch", "sequence", hidden],
            "meaning": "embedding output" if i == 0 else f"output of encoder layer {i}",
        }
        for i in range(num_layers + 1)
    ]
    return {
        "inputs": [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in INPUT_NAMES],
        "outputs": outputs,
        "padding": "right: attention_mask is 1 for real tokens, then 0 for padding",
    }


class _Exporter:
    """One export run: holds the checkpoint, the parity set and the growing manifest."""

    def __init__(self, ckpt: Checkpoint, work: Path, thresholds: dict[str, Thresholds], threads: int, external_threshold: int) -> None:
        self.ckpt, self.work, self.thresholds, self.threads = ckpt, work, thresholds, threads
        self.scratch = work / ".scratch"
        self.scratch.mkdir()
        self.external_threshold = external_threshold
        self.parity: ParitySet = build_parity_set(ckpt.model, ckpt.tokenizer, ckpt.max_length)
        self.variants: dict[str, dict[str, Any]] = {}

    def _finish_variant(self, name: str, path: Path, details: dict[str, Any], started: float) -> None:
        """Move a built graph into the bundle, check its parity, record it."""
        target = self.work / variant_file(name)
        files = graph_tools.save(graph_tools.load(path), target, self.external_threshold)
        parity = self.parity
        outputs = run_onnx(target, parity.feeds, self.threads)
        report = check(name, compare(outputs, parity.reference, parity.masks), self.thresholds[name])
        self.variants[name] = {
            "graph": _file_entry(files[0], self.work),
            "external_data": [_file_entry(f, self.work) for f in files[1:]],
            "providers": PROVIDERS[name],
            **details,
            "parity": report,
            "export_seconds": round(time.perf_counter() - started, 2),
        }
        log.info("%s: %.1f MB, parity passed, %.1f s", name, sum(f.stat().st_size for f in files) / 1e6, time.perf_counter() - started)

    def build(self, variants: list[str]) -> None:
        started = time.perf_counter()
        fp32 = self.scratch / "fp32.onnx"
        from .torch_export import export_fp32

        export_fp32(self.ckpt.model, self.ckpt.num_layers, fp32)
        if "fp32" in variants:
            self._finish_variant("fp32", fp32, {"fused_operators": {}, "kept_float": []}, started)
        if "int8" in variants:
            started = time.perf_counter()
            int8 = self.scratch / "int8.onnx"
            calibration = calibration_feeds(self.ckpt.tokenizer, self.ckpt.max_length)
            details = quantize_int8(fp32, int8, self.scratch, calibration, self.thresholds["int8"], self.threads)
            self._finish_variant("int8", int8, details, started)
        if not set(variants) & {"fused", "fp16"}:
            return
        started = time.perf_counter()
        fused = self.scratch / "fused.onnx"
        fusion = fuse(fp32, fused, self.ckpt.config, self.scratch)
        if "fused" in variants:
            self._finish_variant("fused", fused, {**fusion, "kept_float": []}, started)
        if "fp16" in variants:
            started = time.perf_counter()
            fp16 = self.scratch / "fp16.onnx"
            details = convert_fp16(fused, fp16)
            self._finish_variant("fp16", fp16, {"fused_operators": fusion["fused_operators"], **details}, started)

    def manifest(self, tokenizer_entry: dict[str, Any], pooling: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ckpt = self.ckpt
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": {
                "id_or_path": ckpt.source,
                "local_path": ckpt.local_path,
                "revision": ckpt.revision,
                "config": ckpt.config.to_dict(),
            },
            "model": _model_section(ckpt),
            "default_pooling": ckpt.default_pooling,
            "graph_contract": _graph_contract(ckpt.num_layers, int(ckpt.config.hidden_size)),
            "tokenizer": tokenizer_entry,
            "pooling_graphs": pooling,
            "variants": self.variants,
            "parity_set": self.parity.describe(),
            "versions": _versions(),
        }


def export(
    source: str,
    out_dir: str | Path,
    variants: Sequence[str] = VARIANTS,
    force: bool = False,
    allow_pickle: bool = False,
    thresholds: Sequence[str] = (),
    threads: int | None = None,
    external_data_threshold: int = graph_tools.EXTERNAL_DATA_THRESHOLD,
) -> Path:
    """Export a BERT or ALBERT checkpoint to a verified bundle folder.

    Args:
        source: local Hugging Face folder or hub id (task-head checkpoints export their encoder).
        out_dir: bundle folder to create; replaced only with ``force``.
        variants: any of "fp32", "fused", "int8", "fp16".
        allow_pickle: accept pickle (``.bin``) weights; safetensors only otherwise.
        thresholds: parity overrides such as "int8.pooled_cos_min=0.98".
        threads: ONNX Runtime threads for the parity runs (default: physical cores).
        external_data_threshold: weights above this many bytes go to one external-data file.

    Returns the bundle folder. Raises ExportError (or FusionError/ParityError) naming the fix.

    Example:
        >>> layerwise.export("sentence-transformers/all-MiniLM-L6-v2", "bundles/minilm")
    """
    chosen = _check_variants(variants)
    limits = override_thresholds(thresholds)
    out = Path(out_dir).expanduser().absolute()
    check_target(out, force)
    log.info("loading %s", source)
    ckpt = load_checkpoint(source, allow_pickle=allow_pickle)
    with atomic_bundle(out, force) as work:
        exporter = _Exporter(ckpt, work, limits, threads or physical_cores(), external_data_threshold)
        tokenizer_path = write_tokenizer(ckpt.tokenizer, work / TOKENIZER_NAME, list(PARITY_TEXTS), ckpt.max_length)
        exporter.build(chosen)
        pooling_paths = write_pooling_graphs(work, int(ckpt.config.hidden_size), pooling_file)
        pooling = {p.name.split(".")[1]: _file_entry(p, work) for p in pooling_paths}
        shutil.rmtree(exporter.scratch)
        write_manifest(work, exporter.manifest(_file_entry(tokenizer_path, work), pooling))
    log.info("bundle written to %s", out)
    return out
