"""benchmarks/experiments/graph_ab.py: each change rewrites what it says and nothing else, and the table runs end to end."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import layerwise
from benchmarks import common
from benchmarks.common import machine
from benchmarks.experiments import graph_ab
from layerwise.runtime.manifest import read_manifest

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hidden states of every layer.", "a"]


@pytest.fixture(scope="module")
def tiny_int8_bundle(tmp_path_factory, tiny_bert):
    return layerwise.export(str(tiny_bert), tmp_path_factory.mktemp("ab") / "tiny", variants=["fp32", "fused", "int8"])


def _states(bundle, variant):
    with layerwise.load(bundle, variant=variant, provider="cpu") as encoder:
        return np.asarray(encoder.embed(TEXTS))


@pytest.mark.parametrize("name", ["merged-qkv", "matmulnbits-32"])
def test_a_graph_change_computes_the_same_hidden_states(tiny_int8_bundle, tmp_path, name):
    change = graph_ab.CHANGES[name]
    copy = graph_ab.changed_bundle(tiny_int8_bundle, change, tmp_path / name)
    ops = {n.op_type for n in onnx.load(str(copy / "model.int8.onnx")).graph.node}
    assert ("MatMulNBits" in ops) == (name == "matmulnbits-32") and ("Split" in ops) == (name == "merged-qkv")
    got, want = _states(copy, "int8"), _states(tiny_int8_bundle, "int8" if name == "merged-qkv" else "fp32")
    tolerance = 1e-5 if name == "merged-qkv" else 0.05  # the same integers; 8-bit blocks against float
    np.testing.assert_allclose(got, want, atol=tolerance * np.abs(want).max())


def test_a_session_config_change_touches_only_the_manifest(tiny_int8_bundle, tmp_path):
    copy = graph_ab.changed_bundle(tiny_int8_bundle, graph_ab.CHANGES["skip-norms-refused"], tmp_path / "refused")
    assert (copy / "model.fused.onnx").read_bytes() == (tiny_int8_bundle / "model.fused.onnx").read_bytes()
    assert json.loads((copy / "manifest.json").read_text())["variants"]["fused"]["session_config"] == {}
    assert json.loads((tiny_int8_bundle / "manifest.json").read_text())["variants"]["fused"]["session_config"] != {}


def test_the_table_has_a_row_per_change_and_current_variant_and_is_written_on_request(tiny_int8_bundle, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert graph_ab.main([str(tiny_int8_bundle), "--texts", "4", "--repeats", "1", "--write"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert sorted(r.split(" | ")[0].removeprefix("| ") for r in rows) == sorted(["current int8", "current fused", *graph_ab.CHANGES])
    (written,) = tmp_path.glob("*-graph_ab.md")
    assert written.name.endswith(f"-{machine()['cpu_family']}-graph_ab.md") and all(r in written.read_text() for r in rows)


def test_unknown_changes_and_missing_variants_are_refused(tiny_bundle, capsys):
    with pytest.raises(SystemExit):
        graph_ab.main([str(tiny_bundle), "--changes", "faster"])
    assert "unknown changes ['faster']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        graph_ab.main([str(tiny_bundle), "--changes", "merged-qkv"])
    assert "the bundle lacks variant(s) int8" in capsys.readouterr().err


def test_per_tensor_scales_put_scale_and_bias_in_the_kernel_and_tie_a_text_to_its_batch(tiny_int8_bundle, tmp_path):
    current = onnx.load(str(tiny_int8_bundle / "model.int8.onnx"))
    calls = sum(n.op_type == "MatMulIntegerToFloat" for n in current.graph.node)
    for name, per_tensor_calls in (("per-tensor-activations", calls), ("per-tensor-but-ffn-out", calls - calls // 6)):
        copy = graph_ab.changed_bundle(tiny_int8_bundle, graph_ab.CHANGES[name], tmp_path / name)
        model = onnx.load(str(copy / "model.int8.onnx"))
        with_bias = [n for n in model.graph.node if n.op_type == "MatMulIntegerToFloat" and len(n.input) == 7]
        assert len(with_bias) == per_tensor_calls, name  # 6 projections a layer; the FFN output (K > N) kept per token
        assert len(model.graph.node) < len(current.graph.node)  # its row-scale Muls and bias Adds are gone
        np.testing.assert_allclose(_states(copy, "int8"), _states(tiny_int8_bundle, "int8"), atol=0.1)
        with layerwise.load(copy, variant="int8", provider="cpu") as encoder:
            alone = np.stack([encoder.embed([t])[0] for t in TEXTS])
            assert np.abs(alone - encoder.embed(TEXTS)).max() > 1e-3  # one scale for the batch: its texts share it
    with layerwise.load(tiny_int8_bundle, variant="int8", provider="cpu") as encoder:
        alone = np.stack([encoder.embed([t])[0] for t in TEXTS])
        np.testing.assert_allclose(alone, encoder.embed(TEXTS), atol=1e-5)  # per token: a text's own scales


def test_multi_head_attention_replaces_each_layers_float_attention_with_the_same_values(tiny_int8_bundle, tmp_path):
    copy = graph_ab.changed_bundle(tiny_int8_bundle, graph_ab.CHANGES["multi-head-attention"], tmp_path / "mha")
    ops = [n.op_type for n in onnx.load(str(copy / "model.int8.onnx")).graph.node]
    layers = read_manifest(tiny_int8_bundle).model.num_layers
    assert ops.count("MultiHeadAttention") == layers and "Softmax" not in ops and "Transpose" not in ops
    want = _states(tiny_int8_bundle, "int8")
    np.testing.assert_allclose(_states(copy, "int8"), want, atol=1e-5 * np.abs(want).max())


def test_static_scales_are_constants_so_a_text_keeps_its_vector_in_any_batch(tiny_int8_bundle, tmp_path):
    copy = graph_ab.changed_bundle(tiny_int8_bundle, graph_ab.CHANGES["static-scales-but-ffn-out"], tmp_path / "static")
    model = onnx.load(str(copy / "model.int8.onnx"))
    calls = [n for n in model.graph.node if n.op_type == "MatMulIntegerToFloat"]
    constants = {t.name for t in model.graph.initializer}
    assert sum(n.input[2] in constants and n.input[2] != "int8_one" for n in calls) == len(calls) - len(calls) // 6
    np.testing.assert_allclose(_states(copy, "int8"), _states(tiny_int8_bundle, "int8"), atol=0.1)
    with layerwise.load(copy, variant="int8", provider="cpu") as encoder:
        alone = np.stack([encoder.embed([t])[0] for t in TEXTS])
        np.testing.assert_allclose(alone, encoder.embed(TEXTS), atol=1e-5)
