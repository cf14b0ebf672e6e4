"""PyTorch -> ONNX: the plain fp32 graph whose outputs are every hidden state.

Uses the TorchScript exporter (``dynamo=False``): its graph is what ONNX Runtime's
transformer fusions are written against. Batch and sequence are dynamic; the parity
check later runs other shapes than the tracing example, so a trace that baked in a
shape fails the export instead of shipping.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..runtime.manifest import INPUT_NAMES, output_name

OPSET = 17


def hidden_state_names(num_layers: int) -> list[str]:
    return [output_name(i) for i in range(num_layers + 1)]


def export_fp32(model: Any, num_layers: int, path: Path) -> None:
    """Trace ``model`` (BertModel/AlbertModel) to ``path`` with outputs hidden_state_0..L."""
    import torch

    class HiddenStates(torch.nn.Module):
        """Returns transformers' ``hidden_states`` tuple: embedding output, then each layer."""

        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> tuple[Any, ...]:
            out = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
                return_dict=True,
            )
            return tuple(out.hidden_states)

    outputs = hidden_state_names(num_layers)
    example_ids = torch.tensor([[2, 7, 8, 9, 10, 3], [2, 7, 8, 3, 0, 0]], dtype=torch.long)
    example_mask = (torch.arange(6) < torch.tensor([[6], [4]])).long()
    example = (example_ids, example_mask, torch.zeros_like(example_ids))
    dynamic = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, *outputs)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; parity checks the result
        torch.onnx.export(
            HiddenStates(model).eval(),
            example,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
