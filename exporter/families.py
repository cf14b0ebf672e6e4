"""The encoder families layerwise exports: one table, ``model_type`` -> ``Family``.

Everything that differs between families is a field here: which inputs the traced graph
takes, how many rows of the position table come before position 0 (so the longest text),
which fused operators ONNX Runtime's transformer optimizer must produce for L layers, and
what it leaves unfused. The checkpoint loader, the tracer, the fusion check, the error for an
unsupported model and the README table all read this table; nothing else names a family.

Not handled: models that need ``trust_remote_code`` (the exporter never runs checkpoint code),
and decoder or encoder-decoder models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runtime.manifest import INPUT_ROLES, GraphInput

Counts = Callable[[Any], dict[str, int]]  # config -> fused operator counts


def _layers(config: Any) -> int:
    return int(config.num_hidden_layers)


def _bert_counts(config: Any) -> dict[str, int]:
    layers = _layers(config)
    return {
        "EmbedLayerNormalization": 1,
        "Attention": layers,
        "SkipLayerNormalization": 2 * layers,
        "Gelu": layers,
        "LayerNormalization": 0,
    }


def _unfused_embedding_counts(config: Any) -> dict[str, int]:
    return {**_bert_counts(config), "EmbedLayerNormalization": 0, "LayerNormalization": 1}


def _norms_and_gelu(extra_skip: int, left_norms: Callable[[Any], int]) -> Counts:
    """Attention unfused: 2 SkipLayerNormalizations and one GELU per layer, plus ``extra_skip``."""
    return lambda config: {
        "EmbedLayerNormalization": 0, "Attention": 0, "SkipLayerNormalization": 2 * _layers(config) + extra_skip,
        "Gelu": _layers(config), "LayerNormalization": left_norms(config),
    }  # fmt: skip


def _deberta_norms(config: Any) -> int:
    """The embedding LayerNorm, and the relative-embedding one when norm_rel_ebd says layer_norm (DeBERTa-v3)."""
    return 1 + ("layer_norm" in str(getattr(config, "norm_rel_ebd", "none")))


def _no_offset(config: Any) -> int:
    return 0


def _after_padding_index(config: Any) -> int:
    """RoBERTa-style positions count from padding_idx + 1 (transformers' create_position_ids_from_input_ids)."""
    return int(config.pad_token_id) + 1


def _after_fixed_padding_index(config: Any) -> int:
    """transformers' MPNet counts positions from its padding index, fixed at 1 whatever the config says."""
    return 2


@dataclass(frozen=True)
class Family:
    """How one transformers model type exports: inputs, positions, fusions, and what was tested how."""

    name: str  # as the README names it
    takes_token_types: bool  # forward() takes token_type_ids; the graph does when config.type_vocab_size > 1
    position_offset: Callable[[Any], int]  # position-table rows before position 0: max_length = max_position_embeddings - offset
    fusions: Counts  # config -> fused operators (and LayerNormalizations left) the fused graph must end up with
    unfused: str  # what ONNX Runtime's bert fusions leave unfused in this family, and why ("" when nothing)
    int8_checked_on: str  # "real weights" (MiniLM re-hosted, tests/rehost.py) or "random weights"

    def inputs(self, config: Any) -> tuple[GraphInput, ...]:
        """The traced graph's inputs: ids and mask, and token types when the model has more than one."""
        roles = ["ids", "mask"] + (["type_ids"] if self.takes_token_types and int(getattr(config, "type_vocab_size", 0) or 0) > 1 else [])
        return tuple(GraphInput(INPUT_ROLES[role], role) for role in roles)

    def max_positions(self, config: Any) -> int:
        """The longest sequence the position table allows (514 rows after RoBERTa's offset of 2 -> 512)."""
        return int(config.max_position_embeddings) - self.position_offset(config)


EMBEDDING_UNFUSED = (
    "the embedding LayerNorm stays a LayerNormalization: position ids are computed from input_ids "
    "(cumulative sum after the padding index), which EmbedLayerNormalization's pattern does not take"
)
FAMILIES: dict[str, Family] = {
    "bert": Family("BERT", True, _no_offset, _bert_counts, "", "real weights"),
    "albert": Family("ALBERT", True, _no_offset, _bert_counts, "", "real weights"),
    "electra": Family("ELECTRA", True, _no_offset, _bert_counts, "", "real weights"),
    "roberta": Family("RoBERTa", True, _after_padding_index, _unfused_embedding_counts, EMBEDDING_UNFUSED, "real weights"),
    "xlm-roberta": Family("XLM-RoBERTa", True, _after_padding_index, _unfused_embedding_counts, EMBEDDING_UNFUSED, "real weights"),
    "distilbert": Family("DistilBERT", False, _no_offset, _bert_counts, "", "real weights"),
    "mpnet": Family(
        "MPNet", False, _after_fixed_padding_index, _norms_and_gelu(extra_skip=1, left_norms=lambda config: 0),
        "attention stays unfused (each layer adds a relative position bias to the scores, which the Attention "
        "pattern does not take); the embedding sum and its LayerNorm fuse as one more SkipLayerNormalization",
        "real weights",
    ),
    "deberta-v2": Family(
        "DeBERTa-v2/v3", True, _no_offset, _norms_and_gelu(extra_skip=0, left_norms=_deberta_norms),
        "attention stays unfused (disentangled content-to-position and position-to-content terms), and so do "
        "the embedding LayerNorm and the relative-embedding one; the layers' LayerNorms and GELU fuse",
        "random weights",
    ),
    "modernbert": Family(
        "ModernBERT", False, _no_offset, _norms_and_gelu(extra_skip=0, left_norms=lambda config: 1),
        "attention stays unfused (rotary position embeddings, local/global layers); pre-norm LayerNorms fuse "
        "with their residual Add except the embedding one, and GeGLU's GELU fuses",
        "random weights",
    ),
}  # fmt: skip


def family_of(model_type: str, architectures: list[str] | None = None) -> Family:
    """The family of a transformers ``model_type``; an unsupported one is an ExportError listing them all."""
    from .errors import ExportError

    if model_type not in FAMILIES:
        names = ", ".join(f.name for f in FAMILIES.values())
        raise ExportError(
            f"model type {model_type!r} ({', '.join(architectures or ['unknown'])}) is not supported: layerwise exports "
            f"the encoders of {names} (model types {', '.join(FAMILIES)}), base models and their task-head "
            "checkpoints such as BertForSequenceClassification"
        )
    return FAMILIES[model_type]
