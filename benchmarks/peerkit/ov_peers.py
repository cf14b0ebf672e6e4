"""OpenVINO on the bundle's fp32 ONNX graph: fp32 as read, OpenVINO's default precision, and int8
after NNCF post-training quantization.

NNCF calibrates on the exporter's own calibration feeds (``layerwise.exporter.reference.calibration_feeds``:
the corpus sentences the int8 variant is calibrated on, plus their short prefixes), with
``model_type=TRANSFORMER`` as NNCF's documentation asks for BERT (it adds SmoothQuant and keeps
attention-sensitive ops in float). fp32 and int8 pin ``INFERENCE_PRECISION_HINT=f32``: on CPUs
with AVX-512 BF16 or AMX the plugin would otherwise run bf16 and call it fp32. "default" leaves the
hint unset, as a user who does not set it gets (bf16 on AMX, f32 elsewhere), and records what the
compiled model chose.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .base import Context, Peer, versions
from .bundle_graph import PIPELINE_NOTES, fp32_graph, graph_feeds, pooled_embedder, wanted_outputs

PRECISIONS = ("fp32", "default", "int8")


def calibration_dataset(ctx: Context) -> tuple[list[dict[str, np.ndarray]], str]:
    """The exporter's int8 calibration batches, tokenized as the exporter does (transformers' tokenizer)."""
    from transformers import AutoTokenizer

    from layerwise.exporter.reference import CALIBRATION_SENTENCES, calibration_feeds
    from layerwise.runtime.manifest import read_manifest

    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir))
    manifest = read_manifest(ctx.require_bundle())
    feeds = calibration_feeds(tokenizer, manifest.model.max_length, manifest.inputs)
    texts = sum(len(f["input_ids"]) for f in feeds)
    return (
        feeds,
        f"{len(feeds)} batches, {texts} texts: the exporter's calibration_feeds ({CALIBRATION_SENTENCES} corpus sentences + short "
        "prefixes)",
    )


def nncf_int8(ctx: Context, model: Any) -> tuple[Any, str]:
    """NNCF post-training int8 of an OpenVINO model on the exporter's calibration text."""
    import nncf

    feeds, described = calibration_dataset(ctx)
    inputs = {p.get_any_name() for p in model.inputs}
    dataset = nncf.Dataset(feeds, lambda f: {k: v for k, v in f.items() if k in inputs})
    started = time.perf_counter()
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))
    return (
        quantized,
        f"nncf.quantize(model_type=TRANSFORMER, default preset, subset_size={len(feeds)}) in {time.perf_counter() - started:.0f} s on "
        f"{described}",
    )


def keep_outputs(model: Any, names: list[str]) -> Any:
    """The same model with only the named outputs (OpenVINO then drops what feeds nothing else)."""
    import openvino as ov

    by_name = {name: result for result in model.get_results() for name in result.output(0).get_names()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"the graph has no outputs {missing} (it has {sorted(by_name)})")
    return ov.Model([by_name[n] for n in names], model.get_parameters(), "layerwise-peer")


def build_openvino(ctx: Context, precision: str) -> Peer:
    """OpenVINO CPU plugin on the bundle's fp32 graph; precision "fp32", "default" (OpenVINO's choice) or "int8" (NNCF)."""
    import openvino as ov

    if precision not in PRECISIONS:
        raise ValueError(f"unknown OpenVINO precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    core = ov.Core()
    model = core.read_model(str(fp32_graph(ctx)))
    how = "read_model(<bundle>/model.fp32.onnx)"
    if precision == "int8":
        model, quantized = nncf_int8(ctx, model)
        how += f" -> {quantized}"
    outputs = wanted_outputs(ctx)
    model = keep_outputs(model, outputs)
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": ctx.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if precision != "default":
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(model, "CPU", config)
    chosen = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # what runs: "bf16" or "f32"
    request = compiled.create_infer_request()
    names = [o.get_any_name() for o in compiled.outputs]
    order = [names.index(n) for n in outputs]
    inputs = {p.get_any_name() for p in compiled.inputs}

    def run_batch(batch: Any) -> list[np.ndarray]:
        results = request.infer(graph_feeds(batch, inputs))
        return [results[compiled.outputs[i]] for i in order]  # views of the request's buffers: pooled before the next run

    settings = ", ".join(f"{k}={v}" for k, v in config.items())
    return Peer(
        embed=pooled_embedder(ctx, run_batch),
        threads_controlled=True,
        notes=f"OpenVINO CPU: {how}; {len(outputs)} outputs kept; compile_model({settings}): inference precision {chosen}; "
        f"{PIPELINE_NOTES}",
        versions=versions("openvino", "nncf", "tokenizers") if precision == "int8" else versions("openvino", "tokenizers"),
    )
