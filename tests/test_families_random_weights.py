"""RoBERTa (byte-level BPE), XLM-RoBERTa (Unigram), DeBERTa-v2 and ModernBERT on small random
models (tests/families_random.py): every hidden state of every variant against PyTorch, the
family's fusions, the runtime's tokenization against transformers', and ``layerwise.load``.

Random weights have no real-text int8 bar, so int8 exports under explicit loose thresholds here;
its real-activation bar is tested on re-hosted MiniLM weights (test_families_real_weights.py)
for the families that can hold them, and DeBERTa-v2 and ModernBERT's int8 on random weights only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

import layerwise
from layerwise.exporter.families import FAMILIES
from layerwise.exporter.texts import PARITY_TEXTS
from layerwise.runtime.manifest import read_manifest

from .families_random import POSITIONS, save_random
from .reference import onnx_states, per_layer

LOOSE_INT8 = ["int8.pooled_cos_mean=0.95", "int8.pooled_cos_min=0.9"]
TEXTS = list(PARITY_TEXTS[:10]) + ["naïve café déjà vu — 東京 🙂", "a"]


_EXPORTED: dict[str, tuple] = {}  # model_type -> (folder, bundle): one export per family for the whole module


def _exported(model_type: str, tmp_path_factory) -> tuple:
    if model_type not in _EXPORTED:
        folder = save_random(model_type, tmp_path_factory.mktemp(model_type) / "ckpt")
        _EXPORTED[model_type] = (
            folder,
            layerwise.export(str(folder), tmp_path_factory.mktemp("bundles") / model_type, thresholds=LOOSE_INT8),
        )
    return _EXPORTED[model_type]


@pytest.fixture(scope="module", params=["roberta", "xlm-roberta", "deberta-v2", "modernbert"])
def random_family(request, tmp_path_factory):
    """(model_type, checkpoint folder, PyTorch model, tokenizer, bundle with every variant)."""
    folder, bundle = _exported(request.param, tmp_path_factory)
    model = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    return request.param, folder, model, transformers.AutoTokenizer.from_pretrained(folder), bundle


def _torch(model, tokenizer, texts, names):
    batch = tokenizer(texts, padding=True, truncation=True, max_length=POSITIONS, return_tensors="pt")
    with torch.no_grad():
        out = model(**{k: batch[k] for k in names}, output_hidden_states=True)
    feeds = {k: batch[k].numpy() for k in names}
    return [h.numpy() for h in out.hidden_states], feeds


def test_every_hidden_state_of_every_variant_matches_pytorch(random_family):
    model_type, _, model, tokenizer, bundle = random_family
    manifest = read_manifest(bundle)
    states, feeds = _torch(model, tokenizer, TEXTS, manifest.input_names)
    for variant in ("fp32", "fused", "fp16", "int8"):
        rows = per_layer(onnx_states(bundle / f"model.{variant}.onnx", feeds), states, feeds["attention_mask"])
        assert len(rows) == model.config.num_hidden_layers + 1
        if variant in ("fp32", "fused"):
            assert max(r["max_abs"] for r in rows) <= 1e-4, (model_type, variant, rows)
        elif variant == "fp16":
            assert all(r["finite"] and r["token_cos_min"] >= 0.999 for r in rows), (model_type, rows)
        else:
            assert all(r["pooled_cos_min"] >= 0.9 for r in rows), (model_type, rows)


def test_the_runtime_embeds_as_pytorch_with_the_familys_inputs(random_family):
    model_type, _, model, tokenizer, bundle = random_family
    manifest = read_manifest(bundle)
    assert manifest.inputs == FAMILIES[model_type].inputs(model.config)
    assert manifest.input_names == ["input_ids", "attention_mask"] and manifest.format_version == 2
    states, feeds = _torch(model, tokenizer, TEXTS, manifest.input_names)
    mask = feeds["attention_mask"][..., None].astype(np.float64)
    want = np.stack([(h * mask).sum(1) / mask.sum(1) for h in states], axis=1)
    for variant in ("fp32", "fused"):
        got = layerwise.load(bundle, variant=variant, provider="cpu").embed(TEXTS, layers="all", pool="mean")
        assert np.abs(got - want).max() <= 1e-4, (model_type, variant)


def test_fused_graph_has_the_familys_fusions_or_says_what_is_not_fused(random_family):
    model_type, _, model, _, bundle = random_family
    fused = read_manifest(bundle).variants["fused"].build
    expected = FAMILIES[model_type].fusions(model.config)
    assert {op: fused.fused_operators[op] for op in expected} == expected
    assert fused.details["unfused"] == FAMILIES[model_type].unfused != ""


def test_the_runtimes_tokenization_is_transformers_for_bpe_and_unigram(random_family):
    model_type, _, _, tokenizer, bundle = random_family
    encoder = layerwise.load(bundle, provider="cpu")
    texts = TEXTS + ["", "word " * 300]
    for limit in (None, 8):
        cut = encoder.tokenize(texts, max_length=limit)
        assert cut.ids == tokenizer(texts, truncation=True, max_length=limit or POSITIONS)["input_ids"], model_type
    assert read_manifest(bundle).model.max_length == POSITIONS


def test_server_extract_and_triton_take_a_two_input_bundle(tmp_path_factory, tmp_path):
    """The HTTP server, ``layerwise extract`` and the Triton repository read the manifest's inputs
    (a RoBERTa-style bundle has no token_type_ids) through the runtime."""
    import httpx

    from layerwise.cli import main
    from layerwise.triton.check import check_model

    from .extract_helpers import layer, read_output, sentences, write_jsonl
    from .server_harness import serving

    _, bundle = _exported("roberta", tmp_path_factory)
    encoder = layerwise.load(bundle, variant="fp32", provider="cpu")
    texts = sentences(12)
    want = encoder.embed(texts, layers=[0, -1], overflow="truncate")
    with serving(bundle, threads=1) as running:
        response = httpx.post(f"{running.url}/embed", json={"inputs": texts[:3], "normalize": False, "truncate": True}, timeout=60)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        np.array(response.json()), layerwise.load(bundle, provider="cpu").embed(texts[:3], layers=-1, overflow="truncate")[:, 0], atol=1e-5
    )

    out = tmp_path / "extracted"
    assert (
        main(
            [
                "-q",
                "extract",
                str(bundle),
                "--input",
                str(write_jsonl(tmp_path / "in.jsonl", texts)),
                "--output",
                str(out),
                "--variant",
                "fp32",
                "--layers",
                "0,-1",
            ]
        )
        == 0
    )
    table, _ = read_output(out)
    np.testing.assert_allclose(layer(table, "layer_0"), want[:, 0], atol=1e-5)
    np.testing.assert_allclose(layer(table, "layer_3"), want[:, 1], atol=1e-5)

    assert main(["-q", "triton", str(bundle), "--out", str(tmp_path / "repo"), "--variant", "fp32", "--name", "roberta"]) == 0
    config = check_model(tmp_path / "repo" / "roberta")
    assert [i.name for i in config.input] == ["input_ids", "attention_mask"]
    side = json.loads((tmp_path / "repo" / "roberta" / "layerwise.json").read_text())
    assert side["inputs"] == [{"name": "input_ids", "role": "ids"}, {"name": "attention_mask", "role": "mask"}]


@pytest.mark.parametrize("model_type", ["roberta", "modernbert"])
def test_a_task_head_checkpoint_exports_its_base_encoder(model_type, tmp_path):
    folder = save_random(model_type, tmp_path / "ckpt", seed=5, head="AutoModelForSequenceClassification")
    bundle = layerwise.export(str(folder), tmp_path / "bundle", variants=["fp32"])
    full = transformers.AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager").eval()
    base = getattr(full, full.base_model_prefix)
    states, feeds = _torch(base, transformers.AutoTokenizer.from_pretrained(folder), TEXTS, read_manifest(bundle).input_names)
    rows = per_layer(onnx_states(bundle / "model.fp32.onnx", feeds), states, feeds["attention_mask"])
    assert len(rows) == 4 and max(r["max_abs"] for r in rows) <= 1e-4, (model_type, rows)
    assert read_manifest(bundle).model.architecture == type(base).__name__


def test_max_length_and_inputs_follow_the_familys_config():
    """Real checkpoints' shapes: RoBERTa/XLM-R and MPNet keep 2 position rows before position 0 (514 -> 512);
    token_type_ids is an input only where the model has more than one token type."""
    roberta = transformers.RobertaConfig(max_position_embeddings=514, pad_token_id=1, type_vocab_size=1)
    assert FAMILIES["roberta"].max_positions(roberta) == 512 and [i.name for i in FAMILIES["roberta"].inputs(roberta)] == [
        "input_ids",
        "attention_mask",
    ]
    assert FAMILIES["xlm-roberta"].max_positions(transformers.XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert FAMILIES["mpnet"].max_positions(transformers.MPNetConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert FAMILIES["distilbert"].max_positions(transformers.DistilBertConfig()) == 512
    bert = transformers.BertConfig()
    assert FAMILIES["bert"].max_positions(bert) == 512 and [i.role for i in FAMILIES["bert"].inputs(bert)] == ["ids", "mask", "type_ids"]
    assert [i.role for i in FAMILIES["distilbert"].inputs(transformers.DistilBertConfig())] == ["ids", "mask"]
