"""MiniLM's trained weights re-hosted exactly in other encoder families, as Hugging Face folders.

all-MiniLM-L6-v2 is a BERT; the same computation can be written as an ALBERT, ELECTRA, RoBERTa,
XLM-RoBERTa, DistilBERT or MPNet checkpoint, so those families are tested on real activations
(outlier channels, trained attention) although no pretrained checkpoint of theirs is installed:
- ALBERT: one hidden group per layer, embedding_size = hidden, identity embedding_hidden_mapping_in.
- ELECTRA: embedding_size = hidden (no embeddings_project): BERT's key names.
- RoBERTa, XLM-RoBERTa: positions start after the padding index (0 here), so the position table
  gains padding_idx + 1 rows in front; one token-type row, BERT's row 0.
- DistilBERT: no token types, so BERT's type row 0 is folded into the position table; renamed keys.
- MPNet: the position table shifted by two rows (transformers fixes MPNet's padding index at 1)
  with the type row folded in; the relative attention bias is zero.
The tokenizer stays MiniLM's WordPiece (exactness needs its vocabulary); real BPE and Unigram
tokenizers are tested on small random models (tests/families_random.py).

Example: ``rehost(minilm_dir, "roberta", tmp / "roberta")`` -> a folder ``layerwise export`` takes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .models import MINILM_TOKENIZER_FILES

Weights = dict[str, torch.Tensor]
MPNET_POSITION_OFFSET = 2  # transformers' MPNet counts positions from its fixed padding index 1, plus 1


def _bert_weights(minilm_dir: Path, layers: int | None) -> tuple[Weights, Any]:
    """MiniLM's weights and config, kept to its first ``layers`` layers (None: all six)."""
    from transformers import BertModel

    model = BertModel.from_pretrained(minilm_dir)
    config = model.config
    if layers is not None:
        config.num_hidden_layers = layers
    kept = lambda key: not key.startswith("encoder.layer.") or int(key.split(".")[2]) < config.num_hidden_layers  # noqa: E731
    return {k: v.detach().clone() for k, v in model.state_dict().items() if kept(k)}, config


def _shifted_positions(w: Weights, rows: int, fold_type: bool) -> torch.Tensor:
    """``rows`` empty rows, then BERT's position table (plus type row 0 when folded)."""
    table = w["embeddings.position_embeddings.weight"] + (w["embeddings.token_type_embeddings.weight"][0] if fold_type else 0)
    return torch.cat([torch.zeros(rows, table.shape[1]), table])


def _electra(w: Weights, bert: Any) -> tuple[Any, Weights]:
    from transformers import ElectraConfig

    config = ElectraConfig(**_shape(bert), embedding_size=bert.hidden_size, type_vocab_size=2)
    return config, {k: v for k, v in w.items() if not k.startswith("pooler.")}


def _roberta_like(config_class: str) -> Callable[[Weights, Any], tuple[Any, Weights]]:
    def convert(w: Weights, bert: Any) -> tuple[Any, Weights]:
        import transformers

        pad = bert.pad_token_id
        config = getattr(transformers, config_class)(
            **{**_shape(bert), "max_position_embeddings": bert.max_position_embeddings + pad + 1}, type_vocab_size=1
        )
        out = dict(w)
        out["embeddings.position_embeddings.weight"] = _shifted_positions(w, pad + 1, fold_type=False)
        out["embeddings.token_type_embeddings.weight"] = w["embeddings.token_type_embeddings.weight"][:1]
        return config, out

    return convert


