"""The peers' pooled embeddings, timed against layerwise in the peers' own environment.

``job="last_layer"``: pooled last-layer sentence embeddings against the tools people use for it;
``job="all_layers"``: every hidden state mean-pooled, against the engines that return every hidden
state (ONNX Runtime and OpenVINO on the bundle's fp32 graph). The peers live in benchmarks/.venv-peers
(Optimum pins transformers below 4.58); they and layerwise run alternately inside that one worker
process (peers_worker.py), and their vectors come back as .npy files scored against this process's
PyTorch reference.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..common import agreement, minilm_dir, torch_all_layers_mean
from ..peerkit.registry import PEERS

BENCHMARKS = Path(__file__).resolve().parents[1]
PEER_PYTHON = BENCHMARKS / ".venv-peers" / "bin" / "python"
BATCH = 32


def run(
    bundle: str, model: Any, tokenizer: Any, texts: list[str], threads: int, repeats: int = 5, job: str = "last_layer",
    peers: tuple[str, ...] | None = None, model_dir: Path | None = None, python: Path = PEER_PYTHON,
) -> dict[str, Any]:
    """Every peer that can do ``job`` (or those of ``peers`` that can) next to the bundle's variants,
    in the peer environment (``python``); ``model_dir``: the checkpoint of ``bundle`` (default MiniLM's)."""
    if not python.exists():
        return {"skipped": f"no peer environment at {python}; run benchmarks/peers_setup.sh (make bench does)"}
    reference = torch_all_layers_mean(model, tokenizer, texts, BATCH, sort=False)
    reference = reference[:, -1] if job == "last_layer" else reference
    with tempfile.TemporaryDirectory(prefix="layerwise-peers-") as tmp:
        work = Path(tmp)
        (work / "texts.json").write_text(json.dumps(texts))
        command = [
            str(python),
            "-m",
            "benchmarks.jobs.peers_worker",
            "--texts",
            str(work / "texts.json"),
            "--out-dir",
            str(work),
            "--job",
            job,
            "--batch-size",
            str(BATCH),
            "--threads",
            str(threads),
            "--repeats",
            str(repeats),
            "--bundle",
            str(Path(bundle).resolve()),
            "--model-dir",
            str(model_dir or minilm_dir()),
        ]
        if peers is not None:
            command += ["--peers", ",".join(p for p in peers if job in PEERS[p].jobs)]
        subprocess.run(command, check=True, timeout=3600, cwd=BENCHMARKS.parent)
        summary = json.loads((work / "peers.json").read_text())
        for name, row in summary["peers"].items():
            scores = agreement(np.load(work / f"{name}.npy"), reference)
            row.update(cos_min=scores["cos_min"], cos_mean=scores["cos_mean_worst_layer"])
    return {"job": job, "batch_size": BATCH, "threads": threads, "texts": len(texts), **summary}
