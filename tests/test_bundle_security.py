"""Loading refuses tampered, truncated and path-escaping bundles, naming the file, before ONNX Runtime reads it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx
import pytest

import layerwise
from layerwise.runtime.errors import BundleError


@pytest.fixture
def bundle(tmp_path, tiny_bundle) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    return copy


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _save_manifest(bundle: Path, data: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(data))


def _rewrite_graph(bundle: Path, variant: str, model: onnx.ModelProto) -> None:
    """Replace a variant's graph and update its manifest entry, as an attacker controlling both could."""
    path = bundle / f"model.{variant}.onnx"
    path.write_bytes(model.SerializeToString())
    data = _manifest(bundle)
    data["variants"][variant]["graph"].update(bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    _save_manifest(bundle, data)


def _point_a_weight_at(bundle: Path, location: str) -> None:
    """Make the fp32 graph read its first weight from external data at ``location``."""
    model = onnx.load(str(bundle / "model.fp32.onnx"))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    _rewrite_graph(bundle, "fp32", model)


def test_a_changed_byte_is_refused_naming_the_file(bundle):
    path = bundle / "model.fp32.onnx"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        BundleError, match=r"variant 'fp32' graph 'model.fp32.onnx' does not match the sha256 in the manifest: the file was changed"
    ):
        layerwise.load(bundle, variant="fp32")


def test_a_truncated_file_is_refused_naming_the_file(bundle):
    path = bundle / "tokenizer.json"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BundleError, match=r"tokenizer 'tokenizer.json' has 1000 bytes but the manifest records \d+: the file is truncated"):
        layerwise.load(bundle)


def test_a_missing_manifest_or_folder_is_explained(tmp_path, bundle):
    with pytest.raises(BundleError, match=r"bundle folder '.*nowhere' does not exist; create one with `layerwise export"):
        layerwise.load(tmp_path / "nowhere")
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match="has no manifest.json: it is not a layerwise bundle"):
        layerwise.load(bundle)


def test_an_unknown_format_version_is_refused(bundle):
    data = _manifest(bundle)
    data["format_version"] = 99
    _save_manifest(bundle, data)
    with pytest.raises(BundleError, match="bundle format version 99 is not supported by this layerwise"):
        layerwise.load(bundle)


@pytest.mark.parametrize("location", ["../secret.bin", "a/../../secret.bin", "/etc/passwd", "..\\secret.bin"])
def test_external_data_leaving_the_bundle_is_refused_before_reading(bundle, location):
    _point_a_weight_at(bundle, location)
    with pytest.raises(BundleError, match="outside the bundle folder; refusing to load it"):
        layerwise.load(bundle, variant="fp32")


def test_external_data_through_a_symlink_out_of_the_bundle_is_refused(tmp_path, bundle):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 64)
    (bundle / "weights.bin").symlink_to(outside)
    _point_a_weight_at(bundle, "weights.bin")
    with pytest.raises(BundleError, match=r"resolves to .*outside.bin outside the bundle folder \(a symbolic link\?\)"):
        layerwise.load(bundle, variant="fp32")


def test_external_data_the_manifest_does_not_list_is_refused(bundle):
    (bundle / "extra.bin").write_bytes(b"\0" * 64)
    _point_a_weight_at(bundle, "extra.bin")
    with pytest.raises(BundleError, match="refers to external data 'extra.bin' that the manifest does not list"):
        layerwise.load(bundle, variant="fp32")


def test_manifest_paths_leaving_the_bundle_are_refused(bundle):
    data = _manifest(bundle)
    data["tokenizer"]["path"] = "../tokenizer.json"
    _save_manifest(bundle, data)
    with pytest.raises(BundleError, match=r"tokenizer refers to '../tokenizer.json', which is outside the bundle folder"):
        layerwise.load(bundle)


def test_a_graph_that_breaks_the_contract_is_refused(bundle):
    model = onnx.load(str(bundle / "model.fp32.onnx"))
    model.graph.output.pop()
    _rewrite_graph(bundle, "fp32", model)
    with pytest.raises(BundleError, match=r"has outputs \['hidden_state_0'\], but the manifest promises 2 hidden states"):
        layerwise.load(bundle, variant="fp32")


@pytest.mark.parametrize("path", ["../model.fp32.onnx", "/etc/hostname", "sub/../../x.onnx"])
def test_graph_paths_leaving_the_bundle_are_refused(bundle, path):
    data = _manifest(bundle)
    data["variants"]["fp32"]["graph"]["path"] = path
    _save_manifest(bundle, data)
    with pytest.raises(BundleError, match="outside the bundle folder; refusing to load it"):
        layerwise.load(bundle, variant="fp32")


def test_a_graph_file_that_is_a_symlink_out_of_the_bundle_is_refused(tmp_path, bundle):
    outside = tmp_path / "elsewhere.onnx"
    (bundle / "model.fp32.onnx").rename(outside)
    (bundle / "model.fp32.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match=r"resolves to .*elsewhere.onnx outside the bundle folder \(a symbolic link\?\)"):
        layerwise.load(bundle, variant="fp32")


def test_a_variants_session_config_reaches_its_sessions(bundle):
    """session.load_model_format=ORT makes ONNX Runtime refuse an ONNX-format file: proof the entry was set."""
    data = _manifest(bundle)
    data["variants"]["fp32"]["session_config"] = {"session.load_model_format": "ORT"}
    _save_manifest(bundle, data)
    with pytest.raises(BundleError, match="could not load variant 'fp32'"):
        layerwise.load(bundle, variant="fp32")
    layerwise.load(bundle, variant="fused").close()  # the entry is the fp32 variant's alone


@pytest.mark.parametrize("config", [["optimization.disable_specified_optimizers"], {"session.intra_op.allow_spinning": 0}])
def test_a_malformed_session_config_is_refused_naming_the_field(bundle, config):
    data = _manifest(bundle)
    data["variants"]["fp32"]["session_config"] = config
    _save_manifest(bundle, data)
    with pytest.raises(BundleError, match=r"variants\.fp32\.session_config must map config keys to string values"):
        layerwise.load(bundle, variant="fp32")
