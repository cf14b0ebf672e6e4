"""``combine="scalar_mix"``: ``gamma * sum_k softmax(weights)_k * layer_k`` (AllenNLP's ScalarMix), equal to
the weighted sum computed by hand from ``combine=None``, through the Python API, the CLI and extract;
weights of the wrong length, or without scalar_mix, refused naming the fix."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import layerwise
from layerwise.cli import main
from layerwise.runtime import EmbedOptions, InputError

TEXTS = ["the cat sat on the mat", "a storm is coming over the hills", "prices rose in March"]
WEIGHTS = (0.5, -1.0, 2.0)
GAMMA = 1.7


def by_hand(per_layer: np.ndarray, weights: tuple[float, ...] = WEIGHTS, gamma: float = GAMMA) -> np.ndarray:
    """[..., layers, hidden] mixed in float64: softmax of the weights, times gamma, summed over layers."""
    w = np.exp(np.asarray(weights) - max(weights))
    return gamma * np.tensordot(per_layer.astype(np.float64), w / w.sum(), axes=([-2], [0]))


@pytest.fixture(scope="module")
def encoder(tiny_bundle):
    return layerwise.load(tiny_bundle, variant="fp32", provider="cpu", threads=1)


def test_pooled_and_per_token_mixes_equal_the_weighted_sum_by_hand(encoder):
    layers = [0, 1, -1]
    separate = encoder.embed(TEXTS, layers=layers)
    mixed = encoder.embed(TEXTS, layers=layers, combine="scalar_mix", weights=WEIGHTS, gamma=GAMMA)
    np.testing.assert_allclose(mixed, by_hand(separate), atol=1e-5)
    tokens = encoder.embed_tokens(TEXTS, layers=layers)
    mixed_tokens = encoder.embed_tokens(TEXTS, options=EmbedOptions(layers=tuple(layers), pool="none", combine="scalar_mix",
                                                                   weights=WEIGHTS, gamma=GAMMA))  # fmt: skip
    for states, mixed_states in zip(tokens, mixed_tokens):  # [layers, tokens, hidden] -> [tokens, hidden]
        np.testing.assert_allclose(mixed_states, by_hand(states.transpose(1, 0, 2)), atol=1e-5)


def test_equal_weights_and_gamma_one_are_the_mean_of_the_layers(encoder):
    mean = encoder.embed(TEXTS, layers="all", combine="mean")
    mixed = encoder.embed(TEXTS, layers="all", combine="scalar_mix", weights=[0.0, 0.0])
    np.testing.assert_allclose(mixed, mean, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layers": "all", "combine": "scalar_mix", "weights": [1.0]}, "weights has 1 numbers but 2 layers are chosen"),
        ({"layers": [0, 1], "combine": "scalar_mix", "weights": [1.0, 2.0, 3.0]}, "weights has 3 numbers but 2 layers are chosen"),
        ({"layers": [0, 1], "combine": "scalar_mix"}, "combine='scalar_mix' needs weights, one number per chosen layer"),
        ({"layers": [0, 1], "combine": "mean", "weights": [1.0, 2.0]}, "weights and gamma are the parameters of combine='scalar_mix'"),
        ({"layers": [0, 1], "gamma": 2.0}, "weights and gamma are the parameters of combine='scalar_mix'"),
        ({"layers": [0, 1], "combine": "scalar_mix", "weights": [1.0, float("nan")]}, "weights must be a non-empty list of finite"),
    ],
)
def test_bad_mix_options_are_refused_naming_the_fix(encoder, options, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        encoder.embed(TEXTS, **options)


def test_the_cli_mixes_as_the_python_api(tiny_bundle, tmp_path, encoder):
    out = tmp_path / "mixed.npy"
    args = ["-q", "embed", str(tiny_bundle), *TEXTS, "--variant", "fp32", "--layers", "0,1", "--combine", "scalar_mix"]
    assert main([*args, "--weights", "0.25,-0.5", "--gamma", "2", "--output", str(out)]) == 0
    want = encoder.embed(TEXTS, layers=[0, 1], combine="scalar_mix", weights=[0.25, -0.5], gamma=2.0)
    np.testing.assert_allclose(np.load(out), want, atol=1e-6)
    np.testing.assert_allclose(np.load(out), by_hand(encoder.embed(TEXTS, layers=[0, 1]), (0.25, -0.5), 2.0), atol=1e-5)


def test_the_cli_refuses_weights_of_the_wrong_length_in_flag_words(tiny_bundle, capsys):
    args = ["embed", str(tiny_bundle), "x", "--layers", "0,1", "--combine", "scalar_mix", "--weights", "1"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: --weights has 1 numbers but 2 layers are chosen: give one weight per layer, in the order of --layers\n"
    )


def test_extract_writes_the_mix_and_records_its_weights(tiny_bundle, tmp_path, encoder):
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    args = ["-q", "extract", str(tiny_bundle), "--input", str(tmp_path / "in.txt"), "--output", str(out), "--variant", "fp32"]
    assert main([*args, "--layers", "0,1", "--combine", "scalar_mix", "--weights", "1,0", "--gamma", "3"]) == 0
    table = pq.read_table(out)
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, encoder.embed(TEXTS, layers=[0, 1], combine="scalar_mix", weights=[1.0, 0.0], gamma=3.0), atol=1e-5)
    metadata = json.loads(table.schema.metadata[b"layerwise"])
    assert (metadata["combine"], metadata["weights"], metadata["gamma"]) == ("scalar_mix", [1.0, 0.0], 3.0)
