"""The runtime's embeddings equal transformers' output_hidden_states=True plus the same pooling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import layerwise
from layerwise.exporter.texts import PARITY_TEXTS, corpus_sentences
from layerwise.runtime.batching import Batching

TEXTS = list(PARITY_TEXTS[:10]) + corpus_sentences(22, skip=1500)
LAYER_CHOICES = ["all", -1, 3, [0, -1], [-4, -3, -2, -1]]


@pytest.fixture(scope="module")
def fp32(minilm_bundle):
    return layerwise.load(minilm_bundle, variant="fp32", provider="cpu")


@pytest.fixture(scope="module")
def reference(torch_minilm):
    """Per text: its hidden states [7, tokens, 384] from PyTorch, one text at a time (no padding)."""
    model, tokenizer = torch_minilm
    states = []
    with torch.no_grad():
        for text in TEXTS:
            batch = tokenizer([text], truncation=True, max_length=512, return_tensors="pt")
            states.append(np.stack([h[0].numpy() for h in model(**batch, output_hidden_states=True).hidden_states]))
    return states


def _expected(states: np.ndarray, layers, pool: str, combine):
    chosen = states[list(range(7)) if layers == "all" else [layers] if isinstance(layers, int) else layers]
    pooled = {"mean": lambda s: s.mean(1), "max": lambda s: s.max(1), "cls": lambda s: s[:, 0], "none": lambda s: s}[pool](chosen)
    if combine == "concat":
        return np.concatenate(list(pooled), axis=-1)
    if combine in ("sum", "mean"):
        return getattr(pooled, combine)(axis=0)
    return pooled


@pytest.mark.parametrize(("pool", "combine"), list(itertools.product(["mean", "max", "cls", "none"], [None, "concat", "sum", "mean"])))
def test_every_pool_layer_and_combine_choice_matches_pytorch_within_1e4(fp32, reference, pool, combine):
    for layers in LAYER_CHOICES:
        options = {"layers": layers, "combine": combine, "batch_size": 8}
        out = fp32.embed_tokens(TEXTS, **options) if pool == "none" else fp32.embed(TEXTS, pool=pool, **options)
        for index, states in enumerate(reference):
            want = _expected(states, layers, pool, combine)
            got = out[index]
            assert got.shape == want.shape, (layers, index)
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, err_msg=f"layers={layers} text={index}")


def test_output_shapes_follow_the_documented_contract(fp32):
    assert fp32.embed(["a", "b", "c"]).shape == (3, 7, 384)
    assert fp32.embed(["a", "b"], layers=[-4, -3, -2, -1], combine="concat").shape == (2, 4 * 384)
    assert fp32.embed(["a", "b"], layers=[1, 2], combine="sum").shape == (2, 384)
    tokens = fp32.embed_tokens(["hello world", "a"], layers=[0, -1])
    assert [t.shape for t in tokens] == [(2, 4, 384), (2, 3, 384)]  # [CLS] hello world [SEP]; [CLS] a [SEP]
    assert [t.shape for t in fp32.embed_tokens(["hello world"], layers=[0, -1], combine="concat")] == [(4, 768)]
    assert fp32.embed([], layers=-1).shape == (0, 1, 384)


def test_normalize_gives_unit_vectors(fp32):
    out = fp32.embed(TEXTS[:5], layers=[-1, -2], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
    tokens = fp32.embed_tokens(TEXTS[:2], layers=-1, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(tokens[0], axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("variant", ["fp32", "fused", "int8"])
def test_cut_graph_gives_the_full_graphs_values(minilm_bundle, variant):
    encoder = layerwise.load(minilm_bundle, variant=variant, provider="cpu")
    full = encoder.embed(TEXTS, layers="all")
    for k in range(6):
        np.testing.assert_allclose(encoder.embed(TEXTS, layers=k)[:, 0], full[:, k], atol=1e-5, rtol=0)
        assert len(encoder.engine.session(k).get_outputs()) == k + 1  # a cut graph, not the full one
    np.testing.assert_allclose(encoder.embed(TEXTS, layers=[2, 0, 2])[:, 0], full[:, 2], atol=1e-5, rtol=0)


def test_length_sorting_restores_the_callers_order_and_batch_equals_single(fp32):
    texts = TEXTS[::-1]
    batched = fp32.embed(texts, layers=[0, 3, 6], batch_size=4)
    single = np.concatenate([fp32.embed([t], layers=[0, 3, 6]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    stats = fp32.last_stats
    assert stats.texts == 1 and stats.batches == 1
    with fp32.use_batching(Batching(None, 2)):  # no padded-token cap (it differs by CPU family): batch_size alone
        fp32.embed(texts, batch_size=4)
    assert fp32.last_stats.batches == -(-len(texts) // 4) and fp32.last_stats.padded_tokens >= fp32.last_stats.tokens


def test_default_variant_is_int8_on_cpu_and_info_reports_it(minilm_bundle):
    encoder = layerwise.load(minilm_bundle, provider="cpu", threads=1)
    assert (encoder.info.variant, encoder.info.provider, encoder.info.threads) == ("int8", "cpu", 1)
    assert (encoder.info.num_layers, encoder.info.hidden_size, encoder.info.max_length) == (6, 384, 512)


def test_fp16_runs_on_cpu_with_unit_cosine(minilm_bundle, fp32):
    fp16 = layerwise.load(minilm_bundle, variant="fp16", provider="cpu")
    a, b = fp16.embed(TEXTS), fp32.embed(TEXTS)
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cos.min() >= 0.999


def test_batches_are_length_sorted_and_capped_by_texts_and_tokens():
    from layerwise.runtime.tokenize import Tokenized, length_sorted_batches

    tokenized = Tokenized(
        texts=["a", "b", "c"], ids=[[1] * 3, [1] * 9, [1] * 4], type_ids=[[0] * 3, [0] * 9, [0] * 4], full_lengths=[3, 9, 4], limit=512
    )
    by_count = list(length_sorted_batches(tokenized, batch_size=2, pad_id=0))
    assert [b.indices.tolist() for b in by_count] == [[1, 2], [0]] and [b.input_ids.shape for b in by_count] == [(2, 9), (1, 3)]
    by_tokens = list(length_sorted_batches(tokenized, batch_size=2, pad_id=0, max_tokens=10))
    assert [b.indices.tolist() for b in by_tokens] == [[1], [2, 0]] and [b.input_ids.shape for b in by_tokens] == [(1, 9), (2, 4)]
    assert by_tokens[1].attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    spread = list(length_sorted_batches(tokenized, batch_size=32, pad_id=0, spread=2))
    assert [b.indices.tolist() for b in spread] == [[1], [2, 0]]  # fits one batch, cut in two of about equal tokens
    assert [b.indices.tolist() for b in length_sorted_batches(tokenized, batch_size=32, pad_id=0, spread=4)] == [[1], [2], [0]]


def test_batches_run_side_by_side_carry_about_equal_tokens():
    """Twelve sentences under a 512-token cap: the cap alone makes batches of 11 texts and of 1 (one
    thread idle most of the call); spread over 2 threads they are cut into two of about equal tokens."""
    from layerwise.runtime.tokenize import Tokenized, length_sorted_batches

    lengths = [45, 40, 35, 30, 30, 28, 25, 20, 20, 18, 15, 13]
    ids = [[1] * n for n in lengths]
    tokenized = Tokenized(texts=["t"] * 12, ids=ids, type_ids=[[0] * n for n in lengths], full_lengths=lengths, limit=512)
    capped = list(length_sorted_batches(tokenized, batch_size=32, pad_id=0, max_tokens=512))
    assert [len(b.indices) for b in capped] == [11, 1]
    spread = list(length_sorted_batches(tokenized, batch_size=32, pad_id=0, max_tokens=512, spread=2))
    assert [len(b.indices) for b in spread] == [5, 7] and [b.input_ids.size for b in spread] == [225, 196]
    assert sorted(np.concatenate([b.indices for b in spread]).tolist()) == list(range(12))


def test_a_small_call_runs_side_by_side_on_two_threads_with_the_same_vectors(minilm_bundle):
    """Four short sentences fit one batch; on 2 threads they run as 2 batches side by side, with the
    vectors of one batch on intra-op threads."""
    encoder = layerwise.load(minilm_bundle, variant="fp32", provider="cpu", threads=2)
    spread = encoder.embed(TEXTS[:4], layers=[0, 6])
    assert encoder.last_stats.batches == 2
    with encoder.use_batching(Batching(max_tokens=None, side_by_side=1)):
        one_batch = encoder.embed(TEXTS[:4], layers=[0, 6])
    assert encoder.last_stats.batches == 1
    np.testing.assert_allclose(spread, one_batch, atol=1e-5, rtol=0)
