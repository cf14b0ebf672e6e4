"""The same work on an accelerator: layerwise fp16 with I/O binding against PyTorch eager.

Separates engine-only time (hidden states stay on the device) from time including the copy
of every hidden state back to the host, and the product path (pooled on the device, only
[batch, hidden] per layer copied back). On a machine without CUDA it runs on the CPU
provider with the fused variant, so the code path is exercised by the tests.
"""

from __future__ import annotations

from typing import Any

import layerwise
from layerwise.runtime.tokenize import Batch

from ..common import alternate

BATCH, SEQ = 32, 128


def _torch_contenders(source: str, feeds: dict[str, Any], contenders: dict[str, Any]) -> None:
    """PyTorch fp32 and fp16 eager on CUDA, when torch can see a GPU."""
    import torch
    from transformers import AutoModel

    if not torch.cuda.is_available():
        return
    feeds = {k: torch.from_numpy(v).cuda() for k, v in feeds.items()}
    for dtype, label in ((torch.float32, "fp32"), (torch.float16, "fp16")):
        model = AutoModel.from_pretrained(source, torch_dtype=dtype).cuda().eval()

        def step(model: Any = model) -> None:
            with torch.inference_mode():
                model(**feeds, output_hidden_states=True)
            torch.cuda.synchronize()

        contenders[f"pytorch {label} eager"] = step


def run(bundle: str, provider: str = "cuda", source: str | None = None, repeats: int = 10) -> dict[str, Any]:
    variant = "fp16" if provider == "cuda" else "fused"
    encoder = layerwise.load(bundle, variant=variant, provider=provider)
    batch = Batch.synthetic(BATCH, SEQ, 30000)
    needed = list(range(encoder.info.num_layers + 1))
    contenders: dict[str, Any] = {
        f"layerwise {variant} engine only": lambda: encoder.engine.hidden_states(batch, needed),
        f"layerwise {variant} + copy of all hidden states": lambda: [s.numpy() for s in encoder.engine.hidden_states(batch, needed)],
        f"layerwise {variant} pooled on device": lambda: encoder.engine.run(batch, needed, "mean"),
    }
    if source is not None and provider == "cuda":
        _torch_contenders(source, batch.feeds(encoder.engine.manifest.inputs), contenders)
    timings = alternate(contenders, repeats, warmup=3)
    return {"provider": encoder.info.provider, "variant": variant, "batch_size": BATCH, "seq_len": SEQ, "contenders": timings}
