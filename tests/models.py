"""Small random BERT, ALBERT and GPT-2 checkpoints written to folders, with real tokenizers.

Random weights are drawn so that every bias and LayerNorm weight differs (as in trained
checkpoints): all-zero biases would be merged by the ONNX exporter's constant folding.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import torch

from layerwise.exporter.texts import corpus_sentences

MINILM_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "LayerNorm" in name or "layer_norm" in name:
                param.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
            else:
                param.copy_((0.05 if name.endswith("bias") else 0.08) * noise)
    return model.eval()


def save_bert(folder: Path, minilm_dir: Path, layers: int = 3, head: str | None = None, seed: int = 0) -> Path:
    """A random BERT (hidden 64) with the MiniLM WordPiece tokenizer; ``head`` picks a task-head class."""
    import transformers

    config = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    model_class = getattr(transformers, head or "BertModel")
    randomize(model_class(config), seed).save_pretrained(folder)
    for name in MINILM_TOKENIZER_FILES:
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def save_albert(folder: Path, layers: int = 3, seed: int = 0) -> Path:
    """A random ALBERT (embedding 32, hidden 64) with a SentencePiece model trained on real text."""
    import sentencepiece as spm
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_sentences(1500)), model_writer=buffer, vocab_size=800, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, pad_piece="<pad>", unk_piece="<unk>", bos_piece="[CLS]", eos_piece="[SEP]",
        user_defined_symbols=["[MASK]"], minloglevel=2,
    )  # fmt: skip
    (folder / "spiece.model").write_bytes(buffer.getvalue())
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "AlbertTokenizer", "do_lower_case": true}')
    config = transformers.AlbertConfig(
        vocab_size=800,
        embedding_size=32,
        hidden_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    randomize(transformers.AlbertModel(config), seed).save_pretrained(folder)
    return folder


def save_gpt2(folder: Path) -> Path:
    import transformers

    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100, n_positions=64)
    transformers.GPT2Model(config).save_pretrained(folder)
    return folder
