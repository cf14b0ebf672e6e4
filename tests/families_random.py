"""Small random checkpoints of the families whose weights cannot be re-hosted from MiniLM, or
whose real tokenizers differ from WordPiece, each with a tokenizer trained here on real text:

- ``roberta``: byte-level BPE with ``<s> ... </s>``, pad id 1 (so positions start at 2, as in RoBERTa).
- ``xlm-roberta``: SentencePiece-style Unigram (Metaspace), ``<s> ... </s>``, pad id 1.
- ``deberta-v2``: Unigram with ``[CLS] ... [SEP]`` (DeBERTa-v3's layout), relative attention.
- ``modernbert``: BPE with ``[CLS] ... [SEP]``, global and local attention layers.

Example: ``save_random("roberta", tmp / "roberta")`` -> a folder ``layerwise export`` takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layerwise.exporter.texts import corpus_sentences

from .models import randomize

HIDDEN, LAYERS, HEADS, POSITIONS = 64, 3, 4, 128
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4: RoBERTa's and XLM-R's order
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _bpe(specials: list[str], vocab: int = 1000) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(corpus_sentences(1500), trainer)
    return tokenizer


def _unigram(specials: list[str], unk: str, vocab: int = 1000) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab, special_tokens=specials, unk_token=unk, show_progress=False)
    tokenizer.train_from_iterator(corpus_sentences(1500), trainer)
    return tokenizer


def _wrap(tokenizer: Any, first: str, last: str) -> None:
    from tokenizers import processors

    ids = {t: tokenizer.token_to_id(t) for t in (first, last)}
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{first} $A {last}", pair=f"{first} $A {last} {last} $B {last}", special_tokens=list(ids.items())
    )


def _save_tokenizer(tokenizer: Any, folder: Path, specials: dict[str, str]) -> None:
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=POSITIONS, **specials).save_pretrained(folder)


def _roberta_tokenizer(folder: Path, unigram: bool) -> None:
    tokenizer = _unigram(ROBERTA_SPECIALS, "<unk>") if unigram else _bpe(ROBERTA_SPECIALS)
    _wrap(tokenizer, "<s>", "</s>")
    specials = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
    }
    _save_tokenizer(tokenizer, folder, specials)


def _bert_style_tokenizer(folder: Path, unigram: bool) -> None:
    tokenizer = _unigram(BERT_SPECIALS, "[UNK]") if unigram else _bpe(BERT_SPECIALS)
    _wrap(tokenizer, "[CLS]", "[SEP]")
    specials = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}
    _save_tokenizer(tokenizer, folder, specials)


def _config(model_type: str) -> Any:
    import transformers

    shape = {
        "vocab_size": 1000,
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": 2 * HIDDEN,
    }
    if model_type == "roberta":
        return transformers.RobertaConfig(
            **shape, max_position_embeddings=POSITIONS + 2, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2
        )
    if model_type == "xlm-roberta":
        return transformers.XLMRobertaConfig(
            **shape, max_position_embeddings=POSITIONS + 2, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2
        )
    if model_type == "deberta-v2":
        return transformers.DebertaV2Config(
            **shape, max_position_embeddings=POSITIONS, type_vocab_size=0, relative_attention=True, position_buckets=32,
            pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True, pad_token_id=0,
        )  # fmt: skip
    if model_type == "modernbert":
        return transformers.ModernBertConfig(
            **shape, max_position_embeddings=POSITIONS, global_attn_every_n_layers=2, local_attention=16,
            pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3,
        )  # fmt: skip
    raise ValueError(f"no random model for {model_type!r}")


TOKENIZERS = {
    "roberta": lambda folder: _roberta_tokenizer(folder, unigram=False),
    "xlm-roberta": lambda folder: _roberta_tokenizer(folder, unigram=True),
    "deberta-v2": lambda folder: _bert_style_tokenizer(folder, unigram=True),
    "modernbert": lambda folder: _bert_style_tokenizer(folder, unigram=False),
}


def save_random(model_type: str, folder: Path, seed: int = 0, head: str | None = None) -> Path:
    """A random ``model_type`` checkpoint (hidden 64, 3 layers) with a tokenizer trained on corpus text;
    ``head`` saves a task-head class instead of the base model (e.g. "AutoModelForSequenceClassification")."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    TOKENIZERS[model_type](folder)
    model_class = getattr(transformers, head or "AutoModel")
    randomize(model_class.from_config(_config(model_type)), seed).save_pretrained(folder)
    return folder
