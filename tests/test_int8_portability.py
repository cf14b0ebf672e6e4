"""int8 gives the same numbers on every CPU: the pair-bounded weights cannot saturate the
int16 pair sums of x86 kernels without VNNI (AVX2, AVX-512BW), checked three ways: the
bound itself on the exported graph, a numpy model of those kernels, and the real ONNX
Runtime AVX2 kernels under QEMU's Haswell CPU model beside this machine's own kernels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from layerwise.exporter.quantize import PAIR_LIMIT, pair_bounded_int8
from layerwise.exporter.texts import corpus_sentences

from .reference import cosine, mean_pool, onnx_states, torch_states

QEMU = "qemu-x86_64-static"
RUN_GRAPH = Path(__file__).with_name("run_graph.py")


def int16_pair_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """uint8 [M, K] x int8 [K, N] as vpmaddubsw + vpmaddwd compute it: products of K-neighbours
    (2j, 2j+1) added in int16 with saturation, then summed exactly in int32."""
    a64, w64 = a.astype(np.int64), w.astype(np.int64)
    pairs = a64[:, 0::2, None] * w64[None, 0::2] + a64[:, 1::2, None] * w64[None, 1::2]  # [M, K/2, N]
    return np.clip(pairs, -32768, 32767).sum(axis=1)


def worst_activations(w: np.ndarray) -> np.ndarray:
    """For each output channel's weights, the uint8 rows (1 or 255 per element) that maximise |pair sums|."""
    return np.where(w.T > 0, 255, 1).astype(np.uint8)  # [N, K]: row n pushes channel n's pairs to the top


def projection_weights(graph: Path) -> dict[str, np.ndarray]:
    """The int8 weights of every MatMulIntegerToFloat of a graph, by node name."""
    model = onnx.load(str(graph))
    inits = {t.name: t for t in model.graph.initializer}
    return {n.name: numpy_helper.to_array(inits[n.input[1]]) for n in model.graph.node if n.op_type == "MatMulIntegerToFloat"}


def test_int16_pair_model_saturates_stock_weights_but_not_pair_bounded_ones():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(384, 64)).astype(np.float32)
    stock = np.clip(np.round(weight / (np.abs(weight).max(axis=0) / 127)), -127, 127).astype(np.int8)
    bounded, _ = pair_bounded_int8(weight)
    for w, saturates in ((stock, True), (bounded, False)):
        a = worst_activations(w)
        exact = a.astype(np.int64) @ w.astype(np.int64)
        assert (int16_pair_matmul(a, w) != exact).any() == saturates


def test_every_int8_weight_pair_of_minilm_is_bounded(minilm_bundle):
    weights = projection_weights(minilm_bundle / "model.int8.onnx")
    assert len(weights) == 6 * 6  # Q, K, V, attention output, FFN in and out of each of the 6 layers
    for name, w in weights.items():
        pairs = np.abs(w.astype(np.int64)).reshape(-1, 2, w.shape[1]).sum(axis=1)
        assert pairs.max() <= PAIR_LIMIT, name
        # each channel against its own worst row (the diagonal of int16_pair_matmul(worst_activations(w), w),
        # computed alone: the whole [N, K/2, N] product of an FFN matrix is 3.6 GB and two minutes)
        a, own = worst_activations(w).astype(np.int64), w.T.astype(np.int64)  # [N, K] each
        pairs = (a * own).reshape(w.shape[1], -1, 2).sum(axis=2)
        assert np.array_equal(np.clip(pairs, -32768, 32767).sum(axis=1), (a * own).sum(axis=1)), name


@pytest.fixture(scope="module")
def sentences_batch(torch_minilm):
    model, tokenizer = torch_minilm
    texts = corpus_sentences(24, skip=1450) + [" ".join(s.split()[:2]) for s in corpus_sentences(8, skip=1480)]
    return torch_states(model, tokenizer, texts)


def test_int8_on_avx2_kernels_equals_this_cpu(minilm_bundle, sentences_batch, tmp_path):
    """The same int8 graph on ONNX Runtime's AVX2 kernels (QEMU Haswell) and on this CPU's."""
    qemu = shutil.which(QEMU)
    assert qemu, f"{QEMU} is missing: `make test` installs it (apt-get install qemu-user-static)"
    _, feeds = sentences_batch
    np.savez(tmp_path / "feeds.npz", **feeds)
    command = [
        qemu,
        "-cpu",
        "Haswell",
        sys.executable,
        str(RUN_GRAPH),
        str(minilm_bundle / "model.int8.onnx"),
        str(tmp_path / "feeds.npz"),
        str(tmp_path / "avx2.npz"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(tmp_path / "avx2.npz") as emulated:
        assert bool(emulated["pair_sums_saturate"])  # QEMU really ran ONNX Runtime's int16 pair-summing AVX2 kernels
        avx2 = [emulated[f"hidden_state_{i}"] for i in range(7)]
    here = onnx_states(minilm_bundle / "model.int8.onnx", feeds)
    for layer, (a, b) in enumerate(zip(avx2, here)):
        pooled = cosine(mean_pool(a, feeds["attention_mask"]), mean_pool(b, feeds["attention_mask"]))
        assert pooled.min() >= 0.999, (layer, pooled.min())  # float rounding moves a few quantization steps; saturation costs 0.98


def test_int8_through_load_meets_the_bar_on_held_out_sentences(minilm_bundle, torch_minilm):
    import layerwise

    model, tokenizer = torch_minilm
    texts = corpus_sentences(96, skip=960) + [" ".join(s.split()[: 1 + i % 4]) for i, s in enumerate(corpus_sentences(32, skip=1056))]
    want = np.concatenate(
        [
            np.stack([mean_pool(h, f["attention_mask"]) for h in states], axis=1)
            for states, f in (torch_states(model, tokenizer, texts[i : i + 32]) for i in range(0, len(texts), 32))
        ]
    )
    with layerwise.load(minilm_bundle, variant="int8", provider="cpu") as encoder:
        got = encoder.embed(texts, layers="all", pool="mean")
    for layer in range(7):
        pooled = cosine(got[:, layer], want[:, layer])
        assert pooled.mean() >= 0.995 and pooled.min() >= 0.99, (layer, pooled.mean(), pooled.min())