def _distilbert(w: Weights, bert: Any) -> tuple[Any, Weights]:
    from transformers import DistilBertConfig

    config = DistilBertConfig(
        vocab_size=bert.vocab_size,
        dim=bert.hidden_size,
        n_layers=bert.num_hidden_layers,
        n_heads=bert.num_attention_heads,
        hidden_dim=bert.intermediate_size,
        max_position_embeddings=bert.max_position_embeddings,
        activation="gelu",
        pad_token_id=bert.pad_token_id,
    )
    out = {
        "embeddings.word_embeddings.weight": w["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": _shifted_positions(w, 0, fold_type=True),
        "embeddings.LayerNorm.weight": w["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": w["embeddings.LayerNorm.bias"],
    }
    names = {
        "attention.self.query": "attention.q_lin",
        "attention.self.key": "attention.k_lin",
        "attention.self.value": "attention.v_lin",
        "attention.output.dense": "attention.out_lin",
        "attention.output.LayerNorm": "sa_layer_norm",
        "intermediate.dense": "ffn.lin1",
        "output.dense": "ffn.lin2",
        "output.LayerNorm": "output_layer_norm",
    }
    for i in range(bert.num_hidden_layers):
        for theirs, ours in names.items():
            for p in ("weight", "bias"):
                out[f"transformer.layer.{i}.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
    return config, out


def _mpnet(w: Weights, bert: Any) -> tuple[Any, Weights]:
    from transformers import MPNetConfig

    config = MPNetConfig(**{**_shape(bert), "max_position_embeddings": bert.max_position_embeddings + MPNET_POSITION_OFFSET})
    out = {k: v for k, v in w.items() if k.startswith(("embeddings.word", "embeddings.LayerNorm", "pooler."))}
    out["embeddings.position_embeddings.weight"] = _shifted_positions(w, MPNET_POSITION_OFFSET, fold_type=True)
    out["encoder.relative_attention_bias.weight"] = torch.zeros(config.relative_attention_num_buckets, bert.num_attention_heads)
    names = {
        "attention.self.query": "attention.attn.q",
        "attention.self.key": "attention.attn.k",
        "attention.self.value": "attention.attn.v",
        "attention.output.dense": "attention.attn.o",
        "attention.output.LayerNorm": "attention.LayerNorm",
    }
    for key, value in w.items():
        if key.startswith("encoder.layer."):
            for theirs, ours in names.items():
                key = key.replace(f".{theirs}.", f".{ours}.")
            out[key] = value
    return config, out


def _albert(w: Weights, bert: Any) -> tuple[Any, Weights]:
    from transformers import AlbertConfig

    layers, hidden = bert.num_hidden_layers, bert.hidden_size
    config = AlbertConfig(**_shape(bert), embedding_size=hidden, num_hidden_groups=layers, inner_group_num=1, type_vocab_size=2)
    out = {k.replace("pooler.dense.", "pooler."): v for k, v in w.items() if k.startswith(("embeddings.", "pooler."))}
    out["encoder.embedding_hidden_mapping_in.weight"] = torch.eye(hidden)
    out["encoder.embedding_hidden_mapping_in.bias"] = torch.zeros(hidden)
    names = {
        "attention.self.query": "attention.query",
        "attention.self.key": "attention.key",
        "attention.self.value": "attention.value",
        "attention.output.dense": "attention.dense",
        "attention.output.LayerNorm": "attention.LayerNorm",
        "intermediate.dense": "ffn",
        "output.dense": "ffn_output",
        "output.LayerNorm": "full_layer_layer_norm",
    }
    for i in range(layers):
        for theirs, ours in names.items():
            for p in ("weight", "bias"):
                out[f"encoder.albert_layer_groups.{i}.albert_layers.0.{ours}.{p}"] = w[f"encoder.layer.{i}.{theirs}.{p}"]
    return config, out


def _shape(bert: Any) -> dict[str, Any]:
    return {
        "vocab_size": bert.vocab_size,
        "hidden_size": bert.hidden_size,
        "num_hidden_layers": bert.num_hidden_layers,
        "num_attention_heads": bert.num_attention_heads,
        "intermediate_size": bert.intermediate_size,
        "hidden_act": "gelu",
        "max_position_embeddings": bert.max_position_embeddings,
        "layer_norm_eps": bert.layer_norm_eps,
        "pad_token_id": bert.pad_token_id,
    }


CONVERTERS = {
    "albert": _albert,
    "electra": _electra,
    "roberta": _roberta_like("RobertaConfig"),
    "xlm-roberta": _roberta_like("XLMRobertaConfig"),
    "distilbert": _distilbert,
    "mpnet": _mpnet,
}


def rehost(minilm_dir: Path, model_type: str, folder: Path, layers: int | None = None) -> Path:
    """Write MiniLM (its first ``layers`` layers; None: all) as a ``model_type`` checkpoint folder
    (config, safetensors, MiniLM's tokenizer files)."""
    from transformers import AutoModel

    weights, bert = _bert_weights(minilm_dir, layers)
    config, mapped = CONVERTERS[model_type](weights, bert)
    model = AutoModel.from_config(config)
    expected = dict(model.named_parameters())
    missing, unknown = set(expected) - set(mapped), set(mapped) - set(model.state_dict())
    if missing or unknown:
        raise ValueError(f"{model_type}: no MiniLM weight for {sorted(missing)[:4]}; no {model_type} weight named {sorted(unknown)[:4]}")
    with torch.no_grad():
        for name, param in expected.items():
            if param.shape != mapped[name].shape:
                raise ValueError(f"{model_type} {name}: shape {tuple(param.shape)}, MiniLM gives {tuple(mapped[name].shape)}")
            param.copy_(mapped[name])
    model.eval().save_pretrained(folder)
    for name in MINILM_TOKENIZER_FILES:
        shutil.copy(minilm_dir / name, folder / name)
    return folder
