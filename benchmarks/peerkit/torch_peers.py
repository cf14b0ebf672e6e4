"""PyTorch eager as users run it: the plain loop, the length-sorted loop and, on AMX only, the
sorted loop under bf16 autocast; the same loops as the all-layers job (``common.torch_all_layers_mean``).

Last-layer job only here (the all-layers job times the PyTorch loops in the project's own
environment, next to layerwise). The checkpoint is ``--model-dir`` loaded with transformers'
``AutoModel`` and its default attention; mean pooling over real tokens, raw (not normalized).
"""

from __future__ import annotations

from .base import Context, Peer, versions

# PyTorch bf16 autocast is a contender only where an AMX user would pick it: bf16 matmuls on AMX
# tiles. Elsewhere it is listed as not applicable (runtime/cpu.py names the family).
BF16_AUTOCAST_FAMILIES = ("amx",)


def bf16_autocast_skip_reason(family: str) -> str | None:
    """None where PyTorch bf16 autocast is a contender on CPU ``family``; else why it is not.

    >>> bf16_autocast_skip_reason("amx") is None
    True
    """
    if family in BF16_AUTOCAST_FAMILIES:
        return None
    return f"not applicable: measured on AMX CPUs only (bf16 matmuls on AMX tiles); this CPU family is {family}"


def build_pytorch(ctx: Context, sort: bool, bf16: bool = False) -> Peer:
    """transformers AutoModel on ``ctx.model_dir``, batches of ``ctx.batch_size``, last hidden state mean-pooled."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ..common import torch_all_layers_mean

    if ctx.job != "last_layer":
        raise ValueError(f"the PyTorch loops of the all-layers job run in benchmarks/jobs/all_layers.py, not here (job {ctx.job!r})")
    torch.set_num_threads(ctx.threads)
    model = AutoModel.from_pretrained(str(ctx.model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir))
    loop = "length-sorted loop, order restored" if sort else "plain loop (input order, each batch padded to its longest)"
    return Peer(
        embed=lambda texts: torch_all_layers_mean(model, tokenizer, texts, ctx.batch_size, sort=sort, bf16=bf16, last_only=True)[:, 0],
        threads_controlled=True,
        notes=(
            f"AutoModel.from_pretrained(model_dir) ({model.config._attn_implementation} attention), torch.inference_mode()"
            + (', torch.autocast("cpu", dtype=torch.bfloat16)' if bf16 else "")
            + f", torch.set_num_threads({ctx.threads}); {loop}; last hidden state mean-pooled over real tokens in float32; raw (not "
                "normalized)"
        ),
        versions=versions("torch", "transformers", "tokenizers"),
    )
