"""The peer table: every contender the worker can build, and the jobs it can do.

Adding a peer is one row here plus its builder in the module of its family.
"""

from __future__ import annotations

from functools import partial

from .base import JOBS, Spec
from .ct2_peers import build_ctranslate2
from .hf_onnx_peers import build_fastembed, build_optimum
from .ort_peer import build_onnxruntime
from .ov_peers import build_openvino
from .st_peers import build_st_onnx, build_st_onnx_int8, build_st_torch
from .torch_peers import bf16_autocast_skip_reason, build_pytorch

PEERS: dict[str, Spec] = {
    "pytorch-plain": Spec(partial(build_pytorch, sort=False)),
    "pytorch-sorted": Spec(partial(build_pytorch, sort=True)),
    "pytorch-bf16": Spec(partial(build_pytorch, sort=True, bf16=True), skip_reason=bf16_autocast_skip_reason),
    "st-torch": Spec(build_st_torch),
    "st-onnx": Spec(build_st_onnx),
    "st-onnx-int8": Spec(build_st_onnx_int8),
    "fastembed": Spec(build_fastembed),
    "optimum": Spec(build_optimum),
    "onnxruntime-fp32": Spec(build_onnxruntime, jobs=JOBS),
    "openvino-fp32": Spec(partial(build_openvino, precision="fp32"), jobs=JOBS),
    "openvino-default": Spec(partial(build_openvino, precision="default"), jobs=JOBS),
    "openvino-int8": Spec(partial(build_openvino, precision="int8"), jobs=JOBS),
    "ctranslate2-int8": Spec(partial(build_ctranslate2, precision="int8")),
    "ctranslate2-fp32": Spec(partial(build_ctranslate2, precision="fp32")),
}


def peers_for(job: str) -> list[str]:
    """The peer names that can do ``job``, in table order."""
    return [name for name, spec in PEERS.items() if job in spec.jobs]
