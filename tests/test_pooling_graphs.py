"""The bundle's pooling graphs on hand-built arrays: padding never leaks into mean, max or cls."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from layerwise.exporter.pooling_graphs import build_pooling_graph

# two texts, sequence 3, hidden 2; text 1 has one padding position holding huge values
STATES = np.array([[[1, -4], [3, -2], [5, 0]], [[-1, -3], [-5, -7], [1000, 1000]]], dtype=np.float32)
MASK = np.array([[1, 1, 1], [1, 1, 0]], dtype=np.int64)


def _pool(kind: str, states=STATES, mask=MASK) -> np.ndarray:
    session = ort.InferenceSession(build_pooling_graph(kind, 2).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"hidden_state": states, "attention_mask": mask})[0]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("mean", [[3, -2], [-3, -5]]), ("max", [[5, 0], [-1, -3]]), ("cls", [[1, -4], [-1, -3]])],
)
def test_pooling_uses_real_tokens_only(kind, expected):
    np.testing.assert_array_equal(_pool(kind), np.array(expected, dtype=np.float32))


def test_a_row_without_real_tokens_pools_to_zero_not_nan():
    out = _pool("mean", STATES[:1], np.zeros((1, 3), dtype=np.int64))
    np.testing.assert_array_equal(out, np.zeros((1, 2), dtype=np.float32))


@pytest.mark.parametrize("kind", ["mean", "max"])
def test_nan_or_inf_in_a_real_token_reaches_the_pooled_vector(kind):
    for bad in (np.nan, np.inf, -np.inf):
        states = STATES.copy()
        states[0, 1, 0] = bad  # text 0, second (real) token
        out = _pool(kind, states)
        assert not np.isfinite(out[0]).all() and np.isfinite(out[1]).all(), (kind, bad, out)


@pytest.mark.parametrize("kind", ["mean", "max", "cls"])
def test_inf_or_nan_in_padding_does_not_poison_a_healthy_text(kind):
    states = STATES.copy()
    states[1, 2] = [np.inf, np.nan]  # text 1's padding position
    np.testing.assert_array_equal(_pool(kind, states), _pool(kind))
