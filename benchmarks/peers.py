"""Job 2: pooled last-layer sentence embeddings against the tools people use for it.

The peers live in their own environment (benchmarks/.venv-peers: Optimum pins transformers
below 4.58); they and layerwise run alternately inside that one worker process, and their
vectors come back as .npy files scored against this process's PyTorch reference.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .common import cosine

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def last_layer_reference(model: Any, tokenizer: Any, texts: list[str]) -> np.ndarray:
    from .common import torch_all_layers_mean

    return torch_all_layers_mean(model, tokenizer, texts, 32, sort=False)[:, -1]


def run(bundle: str, model: Any, tokenizer: Any, texts: list[str], threads: int, repeats: int = 5) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        return {"skipped": f"no peer environment at {PEER_PYTHON}; run benchmarks/peers_setup.sh (make bench does)"}
    reference = last_layer_reference(model, tokenizer, texts)
    with tempfile.TemporaryDirectory(prefix="layerwise-peers-") as tmp:
        work = Path(tmp)
        (work / "texts.json").write_text(json.dumps(texts))
        command = [str(PEER_PYTHON), str(HERE / "peers_worker.py"), "--texts", str(work / "texts.json"), "--out-dir", str(work),
                   "--batch-size", "32", "--threads", str(threads), "--repeats", str(repeats), "--bundle", str(Path(bundle).resolve())]  # fmt: skip
        subprocess.run(command, check=True, timeout=3600)
        summary = json.loads((work / "peers.json").read_text())
        for name, row in summary["peers"].items():
            cos = cosine(np.load(work / f"{name}.npy"), reference)
            row.update(cos_min=float(cos.min()), cos_mean=float(cos.mean()))
    return {"batch_size": 32, "threads": threads, "texts": len(texts), **summary}
