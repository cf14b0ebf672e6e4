"""Embedding results to response bodies: TEI JSON, OpenAI JSON, base64 float32, ``.npy`` and ``.npz``.

Shapes: TEI's default is one flat vector per input (``squeeze`` drops the layer axis);
explicit ``layers`` give the runtime's shape as nested lists. ``"encoding_format": "base64"``
turns each input's array into little-endian float32 bytes, C order (OpenAI's route only:
TEI's /embed has no such field). ``Accept:
application/x-npy`` gives the whole array (pooled output only); ``application/x-npz``
follows ``layerwise embed --output x.npz``: ``embeddings`` and ``layers``, or for per-token
output ``lengths``, ``layers`` and one ``layer_K`` (or ``combined``) array of all tokens.
NaN or Inf never leaves the server: the Encoder raises ``NonFiniteOutputError`` (a 424, server/errors.py);
``check_finite`` is the last guard before a body is written, naming the request's own input.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import orjson

from ..io.npz import npz_pooled, npz_tokens, save_npz
from ..runtime.errors import NonFiniteOutputError
from .errors import NotAcceptable
from .schema import EmbedRequest

NPY, NPZ = "application/x-npy", "application/x-npz"
Output = list[np.ndarray]  # one array per input, pooled or per token (request.options.pool)


def binary_media(accept: str | None) -> str | None:
    """The binary media type an Accept header names (``application/x-npy`` or ``-npz``), else None (JSON)."""
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in (NPY, NPZ):
            return media
    return None


def check_acceptable(request: EmbedRequest, media: str | None) -> None:
    if media == NPY and request.options.pool == "none":
        raise NotAcceptable(
            "per-token output (pool 'none') holds one array per input, which one .npy cannot: "
            f"ask for {NPZ}, or for JSON"
        )


def check_finite(request: EmbedRequest, output: Output) -> None:
    """Raise, naming the first input, if any value is NaN or Inf."""
    for index, row in enumerate(output):
        if not np.isfinite(row).all():
            raise NonFiniteOutputError(
                f"the model produced NaN or Inf for `{request.field}[{index}]`; nothing was returned. "
                "Serve the 'fused' or 'fp32' variant (--variant) for such inputs"
            )


def shaped(request: EmbedRequest, output: Output) -> Output:
    """Drop the layer axis when the request asked for TEI's or OpenAI's flat vectors."""
    return [row[0] for row in output] if request.squeeze else output


def tei_body(request: EmbedRequest, output: Output) -> bytes:
    return _json(_items(request, shaped(request, output)))


def openai_body(request: EmbedRequest, output: Output, model: str, tokens: int) -> bytes:
    items = _items(request, shaped(request, output))
    data = [{"object": "embedding", "index": i, "embedding": item} for i, item in enumerate(items)]
    return _json({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def binary_body(request: EmbedRequest, output: Output, media: str) -> bytes:
    buffer = io.BytesIO()
    options = request.options
    if options.pool == "none":  # NPY was refused by check_acceptable
        save_npz(buffer, npz_tokens(output, options.layers, combined=options.combine is not None))
    elif media == NPY:
        np.save(buffer, np.stack(shaped(request, output)), allow_pickle=False)
    else:
        save_npz(buffer, npz_pooled(np.stack(shaped(request, output)), options.layers))
    return buffer.getvalue()


def _items(request: EmbedRequest, output: Output) -> list[Any]:
    """Each input's array, as base64 text or as the array itself (orjson writes it as nested lists)."""
    if request.encoding == "base64":
        return [base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii") for row in output]
    return [np.ascontiguousarray(row, dtype=np.float32) for row in output]


def _json(payload: Any) -> bytes:
    """Compact JSON; float32 arrays as their shortest round-tripping decimals (orjson: about 20x faster
    than json.dumps over ``tolist()`` for 32 vectors of 384; docs/benchmarks.md). NaN never gets here (check_finite)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
