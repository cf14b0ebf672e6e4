"""Write a Triton model repository for one bundle variant.

Layout: ``REPO/NAME/config.pbtxt``, ``REPO/NAME/1/model.onnx`` (plus its external data), and
``REPO/NAME/tokenizer.json`` with ``layerwise.json`` (max length, pad id, layers, hidden size, the inputs and their roles)
for the client that tokenizes. The config states the graph contract: int64 inputs
``dims: [-1]``, one ``hidden_state_K`` output per layer ``dims: [-1, hidden]`` (the batch
dimension is Triton's, up to ``max_batch_size``), dynamic batching, one instance group, and
ONNX Runtime's thread counts. Not handled: tokenization on the server (Triton's Python
backend could do it; clients tokenize with the copied tokenizer.json).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..runtime.bundle import open_bundle
from ..runtime.errors import InputError
from ..runtime.loader import choose_variant
from ..runtime.manifest import GraphInput, output_name

KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
PROVIDER_OF_KIND = {"cpu": "cpu", "gpu": "cuda"}
QUEUE_DELAY_US = 2000  # how long Triton holds a request for others to join its batch
SIDE_FILES = ("tokenizer.json", "layerwise.json")


def config_text(
    name: str, inputs: Sequence[GraphInput], num_layers: int, hidden: int, kind: str, instances: int, max_batch_size: int, threads: int
) -> str:
    """The ``config.pbtxt`` text (protobuf text format of Triton's ModelConfig)."""
    declared = ",\n".join(f'  {{ name: "{i.name}" data_type: TYPE_INT64 dims: [ -1 ] }}' for i in inputs)
    outputs = ",\n".join(f'  {{ name: "{output_name(k)}" data_type: TYPE_FP32 dims: [ -1, {hidden} ] }}' for k in range(num_layers + 1))
    params = {"intra_op_thread_count": threads, "inter_op_thread_count": 1}
    parameters = "\n".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items())
    return (
        f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch_size}\n'
        f"input [\n{declared}\n]\noutput [\n{outputs}\n]\n"
        f"dynamic_batching {{ max_queue_delay_microseconds: {QUEUE_DELAY_US} }}\n"
        f"instance_group [ {{ count: {instances} kind: {KINDS[kind]} }} ]\n{parameters}\n"
    )


def _check_folder(repo: Path) -> None:
    """--out must be a folder, or a path where one can be made: refuse a file in the way by name."""
    for path in (repo, *repo.parents):
        if path.exists():
            if not path.is_dir():
                raise InputError(
                    f"--out {str(repo)!r}: {str(path)!r} is a file, not a folder; pass a new or existing folder for the model repository"
                )
            return


def write_repository(
    bundle_dir: str | os.PathLike[str],
    repo: str | os.PathLike[str],
    variant: str | None = None,
    kind: str = "cpu",
    instances: int = 1,
    max_batch_size: int = 32,
    threads: int = 1,
    name: str | None = None,
) -> Path:
    """Write (or replace) model ``name`` in repository ``repo``; return the model folder."""
    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for flag, value in (("instances", instances), ("max-batch-size", max_batch_size), ("threads", threads)):
        if value < 1:
            raise InputError(f"--{flag} must be at least 1, got {value}")
    _check_folder(Path(repo))
    bundle = open_bundle(bundle_dir)
    manifest = bundle.manifest
    chosen = choose_variant(manifest, PROVIDER_OF_KIND[kind], variant)  # the runtime's own choice and checks
    model = name or f"{Path(bundle_dir).resolve().name}-{chosen}".replace(".", "_")
    graph = bundle.variant_graph(manifest.variants[chosen])  # verified: digests and external-data paths
    target = Path(repo) / model
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model}.", dir=target.parent))
    try:
        version = staging / "1"
        version.mkdir()
        (version / "model.onnx").write_bytes(graph.model_bytes)
        for entry in manifest.variants[chosen].external_data:
            shutil.copyfile(
                bundle.path / entry.path, version / Path(entry.path).relative_to(Path(manifest.variants[chosen].graph.path).parent)
            )
        (staging / "config.pbtxt").write_text(
            config_text(
                model, manifest.inputs, manifest.model.num_layers, manifest.model.hidden_size, kind, instances, max_batch_size, threads
            )
        )
        (staging / "tokenizer.json").write_text(bundle.tokenizer_json(), encoding="utf-8")
        info = manifest.model
        side = {
            "variant": chosen,
            "max_length": info.max_length,
            "pad_token_id": info.pad_token_id,
            "num_layers": info.num_layers,
            "hidden_size": info.hidden_size,
            "outputs": manifest.output_names,
            "inputs": [i.to_json() for i in manifest.inputs],
        }
        (staging / "layerwise.json").write_text(json.dumps(side, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
