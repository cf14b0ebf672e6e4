"""``layerwise verify`` / ``Encoder.verify``: each variant re-checked on this machine against the
PyTorch reference stored in the bundle, catching what checksums cannot (a worse int8 graph)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

import layerwise
from layerwise.cli import main
from layerwise.runtime import BundleError
from layerwise.runtime.cpu import describe


def test_verify_passes_every_variant_of_an_intact_bundle(minilm_bundle, capsys):
    assert main(["verify", str(minilm_bundle), "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    for variant in ("fp32", "fused", "int8", "fp16"):
        assert f"\n{variant}: " in out
    assert out.count("PASS") == 4 and "FAIL" not in out


def test_encoder_verify_reports_every_hidden_state(minilm_bundle):
    with layerwise.load(minilm_bundle, variant="int8", provider="cpu") as encoder:
        report = encoder.verify(texts=8)
    assert report.passed and report.texts == 8 and [r.layer for r in report.layers] == list(range(7))
    assert report.bars == {"pooled_cos_mean": 0.995, "pooled_cos_min": 0.99}


def test_verify_fails_an_int8_graph_swapped_for_stock_dynamic_quantization(minilm_bundle, tmp_path, capsys):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tampered = tmp_path / "bundle"
    shutil.copytree(minilm_bundle, tampered)
    graph = tampered / "model.int8.onnx"
    quantize_dynamic(minilm_bundle / "model.fp32.onnx", graph, weight_type=QuantType.QInt8, per_channel=False)
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["variants"]["int8"]["graph"].update(bytes=graph.stat().st_size, sha256=hashlib.sha256(graph.read_bytes()).hexdigest())
    (tampered / "manifest.json").write_text(json.dumps(manifest))

    with layerwise.load(tampered, variant="int8", provider="cpu") as encoder:  # checksums match: it loads
        assert not encoder.verify().passed
    assert main(["verify", str(tampered), "--variant", "int8"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: layer" in out and "FAILED: int8 missed the bar on this machine" in out


def test_verify_without_a_stored_reference_names_the_fix(tiny_bundle, tmp_path):
    old = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["verification"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with (
        layerwise.load(old, variant="fp32", provider="cpu") as encoder,
        pytest.raises(BundleError, match="no verification reference.*re-export"),
    ):
        encoder.verify()


def test_default_cpu_variant_says_why_and_names_the_cpu(minilm_bundle):
    with layerwise.load(minilm_bundle, provider="cpu") as encoder:
        assert encoder.info.variant == "int8"
        assert "int8 accuracy bar" in encoder.info.variant_reason
        assert encoder.info.cpu == describe()["cpu_family"] != "unknown"
    with layerwise.load(minilm_bundle, variant="fused", provider="cpu") as encoder:
        assert encoder.info.variant_reason == "requested"


@pytest.mark.parametrize("texts", [0, -3, 2.5, True])
def test_encoder_verify_refuses_a_count_of_texts_that_is_not_a_positive_int(tiny_bundle, texts):
    with layerwise.load(tiny_bundle, provider="cpu") as encoder, pytest.raises(layerwise.InputError) as caught:
        encoder.verify(texts=texts)
    assert (
        str(caught.value) == f"texts is how many reference texts to check, an int of at least 1, got {texts!r}; pass None to check them all"
    )
