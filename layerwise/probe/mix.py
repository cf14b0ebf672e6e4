"""A learned scalar mix of layers (ELMo, AllenNLP's ScalarMix, jiant): ``gamma * sum_k softmax(w)_k h_k``.

The softmax parameters ``w`` are learned jointly with a linear probe by L-BFGS (scipy) on one
objective, the probes' own: ``C * sum(loss) + 0.5 * |W|^2`` (softmax cross-entropy for
classes, half squared error on a standardised target for regression), from uniform weights.
While learning, each layer is centred and divided by its RMS over the training rows (no layer
wins by its scale), and the mix is divided by its own RMS: with a fixed scale the penalty on
``W`` would favour one layer alone, since a blend of partly independent layers has a smaller
norm than any one of them; a free gamma would only trade against ``|W|`` and grow without
bound. The weights returned apply to the raw hidden states (``w_raw_k ∝ softmax(w)_k / rms_k``)
and gamma scales their blend to unit RMS: ``combine="scalar_mix"`` computes exactly the mix
learned (up to a constant vector, which a probe's intercept absorbs). Fit on training rows
only: the caller passes one fold's training rows. Not handled here: scoring (fit.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

MAX_ROWS = 20_000  # training rows used to learn the weights (a seeded sample beyond that): bounds time and memory
MAX_ITER = 500


@dataclass(frozen=True)
class ScalarMix:
    """Learned weights over hidden states 0..L, in the form ``combine="scalar_mix"`` takes."""

    parameters: np.ndarray  # pre-softmax scalar parameters w (AllenNLP's scalar_parameters), mean 0
    gamma: float

    @property
    def weights(self) -> np.ndarray:
        """softmax(parameters): the share of each layer, summing to 1."""
        return _softmax(self.parameters)

    def apply(self, hidden: np.ndarray) -> np.ndarray:
        """[texts, layers, hidden] -> [texts, hidden]: ``gamma * sum_k weights_k h_k``."""
        return (self.gamma * np.einsum("nkh,k->nh", hidden, self.weights.astype(np.float32))).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def learn_scalar_mix(hidden: np.ndarray, y: np.ndarray, task: str, classes: int, C: float = 1.0, seed: int = 0) -> ScalarMix:
    """Learn the mix on training rows ``hidden`` [n, layers, dim] with targets ``y`` (class indices or numbers)."""
    if len(hidden) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(hidden), MAX_ROWS, replace=False))
        hidden, y = hidden[keep], y[keep]
    n, layers, dim = hidden.shape
    centred = hidden - hidden.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    rms = np.sqrt(np.mean(np.square(centred, dtype=np.float64), axis=(0, 2)))  # [layers]
    z = (centred / np.maximum(rms, 1e-12)[None, :, None].astype(np.float32)).astype(np.float32)
    if task == "classification":
        outputs = classes
        target = np.eye(classes)[y]
    else:
        outputs = 1
        target = ((y - y.mean()) / y.std())[:, None]
    penalty = 1.0 / (C * n)  # the mean-loss form of C * sum(loss) + 0.5 |W|^2

    def split(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return params[:layers], params[layers : layers + dim * outputs].reshape(dim, outputs), params[layers + dim * outputs :]

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, W, b = split(params)
        s = _softmax(theta)
        blend = np.einsum("nkh,k->nh", z, s.astype(np.float32)).astype(np.float64)  # [n, dim], centred
        scale = np.sqrt(np.mean(np.square(blend)))
        mixed = blend / scale
        out = mixed @ W + b
        if task == "classification":
            out -= out.max(axis=1, keepdims=True)
            log_p = out - np.log(np.exp(out).sum(axis=1, keepdims=True))
            loss = -(target * log_p).sum() / n
            grad_out = (np.exp(log_p) - target) / n
        else:
            residual = out - target
            loss = 0.5 * np.square(residual).sum() / n
            grad_out = residual / n
        loss += 0.5 * penalty * np.square(W).sum()
        grad_W = mixed.T @ grad_out + penalty * W
        grad_mixed = grad_out @ W.T  # [n, dim]
        grad_blend = (grad_mixed / scale - blend * ((grad_mixed * blend).sum() / (scale**3 * blend.size))).astype(np.float32)
        grad_s = np.einsum("nh,nkh->k", grad_blend, z).astype(np.float64)
        grad_theta = s * (grad_s - s @ grad_s)
        return float(loss), np.concatenate([grad_theta, grad_W.ravel(), grad_out.sum(axis=0)])

    start = np.zeros(layers + dim * outputs + outputs)
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITER})
    share = _softmax(result.x[:layers])
    raw = share / np.maximum(rms, 1e-12)  # per unit of raw hidden state
    blend = np.einsum("nkh,k->nh", centred, raw.astype(np.float32) / raw.sum())
    gamma = float(1.0 / max(np.sqrt(np.mean(np.square(blend, dtype=np.float64))), 1e-12))
    parameters = np.log(np.maximum(raw / raw.sum(), 1e-300))
    return ScalarMix(parameters - parameters.mean(), gamma)
