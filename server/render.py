"""Embedding arrays into bytes: JSON numbers or base64 float32 per input, ``.npy`` and ``.npz``, and the NaN guard.

``vectors`` gives each input's array as JSON takes it: the array itself (orjson writes nested
lists of shortest round-tripping decimals) or, for ``"encoding_format": "base64"``, its
little-endian float32 bytes in C order as base64 text. ``Accept: application/x-npy`` gives the
whole array (pooled output only); ``application/x-npz`` follows ``layerwise embed --output x.npz``:
``embeddings`` and ``layers``, or for per-token output ``lengths``, ``layers`` and one ``layer_K``
(or ``combined``) array of all tokens. NaN or Inf never leaves the server: the Encoder raises
``NonFiniteOutputError`` (a 424, errors.py); ``check_finite`` is the last guard before a body is
written, naming the request's own input. Not handled here: each dialect's JSON envelope (tei.py, openai.py).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import orjson

from ..io.npz import npz_pooled, npz_tokens, save_npz
from ..runtime.errors import NonFiniteOutputError
from ..runtime.options import EmbedOptions
from .errors import NotAcceptable

NPY, NPZ = "application/x-npy", "application/x-npz"
Output = list[np.ndarray]  # one array per input, pooled or per token (options.pool)


def binary_media(accept: str | None) -> str | None:
    """The binary media type an Accept header names (``application/x-npy`` or ``-npz``), else None (JSON)."""
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in (NPY, NPZ):
            return media
    return None


def check_acceptable(options: EmbedOptions, media: str | None) -> None:
    if media == NPY and options.pool == "none":
        raise NotAcceptable(f"per-token output (pool 'none') holds one array per input, which one .npy cannot: ask for {NPZ}, or for JSON")


def check_finite(field: str, output: Output) -> None:
    """Raise, naming the first input, if any value is NaN or Inf."""
    for index, row in enumerate(output):
        if not np.isfinite(row).all():
            raise NonFiniteOutputError(
                f"the model produced NaN or Inf for `{field}[{index}]`; nothing was returned. "
                "Serve the 'fused' or 'fp32' variant (--variant) for such inputs"
            )


def vectors(output: Output, encoding: str) -> list[Any]:
    """Each input's array, as base64 text or as the array itself."""
    if encoding == "base64":
        return [base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii") for row in output]
    return [np.ascontiguousarray(row, dtype=np.float32) for row in output]


def binary_body(options: EmbedOptions, output: Output, media: str, squeeze: bool) -> bytes:
    """``output`` (the runtime's arrays) as one .npy or .npz file; ``squeeze`` drops a pooled output's layer axis."""
    buffer = io.BytesIO()
    assert isinstance(options.layers, tuple)  # resolved (EmbedBody.embed_options)
    if options.pool == "none":  # NPY was refused by check_acceptable
        save_npz(buffer, npz_tokens(output, list(options.layers), combined=options.combine is not None))
        return buffer.getvalue()
    pooled = np.stack([row[0] for row in output] if squeeze else output)
    if media == NPY:
        np.save(buffer, pooled, allow_pickle=False)
    else:
        save_npz(buffer, npz_pooled(pooled, list(options.layers)))
    return buffer.getvalue()


def json_bytes(payload: Any) -> bytes:
    """Compact JSON; float32 arrays as their shortest round-tripping decimals (orjson: about 20x faster
    than json.dumps over ``tolist()`` for 32 vectors of 384; docs/benchmarks.md). NaN never gets here (check_finite)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
