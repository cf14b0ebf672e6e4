"""Small random BERT and ALBERT checkpoints: parity of fp32, fused and fp16, ALBERT's shared
weights staying shared, task-head checkpoints and external-data graphs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import transformers

import layerwise
from layerwise.exporter.texts import PARITY_TEXTS
from layerwise.runtime.manifest import read_manifest

from .models import save_albert, save_bert
from .reference import onnx_states, per_layer, torch_states

LOOSE_INT8 = ["int8.pooled_cos_mean=0.95", "int8.pooled_cos_min=0.9"]  # random weights: no real-text bar
TEXTS = list(PARITY_TEXTS[:10])


@pytest.fixture(scope="module")
def albert_dir(tmp_path_factory) -> Path:
    return save_albert(tmp_path_factory.mktemp("albert") / "ckpt")


@pytest.fixture(scope="module")
def albert_bundle(tmp_path_factory, albert_dir) -> Path:
    return layerwise.export(str(albert_dir), tmp_path_factory.mktemp("b") / "albert", thresholds=LOOSE_INT8)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, minilm_dir) -> Path:
    return save_bert(tmp_path_factory.mktemp("bert") / "ckpt", minilm_dir)


@pytest.fixture(scope="module")
def bert_bundle(tmp_path_factory, bert_dir) -> Path:
    return layerwise.export(str(bert_dir), tmp_path_factory.mktemp("b") / "bert", variants=["fp32", "fused", "fp16"])


def _check_against_torch(bundle: Path, model, tokenizer, variant: str) -> list[dict]:
    states, feeds = torch_states(model, tokenizer, TEXTS, max_length=128)
    return per_layer(onnx_states(bundle / f"model.{variant}.onnx", feeds), states, feeds["attention_mask"])


@pytest.mark.parametrize("kind", ["bert", "albert"])
def test_random_models_fp32_fused_fp16_match_pytorch(kind, request):
    bundle = request.getfixturevalue(f"{kind}_bundle")
    folder = request.getfixturevalue(f"{kind}_dir")
    model = transformers.AutoModel.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    for variant in ("fp32", "fused"):
        rows = _check_against_torch(bundle, model, tokenizer, variant)
        assert len(rows) == 4 and max(r["max_abs"] for r in rows) <= 1e-4, (kind, variant, rows)
    rows = _check_against_torch(bundle, model, tokenizer, "fp16")
    assert all(r["finite"] and r["token_cos_min"] >= 0.999 for r in rows), rows


def test_albert_fused_keeps_shared_weights_shared(albert_bundle):
    manifest = read_manifest(albert_bundle)
    fp32, fused = manifest.variants["fp32"].graph.bytes, manifest.variants["fused"].graph.bytes
    assert fused <= 1.15 * fp32, (fused, fp32)
    ops = Counter(n.op_type for n in onnx.load(str(albert_bundle / "model.fused.onnx")).graph.node)
    assert ops["Attention"] == 3 and ops["EmbedLayerNormalization"] == 1
    assert ops["SkipLayerNormalization"] == 0 and ops["LayerNormalization"] == 6  # the skip norms given back for the CPU
    attention_weights = {n.input[1] for n in onnx.load(str(albert_bundle / "model.fused.onnx")).graph.node if n.op_type == "Attention"}
    assert len(attention_weights) == 1, "every ALBERT layer should use the one packed QKV weight"


def test_albert_bundle_tokenizer_is_the_converted_sentencepiece_one(albert_bundle, albert_dir):
    from tokenizers import Tokenizer

    hf = transformers.AutoTokenizer.from_pretrained(albert_dir)
    ours = Tokenizer.from_file(str(albert_bundle / "tokenizer.json"))
    assert [e.ids for e in ours.encode_batch(TEXTS)] == hf(TEXTS)["input_ids"]
    assert read_manifest(albert_bundle).model.model_type == "albert"
    texts = TEXTS + ["", "word " * 300]
    for limit in (None, 8):  # the runtime's own tokenization, cut or not, is transformers'
        cut = layerwise.load(albert_bundle, provider="cpu").tokenize(texts, max_length=limit)
        assert cut.ids == hf(texts, truncation=True, max_length=limit or 128)["input_ids"]
        assert cut.full_lengths == [len(ids) for ids in hf(texts)["input_ids"]]


def test_albert_int8_exports_under_explicit_loose_thresholds(albert_bundle):
    parity = read_manifest(albert_bundle).variants["int8"].parity
    assert parity["thresholds"] == {"pooled_cos_mean": 0.95, "pooled_cos_min": 0.9}


def test_task_head_checkpoint_exports_its_base_encoder(tmp_path, minilm_dir):
    folder = save_bert(tmp_path / "cls", minilm_dir, layers=2, head="BertForSequenceClassification", seed=3)
    bundle = layerwise.export(str(folder), tmp_path / "bundle", variants=["fp32"])
    full = transformers.BertForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    states, feeds = torch_states(full.bert, tokenizer, TEXTS, max_length=128)
    rows = per_layer(onnx_states(bundle / "model.fp32.onnx", feeds), states, feeds["attention_mask"])
    assert len(rows) == 3 and max(r["max_abs"] for r in rows) <= 1e-4


def test_large_weights_go_to_one_external_data_file_and_still_load(tmp_path, bert_dir):
    bundle = layerwise.export(str(bert_dir), tmp_path / "ext", variants=["fp32", "fused"], external_data_threshold=0)
    manifest = read_manifest(bundle)
    for variant in ("fp32", "fused"):
        entry = manifest.variants[variant]
        assert [f.path for f in entry.external_data] == [f"model.{variant}.onnx.data"]
        assert entry.graph.bytes < 200_000 < entry.external_data[0].bytes
    encoder = layerwise.load(bundle, variant="fused", provider="cpu")
    full = encoder.embed(TEXTS, layers="all")
    cut = encoder.embed(TEXTS, layers=[1])
    np.testing.assert_allclose(cut[:, 0], full[:, 1], atol=1e-6)
