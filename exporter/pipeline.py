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
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..runtime.bundle import sha256_of
from ..runtime.manifest import (
    TOKENIZER_NAME,
    VARIANT_PROVIDERS,
    VARIANTS,
    BuildReport,
    FileEntry,
    Manifest,
    ModelInfo,
    Source,
    Variant,
    Verification,
    variant_file,
)
from ..runtime.session import physical_cores
from . import edge as edge_bundle
from . import graph_tools
from .builders import BUILDERS, BuildContext, build_order
from .bundle_writer import atomic_bundle, write_manifest
from .checkpoint import Checkpoint, load_checkpoint
from .errors import ExportError, ParityError
from .parity import ParityBars, bars_with_overrides, check, compare
from .pooling_graphs import write_pooling_graphs
from .reference import ParitySet, build_parity_set, run_onnx
from .texts import PARITY_TEXTS
from .tokenizer_file import write_tokenizer
from .verification import pooled_bars, write_reference

log = logging.getLogger("layerwise.export")


def _check_variants(variants: Sequence[str]) -> list[str]:
    chosen = [v.strip() for v in variants if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or not chosen:
        raise ExportError(f"unknown variant(s) {unknown or chosen}; choose from {', '.join(VARIANTS)}")
    return [v for v in VARIANTS if v in chosen]


def _file_entry(path: Path, bundle: Path) -> FileEntry:
    return FileEntry(path=path.relative_to(bundle).as_posix(), bytes=path.stat().st_size, sha256=sha256_of(path))


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tokenizers
    import torch
    import transformers

    from .._version import __version__

    return {
        "layerwise": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tokenizers": tokenizers.__version__,
    }


def _model_info(ckpt: Checkpoint) -> ModelInfo:
    config = ckpt.config
    return ModelInfo(
        model_type=ckpt.model_type,
        architecture=type(ckpt.model).__name__,
        num_layers=ckpt.num_layers,
        hidden_size=int(config.hidden_size),
        num_attention_heads=int(config.num_attention_heads),
        max_length=ckpt.max_length,
        max_position_embeddings=int(config.max_position_embeddings),
        vocab_size=int(config.vocab_size),
        pad_token_id=ckpt.pad_token_id,
    )


class _Exporter:
    """One export run: builds the requested variants into ``work``, each checked against PyTorch."""

    def __init__(
        self, ckpt: Checkpoint, work: Path, bars: dict[str, ParityBars], threads: int, external_data_threshold: int, edge: bool = False
    ) -> None:
        self.ckpt, self.work, self.bars, self.threads, self.edge = ckpt, work, bars, threads, edge
        self.scratch = work / ".scratch"
        self.scratch.mkdir()
        self.external_data_threshold = external_data_threshold
        self.parity: ParitySet = build_parity_set(ckpt.model, ckpt.tokenizer, ckpt.max_length, ckpt.inputs)
        self.variants: dict[str, Variant] = {}
        self.ort_format: dict[str, Any] = {}  # the edge bundle's ORT-format section, written after the pooling graphs

    def build(self, requested: list[str]) -> None:
        """Build each requested variant and the graphs it starts from (those stay in scratch)."""
        context = BuildContext(self.ckpt, self.scratch, self.bars, self.threads)
        built: dict[str, Path] = {}
        for name in build_order(requested):
            started = time.perf_counter()
            builder = BUILDERS[name]
            built[name] = self.scratch / f"{name}.onnx"
            report = builder.build(context, built[builder.source] if builder.source else None, built[name])
            if name == "int8" and self.edge:  # after the int8 graph is built, so it composes with any int8 scheme
                report = self._compress_word_embeddings(built[name], report)
            if name in requested:
                self.variants[name] = self._finish_variant(name, built[name], report, started)
            if name == "int8" and self.edge:
                self.variants[name] = self._check_hidden_state_0(self.variants[name])

    def _compress_word_embeddings(self, graph: Path, report: BuildReport) -> BuildReport:
        model = graph_tools.load(graph)
        record = edge_bundle.compress_word_embeddings(model)
        graph_tools.save(model, graph)
        return replace(report, details={**report.details, "edge": record})

    def _check_hidden_state_0(self, variant: Variant) -> Variant:
        """The edge bar on the export's own parity run: raises below it, else records it."""
        edge = {**variant.build.details["edge"], **edge_bundle.check_hidden_state_0(variant.parity)}
        return replace(variant, build=replace(variant.build, details={**variant.build.details, "edge": edge}))

    def _finish_variant(self, name: str, path: Path, report: BuildReport, started: float) -> Variant:
        """Move a built graph into the bundle, check its parity, and describe it for the manifest."""
        target = self.work / variant_file(name)
        files = graph_tools.save(graph_tools.load(path), target, self.external_data_threshold)
        parity = self.parity
        outputs = run_onnx(target, parity.feeds, self.threads, report.session_config)
        parity_report = check(name, compare(outputs, parity.reference, parity.masks), self.bars[name])
        seconds = time.perf_counter() - started
        log.info("%s: %.1f MB, parity passed, %.1f s", name, sum(f.stat().st_size for f in files) / 1e6, seconds)
        return Variant(
            name=name,
            graph=_file_entry(files[0], self.work),
            external_data=tuple(_file_entry(f, self.work) for f in files[1:]),
            providers=VARIANT_PROVIDERS[name],
            build=report,
            parity=parity_report,
            export_seconds=round(seconds, 2),
        )

    def manifest(self, tokenizer: FileEntry, pooling: dict[str, FileEntry], verification: Verification) -> Manifest:
        ckpt = self.ckpt
        return Manifest(
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            source=Source(id_or_path=ckpt.source, local_path=ckpt.local_path, revision=ckpt.revision, config=ckpt.config.to_dict()),
            model=_model_info(ckpt),
            default_pooling=ckpt.default_pooling,
            tokenizer=tokenizer,
            pooling=pooling,
            variants=self.variants,
            parity_set=self.parity.describe(),
            versions=_versions(),
            verification=verification,
            ort_format=self.ort_format,
            inputs=ckpt.inputs,
        )


def _verify_as_loaded(bundle: Path, variants: list[str], threads: int | None) -> None:
    """Check each variant through ``layerwise.load(...).verify()``: the sessions, tokenizer and
    pooling users get, so a bundle that passes here is the bundle they run."""
    from ..runtime import load

    for variant in variants:
        with load(bundle, variant=variant, provider="cpu", threads=threads) as encoder:
            report = encoder.verify()
        log.info("%s through layerwise.load: %s", variant, "passed" if report.passed else "FAILED")
        if not report.passed:
            raise ParityError(f"variant {variant!r} passed the export checks but not through layerwise.load:\n{report.table()}")


def export(
    source: str,
    out_dir: str | Path,
    variants: Sequence[str] = VARIANTS,
    force: bool = False,
    allow_pickle: bool = False,
    thresholds: Sequence[str] = (),
    threads: int | None = None,
    external_data_threshold: int | None = None,
    edge: bool = False,
) -> Path:
    """Export an encoder checkpoint of a supported family (``exporter/families.py``) to a verified bundle folder.

    Args:
        source: local Hugging Face folder or hub id (task-head checkpoints export their encoder).
        out_dir: bundle folder to create; replaced only with ``force``.
        variants: any of "fp32", "fused", "int8", "fp16".
        allow_pickle: accept pickle (``.bin``) weights; safetensors only otherwise.
        thresholds: overrides of the parity bars, such as "int8.pooled_cos_min=0.98".
        threads: ONNX Runtime threads for the parity runs (default: physical cores).
        external_data_threshold: weights above this many bytes go to one external-data file
            (default: graph_tools.EXTERNAL_DATA_THRESHOLD, 1 GiB).
        edge: the compact edge bundle (``exporter/edge.py``): int8 word embeddings in the int8
            variant, ORT-format copies of it and of the pooling graphs, required_operators.config.

    Returns the bundle folder. Raises ExportError (or FusionError/ParityError) naming the fix.

    Example:
        >>> layerwise.export("sentence-transformers/all-MiniLM-L6-v2", "bundles/minilm")
    """
    chosen = _check_variants(variants)
    if edge and "int8" not in chosen:
        raise ExportError(
            f"--edge compresses the int8 variant, but --variants is {','.join(chosen)}: add int8 (e.g. --variants int8 --edge)"
        )
    bars = bars_with_overrides(thresholds)
    if external_data_threshold is None:
        external_data_threshold = graph_tools.EXTERNAL_DATA_THRESHOLD
    out = Path(out_dir).expanduser().absolute()
    with atomic_bundle(out, force) as work:  # takes the target's lock first: a second export is refused at once
        log.info("loading %s", source)
        ckpt = load_checkpoint(source, allow_pickle=allow_pickle)
        exporter = _Exporter(ckpt, work, bars, threads or physical_cores(), external_data_threshold, edge)
        tokenizer_path = write_tokenizer(ckpt.tokenizer, work / TOKENIZER_NAME, list(PARITY_TEXTS), ckpt.max_length)
        exporter.build(chosen)
        pooling = {kind: _file_entry(p, work) for kind, p in write_pooling_graphs(work, int(ckpt.config.hidden_size)).items()}
        shutil.rmtree(exporter.scratch)
        if edge:
            graphs = [variant_file("int8"), *(entry.path for entry in pooling.values())]
            exporter.ort_format = edge_bundle.write_ort_format(work, graphs, lambda p: _file_entry(p, work).to_json())
        reference = write_reference(ckpt.model, ckpt.tokenizer, ckpt.max_length, ckpt.inputs, work)
        verification = Verification(_file_entry(reference, work), {v: pooled_bars(bars[v]) for v in chosen})
        write_manifest(work, exporter.manifest(_file_entry(tokenizer_path, work), pooling, verification))
        _verify_as_loaded(work, [v for v in chosen if "cpu" in VARIANT_PROVIDERS[v]], threads)
    log.info("bundle written to %s", out)
    return out
