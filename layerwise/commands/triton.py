"""The ``layerwise triton`` flags and their run."""

from __future__ import annotations

import argparse
import importlib.util
import logging
from typing import Any

from ..runtime.manifest import VARIANTS
from .flags import add_bundle, verb

log = logging.getLogger("layerwise")


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "triton", "write a Triton Inference Server model repository (onnxruntime backend)")
    add_bundle(p)
    p.add_argument("--out", required=True, help="model repository folder (created; the model folder in it is replaced)")
    p.add_argument(
        "--variant", choices=VARIANTS, help="default: the runtime's choice for the kind (int8 on cpu, fp16 on gpu, else fused, fp32)"
    )
    p.add_argument("--kind", choices=["cpu", "gpu"], default="cpu", help="instance_group kind")
    p.add_argument("--instances", type=int, default=1, help="model instances (instance_group count)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per instance")
    p.add_argument("--name", help="model name (default: BUNDLE-VARIANT)")
    p.set_defaults(run=run_triton)


def run_triton(args: argparse.Namespace) -> int:
    from ..triton.repository import write_repository

    folder = write_repository(args.bundle, args.out, args.variant, args.kind, args.instances, args.max_batch_size, args.threads, args.name)
    if importlib.util.find_spec("tritonclient") is None:
        log.warning("wrote %s; not checked against Triton's ModelConfig protobuf: pip install 'layerwise[triton]' to check", folder)
    else:
        from ..triton.check import check_model

        check_model(folder)
        log.info("wrote %s; config.pbtxt parses as Triton's ModelConfig and matches the graph", folder)
    print(folder)
    return 0
