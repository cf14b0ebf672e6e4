"""The bundle records its graphs' inputs with their roles, and loaders feed exactly those.

Version 1 manifests (before ``inputs``) are BERT's three inputs; a BERT bundle is still written
as version 1 so older readers keep reading it. Bad ``inputs`` entries are refused by name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import layerwise
from layerwise.runtime.errors import BundleError
from layerwise.runtime.manifest import LEGACY_INPUTS, GraphInput, read_manifest
from layerwise.runtime.tokenize import Batch

TEXTS = ["The cat sat on the mat.", "A much longer sentence about layer-wise embeddings of encoders.", "short"]


@pytest.fixture
def bundle(tmp_path, tiny_bundle) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    return copy


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_a_bert_bundle_lists_its_three_inputs_with_roles_and_stays_version_1(tiny_bundle):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    assert data["format_version"] == 1
    assert data["inputs"] == [
        {"name": "input_ids", "role": "ids"},
        {"name": "attention_mask", "role": "mask"},
        {"name": "token_type_ids", "role": "type_ids"},
    ]
    assert [i["role"] for i in data["graph_contract"]["inputs"]] == ["ids", "mask", "type_ids"]
    assert read_manifest(tiny_bundle).inputs == LEGACY_INPUTS


def test_a_version_1_manifest_without_inputs_still_loads_as_berts_three(bundle, tiny_bundle):
    _edit_manifest(bundle, lambda d: d.pop("inputs"))
    assert read_manifest(bundle).inputs == LEGACY_INPUTS
    old = layerwise.load(bundle, variant="fp32").embed(TEXTS, layers="all")
    new = layerwise.load(tiny_bundle, variant="fp32").embed(TEXTS, layers="all")
    np.testing.assert_array_equal(old, new)


def test_a_version_2_manifest_must_list_its_inputs(bundle):
    def edit(d):
        d["format_version"] = 2
        d.pop("inputs")

    _edit_manifest(bundle, edit)
    with pytest.raises(BundleError, match=r"manifest format version 2 must list the graph 'inputs'; re-export the bundle"):
        layerwise.load(bundle)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [{"name": "input_ids", "role": "ids"}, {"name": "attention_mask", "role": "position"}],
            r"inputs\[1\].role 'position' is unknown; roles: ids, mask, type_ids",
        ),
        ([{"name": "input_ids", "role": "ids"}], r"must name each input and role once and include roles ids, mask"),
        ([{"name": "x", "role": "ids"}, {"name": "x", "role": "mask"}], r"must name each input and role once"),
        (
            [{"name": "input ids; rm", "role": "ids"}, {"name": "m", "role": "mask"}],
            r"inputs\[0\].name 'input ids; rm' is not a valid graph input name",
        ),
        ("input_ids", r"'inputs' must be a non-empty list of \{name, role\}"),
    ],
)
def test_bad_inputs_are_refused_naming_the_entry(bundle, inputs, message):
    _edit_manifest(bundle, lambda d: d.update(inputs=inputs))
    with pytest.raises(BundleError, match=message):
        read_manifest(bundle)


def test_a_manifest_whose_inputs_differ_from_the_graph_is_refused_at_load(bundle):
    _edit_manifest(
        bundle,
        lambda d: d.update(format_version=2, inputs=[{"name": "input_ids", "role": "ids"}, {"name": "attention_mask", "role": "mask"}]),
    )
    with pytest.raises(
        BundleError,
        match=r"model.fp32.onnx has inputs \['attention_mask', 'input_ids', 'token_type_ids'\], but the manifest lists \['input_ids', "
            r"'attention_mask'\]",
    ):
        layerwise.load(bundle, variant="fp32")


def test_batch_feeds_follow_the_roles_not_the_names():
    ids, mask = np.array([[5, 6, 0]]), np.array([[1, 1, 0]])
    batch = Batch(indices=np.arange(1), input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids))
    feeds = batch.feeds([GraphInput("tokens", "ids"), GraphInput("m", "mask")])
    assert list(feeds) == ["tokens", "m"] and feeds["tokens"] is ids and feeds["m"] is mask
