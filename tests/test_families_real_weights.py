"""Six encoder families on real activations: MiniLM's trained weights re-hosted (tests/rehost.py)
as ALBERT, ELECTRA, RoBERTa, XLM-RoBERTa, DistilBERT and MPNet checkpoints (its first
REHOST_LAYERS layers by default, all six with LAYERWISE_REHOST_LAYERS=6).

First the re-hosted PyTorch model must compute MiniLM's hidden states; then each exports with
fused and int8 (fp32 is built as their source and checked at export too), and
``layerwise.load(...).embed`` of every hidden state, mean-pooled on held-out sentences, must be
within 1e-4 of PyTorch (fused) and meet the int8 bar (mean >= 0.995, min >= 0.99 at every layer).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import transformers

import layerwise
from layerwise.exporter.families import FAMILIES
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.manifest import read_manifest

from .rehost import CONVERTERS, rehost

# MiniLM's first REHOST_LAYERS trained layers: 3 keeps `make test` near its time budget (measured about
# 50 s a family instead of 155 s on 2 cores); LAYERWISE_REHOST_LAYERS=6 runs the whole model (README's figures).
REHOST_LAYERS = int(os.environ.get("LAYERWISE_REHOST_LAYERS", "3"))
HELD_OUT = corpus_sentences(96, skip=1200)  # the export calibrates and checks on sentences 0..447
SHORT = [" ".join(s.split()[: 1 + i % 3]) for i, s in enumerate(corpus_sentences(32, skip=1400))]
# transformers' DistilBERT and MPNet sum the same terms in another order (type row folded into positions)
REHOST_TOLERANCE = {"distilbert": 1e-5, "mpnet": 1e-5}


@pytest.fixture(scope="module")
def minilm_states(minilm_dir):
    model = transformers.AutoModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    return _states(model, tokenizer, HELD_OUT, ("input_ids", "attention_mask", "token_type_ids"))


@pytest.fixture(scope="module", params=sorted(CONVERTERS))
def family(request, tmp_path_factory, minilm_dir):
    """(model_type, checkpoint folder, its PyTorch model, its tokenizer)."""
    folder = rehost(minilm_dir, request.param, tmp_path_factory.mktemp(request.param) / "ckpt", layers=REHOST_LAYERS)
    model = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    return request.param, folder, model, transformers.AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def family_bundle(family, tmp_path_factory):
    model_type, folder, _, _ = family
    return layerwise.export(str(folder), tmp_path_factory.mktemp("bundles") / model_type, variants=["fused", "int8"])


def _states(model, tokenizer, texts: list[str], names) -> tuple[list[np.ndarray], np.ndarray]:
    """PyTorch's hidden states for one padded batch fed ``names``, and its attention mask."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**{k: batch[k] for k in names}, output_hidden_states=True)
    return [h.numpy() for h in out.hidden_states], batch["attention_mask"].numpy()


def _pooled(states: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """[texts, layers, hidden] mean over real tokens, in float64."""
    m = mask[..., None].astype(np.float64)
    return np.stack([(h * m).sum(1) / m.sum(1) for h in states], axis=1)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_rehosted_pytorch_model_computes_minilms_hidden_states(family, minilm_states):
    model_type, folder, model, tokenizer = family
    names = [i.name for i in FAMILIES[model_type].inputs(model.config)]
    got, mask = _states(model, tokenizer, HELD_OUT, names)
    want, _ = minilm_states
    assert len(got) == REHOST_LAYERS + 1
    worst = max(float(np.abs(g - w)[mask.astype(bool)].max()) for g, w in zip(got, want))  # MiniLM's first layers
    print(f"{model_type}: re-hosted max abs difference to MiniLM {worst:.2e}")
    assert worst <= REHOST_TOLERANCE.get(model_type, 0.0), (model_type, worst)


def test_fused_and_int8_meet_their_bars_through_load_on_held_out_sentences(family, family_bundle):
    model_type, _, model, tokenizer = family
    manifest = read_manifest(family_bundle)
    for texts in (HELD_OUT, SHORT):
        want = _pooled(*_states(model, tokenizer, texts, manifest.input_names))
        fused = layerwise.load(family_bundle, variant="fused", provider="cpu").embed(texts, layers="all")
        per_layer = np.abs(fused - want).max(axis=(0, 2))
        int8 = _cosine(layerwise.load(family_bundle, variant="int8", provider="cpu").embed(texts, layers="all").astype(np.float64), want)
        print(
            f"{model_type} ({len(texts)} texts): fused worst {per_layer.max():.2e}; int8 worst layer mean {int8.mean(0).min():.5f} min "
            f"{int8.min():.5f}"
        )
        assert per_layer.max() <= 1e-4, (model_type, per_layer)
        assert (int8.mean(axis=0) >= 0.995).all() and (int8.min(axis=0) >= 0.99).all(), (model_type, int8.mean(0), int8.min(0))


def test_fused_graph_has_the_familys_fusions_and_inputs(family, family_bundle):
    model_type, _, model, _ = family
    manifest = read_manifest(family_bundle)
    expected = FAMILIES[model_type].fusions(model.config)
    recorded = manifest.variants["fused"].build.fused_operators
    assert {op: recorded[op] for op in expected} == expected
    assert manifest.inputs == FAMILIES[model_type].inputs(model.config)
    assert manifest.model.max_length == 512 and manifest.model.model_type == model_type
    assert (manifest.variants["fused"].build.details.get("unfused") or "") == FAMILIES[model_type].unfused
