"""The real all-MiniLM-L6-v2: every variant meets its bar on real text it was not checked on at export."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import onnx
import pytest
from tokenizers import Tokenizer

from layerwise.exporter.fusion import SKIP_NORM_SESSION_CONFIG
from layerwise.exporter.texts import PARITY_TEXTS, corpus_sentences
from layerwise.runtime.manifest import read_manifest

from .reference import onnx_states, per_layer, torch_states

HELD_OUT = corpus_sentences(192, skip=1200)  # the export calibrated and checked on sentences 0..447
QUERIES = [" ".join(s.split()[: 1 + i % 3]) for i, s in enumerate(corpus_sentences(32, skip=1400))]


@pytest.fixture(scope="module")
def held_out_reference(torch_minilm):
    model, tokenizer = torch_minilm
    batches = [HELD_OUT[i : i + 32] for i in range(0, len(HELD_OUT), 32)] + [list(PARITY_TEXTS), QUERIES]
    return [torch_states(model, tokenizer, texts) for texts in batches]


def _layers(bundle, variant, reference):
    """Per layer, the worst value of each metric over all held-out batches."""
    path = bundle / f"model.{variant}.onnx"
    rows = [per_layer(onnx_states(path, feeds), states, feeds["attention_mask"]) for states, feeds in reference]
    merged = []
    for layer in range(7):
        cells = [r[layer] for r in rows]
        merged.append(
            {
                "max_abs": max(c["max_abs"] for c in cells),
                "token_cos_min": min(c["token_cos_min"] for c in cells),
                "pooled_cos_min": min(c["pooled_cos_min"] for c in cells),
                "pooled_cos_mean": float(np.mean([c["pooled_cos_mean"] for c in cells])),
                "finite": all(c["finite"] for c in cells),
            }
        )
    return merged


@pytest.mark.parametrize("variant", ["fp32", "fused"])
def test_fp32_and_fused_match_pytorch_within_1e4_at_every_layer(minilm_bundle, held_out_reference, variant):
    for layer, row in enumerate(_layers(minilm_bundle, variant, held_out_reference)):
        assert row["max_abs"] <= 1e-4, (variant, layer, row)


def test_int8_meets_pooled_cosine_bar_on_real_text(minilm_bundle, held_out_reference):
    for layer, row in enumerate(_layers(minilm_bundle, "int8", held_out_reference)):
        assert row["pooled_cos_mean"] >= 0.995 and row["pooled_cos_min"] >= 0.99, (layer, row)


def test_fp16_token_cosine_at_least_0999_and_finite(minilm_bundle, held_out_reference):
    for layer, row in enumerate(_layers(minilm_bundle, "fp16", held_out_reference)):
        assert row["finite"] and row["token_cos_min"] >= 0.999, (layer, row)


def test_fused_graph_has_one_attention_per_layer_and_embedding_fusion(minilm_bundle):
    ops = Counter(n.op_type for n in onnx.load(str(minilm_bundle / "model.fused.onnx")).graph.node)
    assert ops["Attention"] == 6
    assert ops["EmbedLayerNormalization"] == 1
    assert ops["SkipLayerNormalization"] == 0  # given back for the CPU (exporter/fusion.py)
    assert ops["BiasGelu"] + ops["Gelu"] + ops["FastGelu"] == 6
    assert ops["LayerNormalization"] == 12  # the 12 skip norms; no second, unfused embedding path
    fused = read_manifest(minilm_bundle).variants["fused"].build
    assert fused.fused_operators["Attention"] == 6 and fused.fused_operators["SkipLayerNormalization"] == 12
    assert fused.details["skip_layer_norm_unfused"]["count"] == 12
    assert fused.session_config == SKIP_NORM_SESSION_CONFIG


def test_fp16_graph_keeps_the_skip_norms_for_cuda(minilm_bundle):
    ops = Counter(n.op_type for n in onnx.load(str(minilm_bundle / "model.fp16.onnx")).graph.node)
    assert ops["SkipLayerNormalization"] == 12 and ops["Attention"] == 6
    assert read_manifest(minilm_bundle).variants["fp16"].build.session_config == {}


def test_loaded_fused_session_does_not_fuse_the_skip_norms_again(minilm_bundle, tmp_path):
    """The manifest's session_config reaches the session: ONNX Runtime's optimized graph keeps Add + LayerNormalization."""
    import onnxruntime as ort

    from layerwise.runtime.session import SessionConfig

    build = read_manifest(minilm_bundle).variants["fused"].build
    optimized = {}
    for label, entries in (("as loaded", tuple(build.session_config.items())), ("without", ())):
        options = SessionConfig(provider="cpu", threads=1, entries=entries).session_options()
        options.optimized_model_filepath = str(tmp_path / f"{label}.onnx")
        ort.InferenceSession(str(minilm_bundle / "model.fused.onnx"), options, providers=["CPUExecutionProvider"])
        optimized[label] = Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    assert optimized["as loaded"]["SkipLayerNormalization"] == 0
    assert optimized["without"]["SkipLayerNormalization"] == 12  # the setting is what keeps them apart


def test_every_variant_has_the_same_graph_contract(minilm_bundle):
    for variant in ("fp32", "fused", "int8", "fp16"):
        graph = onnx.load(str(minilm_bundle / f"model.{variant}.onnx"), load_external_data=False).graph
        assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
        assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in graph.input)
        assert [o.name for o in graph.output] == [f"hidden_state_{i}" for i in range(7)]
        assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in graph.output)


def test_bundle_tokenizer_gives_exactly_transformers_ids(minilm_bundle, torch_minilm):
    _, hf = torch_minilm
    ours = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    ours.enable_truncation(512)
    texts = list(PARITY_TEXTS) + HELD_OUT
    assert [e.ids for e in ours.encode_batch(texts)] == hf(texts, truncation=True, max_length=512)["input_ids"]


def test_manifest_records_sources_sizes_digests_and_versions(minilm_bundle):
    data = json.loads((minilm_bundle / "manifest.json").read_text())
    assert data["format"] == "layerwise-bundle" and data["format_version"] == 1
    assert data["model"] == {**data["model"], "model_type": "bert", "num_layers": 6, "hidden_size": 384, "max_length": 512}
    assert data["default_pooling"]["pool"] == "mean" and data["default_pooling"]["normalize"] is True
    assert {"torch", "transformers", "onnx", "onnxruntime"} <= set(data["versions"])
    for entry in data["variants"].values():
        path = minilm_bundle / entry["graph"]["path"]
        assert path.stat().st_size == entry["graph"]["bytes"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["graph"]["sha256"]
        assert entry["parity"]["passed"] and len(entry["parity"]["layers"]) == 7
    int8 = data["variants"]["int8"]
    reasons = {entry["reason"]: entry["op_types"] for entry in int8["kept_float"]}
    assert reasons["embedding lookups: no int8 speed-up, and they would perturb hidden_state_0"]["Gather"] >= 3
    assert reasons["produces hidden states and the residual stream"] == {"LayerNormalization": 13}
    assert reasons["added: SmoothQuant 1/s before the smoothed projections"] == {"Mul": 18}  # QKV, FFN in, FFN out x 6
    assert int8["quantized_matmuls"] == 36 and 0.4 <= int8["alpha"] <= 0.7
    assert not list(minilm_bundle.parent.glob(".minilm.*")), "temporary folders left beside the bundle"
