"""The peer table and the shared bundle-graph pipeline, run here on plain ONNX Runtime (the other
engines live in benchmarks/.venv-peers and are proven by the worker's smoke runs)."""

from __future__ import annotations

import numpy as np
import pytest

import layerwise
from benchmarks.common import cosine
from benchmarks.jobs.peers_worker import choose, parse_args
from benchmarks.peerkit.base import Context
from benchmarks.peerkit.ort_peer import build_onnxruntime
from benchmarks.peerkit.torch_peers import build_pytorch

TEXTS = ["Hello, world!", "A much longer sentence that needs more tokens than the first one does.", "", "Call me Ishmael."]


def test_the_table_refuses_unknown_peers_and_jobs_a_peer_cannot_do(tmp_path):
    errors: dict[str, str] = {}
    args = parse_args(
        [
            "--texts",
            "t.json",
            "--out-dir",
            str(tmp_path),
            "--job",
            "all_layers",
            "--peers",
            "openvino-int8,ctranslate2-int8,pytorch-sorted,nope",
        ]
    )
    assert list(choose(args, errors, {})) == ["openvino-int8"]
    assert errors["nope"].startswith("unknown peer (known: pytorch-plain,")
    assert (
        errors["ctranslate2-int8"]
        == "cannot do job 'all_layers' (peers that can: onnxruntime-fp32, openvino-fp32, openvino-default, openvino-int8)"
    )
    # the all-layers PyTorch loops run in benchmarks/jobs/all_layers.py
    assert errors["pytorch-sorted"].startswith("cannot do job 'all_layers'")


@pytest.mark.parametrize("job", ["all_layers", "last_layer"])
def test_bundle_graph_peer_matches_layerwise_on_the_same_graph(tiny_bundle, tmp_path, job):
    ctx = Context(model_dir=tmp_path, scratch=tmp_path, batch_size=2, threads=1, job=job, bundle=tiny_bundle)
    got = build_onnxruntime(ctx).embed(TEXTS)
    want = layerwise.load(tiny_bundle, variant="fp32", provider="cpu", threads=1).embed(TEXTS, batch_size=2)
    np.testing.assert_allclose(got, want if job == "all_layers" else want[:, -1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sort, bf16", [(False, False), (True, False), (True, True)])
def test_pytorch_peers_pool_the_last_layer_as_layerwise_does(tiny_bert, tiny_bundle, tmp_path, sort, bf16):
    ctx = Context(model_dir=tiny_bert, scratch=tmp_path, batch_size=2, threads=1, job="last_layer", bundle=tiny_bundle)
    got = build_pytorch(ctx, sort=sort, bf16=bf16).embed(TEXTS)
    want = layerwise.load(tiny_bundle, variant="fp32", provider="cpu", threads=1).embed(TEXTS, batch_size=2)[:, -1]
    assert got.shape == want.shape and got.dtype == np.float32
    if bf16:  # rounded, yet the same vectors
        assert cosine(got, want).min() > 0.99 and not np.allclose(got, want, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_peer_without_the_bundle_it_needs_says_how_to_pass_it(tmp_path):
    ctx = Context(model_dir=tmp_path, scratch=tmp_path, batch_size=2, threads=1, job="last_layer")
    with pytest.raises(ValueError, match="pass --bundle BUNDLE"):
        build_onnxruntime(ctx)
