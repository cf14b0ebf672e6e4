"""PyTorch -> ONNX: the plain fp32 graph whose outputs are every hidden state.

Uses the TorchScript exporter (``dynamo=False``): its graph is what ONNX Runtime's
transformer fusions are written against. Batch and sequence are dynamic; the parity
check later runs other shapes than the tracing example, so a trace that baked in a
shape fails the export instead of shipping.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runtime.manifest import GraphInput, output_name

OPSET = 17


def hidden_state_names(num_layers: int) -> list[str]:
    return [output_name(i) for i in range(num_layers + 1)]


def export_fp32(model: Any, num_layers: int, inputs: Sequence[GraphInput], pad_id: int, path: Path) -> None:
    """Trace ``model`` (a family's base model) to ``path`` with ``inputs`` and outputs hidden_state_0..L.

    Position ids are not an input: the model computes them from the ids (RoBERTa-style, after
    the padding index) or the sequence length, inside the graph, as transformers does.
    """
    import torch

    names = [i.name for i in inputs]

    class HiddenStates(torch.nn.Module):
        """Returns transformers' ``hidden_states`` tuple: embedding output, then each layer."""

        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *arrays: Any) -> tuple[Any, ...]:
            out = self.encoder(**dict(zip(names, arrays)), output_hidden_states=True, return_dict=True)
            return tuple(out.hidden_states)

    outputs = hidden_state_names(num_layers)
    example_ids = torch.tensor([[2, 7, 8, 9, 10, 3], [2, 7, 8, 3, pad_id, pad_id]], dtype=torch.long)
    example_mask = (torch.arange(6) < torch.tensor([[6], [4]])).long()
    by_role = {"ids": example_ids, "mask": example_mask, "type_ids": torch.zeros_like(example_ids)}
    example = tuple(by_role[i.role] for i in inputs)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in (*names, *outputs)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; parity checks the result
        torch.onnx.export(
            HiddenStates(model).eval(),
            example,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
