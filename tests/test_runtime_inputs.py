"""What a caller can get wrong, and what the runtime says about it."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import layerwise
from layerwise.runtime import InputError, NonFiniteOutputError, ProviderError, TruncationWarning
from layerwise.runtime.errors import BundleError

LONG = "word " * 700


@pytest.fixture(scope="module")
def encoder(minilm_bundle):
    return layerwise.load(minilm_bundle, variant="fused", provider="cpu")


def test_a_single_string_is_one_text(encoder):
    assert encoder.embed("hello", layers=-1).shape == (1, 1, 384)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", 3], r"texts\[1\] must be a str, got int"),
        (42, "texts must be a str or a list of str, got int"),
        (["a", None], r"texts\[1\] must be a str, got NoneType"),
    ],
)
def test_non_strings_are_a_type_error_naming_the_index(encoder, texts, message):
    with pytest.raises(TypeError, match=message):
        encoder.embed(texts)


def test_empty_strings_are_valid(encoder):
    out = encoder.embed(["", "text", ""], layers=-1)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], out[2])


def test_long_texts_are_truncated_counted_and_warned_about(encoder):
    with pytest.warns(
        TruncationWarning, match=r"1 of 3 text\(s\) were longer than the maximum length and were truncated \(first: text 1\)"
    ):
        encoder.embed(["short", LONG, "short too"], layers=-1)
    assert encoder.last_stats.truncated == 1 and encoder.last_stats.truncated_indices == (1,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.embed(["short"], layers=-1)
    assert encoder.last_stats.truncated == 0


def test_truncate_false_names_the_first_offending_text_and_its_tokens(encoder):
    with pytest.raises(InputError, match=r"text 1 has 702 tokens, more than max_length 512 \(1 of 2 text\(s\) too long\)"):
        encoder.embed(["fine", LONG], truncate=False)
    with pytest.raises(InputError, match=r"text 0 has 5 tokens, more than max_length 4"):
        encoder.embed(["a b c"], max_length=4, truncate=False)


def test_tokenize_cuts_as_tokenizers_does_and_keeps_full_lengths(encoder, minilm_bundle):
    from tokenizers import Tokenizer

    texts = ["", "short", LONG, "A sentence, with punctuation; and more words."]
    reference = Tokenizer.from_file(str(minilm_bundle / "tokenizer.json"))
    full = [len(e.ids) for e in reference.encode_batch(texts)]
    for limit in (512, 16, 3):
        reference.enable_truncation(limit)
        want = reference.encode_batch(texts)
        got = encoder.tokenize(texts, max_length=limit)
        assert (got.ids, got.type_ids) == ([e.ids for e in want], [e.type_ids for e in want])
        assert got.full_lengths == full and got.truncated == [i for i, n in enumerate(full) if n > limit]


def test_embed_takes_its_own_tokenization_and_gives_the_same_vectors(encoder):
    texts = ["short", "a second, longer text about layers", LONG]
    with pytest.warns(TruncationWarning):
        direct = encoder.embed(texts, layers=[0, -1])
    with pytest.warns(TruncationWarning):
        via_tokens = encoder.embed(encoder.tokenize(texts), layers=[0, -1])
    np.testing.assert_array_equal(via_tokens, direct)
    with pytest.raises(InputError, match="pass them to tokenize"):
        encoder.embed(encoder.tokenize(texts), max_length=16)


def test_max_length_cuts_tokens(encoder):
    tokens = encoder.embed_tokens([LONG], layers=-1, max_length=16)
    assert tokens[0].shape == (1, 16, 384)
    with pytest.raises(InputError, match="max_length must be an int from 2 to the model maximum 512, got 9999"):
        encoder.embed(["x"], max_length=9999)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layers": 7}, r"layer 7 does not exist: this model has hidden states 0..6 \(0 is the embedding output\), or -7..-1"),
        ({"layers": -8}, "layer -8 does not exist"),
        ({"layers": []}, "non-empty list of ints"),
        ({"layers": "last"}, "layers must be 'all', an int or a list of ints, got 'last'"),
        ({"layers": [1.5]}, r"layers must hold ints, got 1.5"),
        ({"pool": "sum"}, "pool must be one of mean, max, cls, none, got 'sum'"),
        ({"combine": "stack"}, "combine must be one of None, 'concat', 'sum', 'mean', 'scalar_mix', got 'stack'"),
        ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
    ],
)
def test_bad_options_name_the_value_and_the_choices(encoder, options, message):
    with pytest.raises(InputError, match=message):
        encoder.embed(["x"], **options)


def test_cuda_asked_for_without_onnxruntime_gpu_says_what_to_install(minilm_bundle):
    with pytest.raises(
        ProviderError,
        match=(r"provider='cuda' was requested, but the installed onnxruntime .* has no CUDA execution provider.*pip install "
               r"'layerwise\[gpu\]'"),
    ):
        layerwise.load(minilm_bundle, provider="cuda")


def test_auto_provider_is_cuda_exactly_when_onnxruntime_offers_it(minilm_bundle):
    import onnxruntime

    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    info = layerwise.load(minilm_bundle).info  # no variant: auto may choose fp16 on CUDA
    assert (info.provider, info.variant) == (("cuda", "fp16") if cuda else ("cpu", "int8"))


def test_variant_choice_follows_the_providers_the_manifest_records(minilm_bundle):
    from layerwise.runtime.loader import choose_variant
    from layerwise.runtime.manifest import read_manifest

    manifest = read_manifest(minilm_bundle)
    assert {name: v.providers for name, v in manifest.variants.items()} == {
        "fp32": ("cpu", "cuda"), "fused": ("cpu", "cuda"), "int8": ("cpu",), "fp16": ("cuda", "cpu"),
    }  # fmt: skip
    assert (choose_variant(manifest, "cpu", None), choose_variant(manifest, "cuda", None)) == ("int8", "fp16")
    assert choose_variant(manifest, "cpu", "fp16") == "fp16"
    with pytest.raises(
        ProviderError, match=r"the int8 variant runs on cpu only \(as its manifest records\), not cuda; on cuda use fp32, fused, fp16"
    ):
        choose_variant(manifest, "cuda", "int8")
    without_fp16 = dataclasses.replace(manifest, variants={k: v for k, v in manifest.variants.items() if k != "fp16"})
    assert choose_variant(without_fp16, "cuda", None) == "fused"
    only_int8 = dataclasses.replace(manifest, variants={"int8": manifest.variants["int8"]})
    with pytest.raises(
        ProviderError, match="this bundle has no variant that runs on cuda \\(it has int8\\); export fp32, fused, fp16 for cuda"
    ):
        choose_variant(only_int8, "cuda", None)


def test_auto_falls_back_to_the_cpu_and_says_why_when_cuda_cannot_run(minilm_bundle, monkeypatch, caplog):
    from layerwise.runtime import loader, session

    monkeypatch.setattr(session, "cuda_provider_installed", lambda: True)
    real_create = loader.Encoder

    def fake_encoder(bundle, variant, config, tokenizer, reason):
        if config.provider == "cuda":
            raise ProviderError("CUDAExecutionProvider was requested but ONNX Runtime is running it with CPUExecutionProvider")
        return real_create(bundle, variant, config, tokenizer, reason)

    monkeypatch.setattr(loader, "Encoder", fake_encoder)
    with caplog.at_level("WARNING", logger="layerwise"):
        encoder = layerwise.load(minilm_bundle)
    assert (encoder.info.provider, encoder.info.variant) == ("cpu", "int8")
    assert "provider='auto': the CUDA provider cannot run this bundle here" in caplog.text
    with pytest.raises(ProviderError, match="running it with CPUExecutionProvider"):
        layerwise.load(minilm_bundle, provider="cuda")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"provider": "tpu"}, ProviderError, "provider must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ({"threads": 0}, InputError, "threads must be a positive int, got 0 \\(leave it out for one per physical core\\)"),
])  # fmt: skip
def test_bad_load_options(minilm_bundle, kwargs, error, message):
    with pytest.raises(error, match=message):
        layerwise.load(minilm_bundle, **kwargs)


def test_a_variant_missing_from_the_bundle_is_named(tmp_path, minilm_bundle):
    import json
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(minilm_bundle, bundle, ignore=shutil.ignore_patterns("model.int8.onnx", "model.fp16.onnx", "model.fp32.onnx"))
    data = json.loads((bundle / "manifest.json").read_text())
    data["variants"] = {"fused": data["variants"]["fused"]}
    (bundle / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"variant 'int8' is not in this bundle \(it has fused\)"):
        layerwise.load(bundle, variant="int8")
    assert layerwise.load(bundle, provider="cpu").info.variant == "fused"


def test_nan_never_leaves_the_runtime(encoder, monkeypatch):
    from layerwise.runtime.engine import Engine

    real_run = Engine.run

    def poisoned(self, batch, layers, pool, single_thread=False):
        results = real_run(self, batch, layers, pool, single_thread)
        rows = list(batch.indices)
        if 2 in rows:
            results[layers[-1]][rows.index(2)] = np.nan
        return results

    monkeypatch.setattr(Engine, "run", poisoned)
    with pytest.raises(NonFiniteOutputError, match=r"produced NaN or Inf at layer 6 for text 2 'third one'; nothing was returned"):
        encoder.embed(["first", "second", "third one"], layers=[0, -1])
    with pytest.raises(NonFiniteOutputError, match="for text 2"):
        encoder.embed_tokens(["first", "second", "third one"], layers=[-1])


def test_inf_made_by_combining_layers_never_leaves_the_runtime(encoder, monkeypatch):
    from layerwise.runtime.engine import Engine

    real_run = Engine.run

    def huge(self, batch, layers, pool, single_thread=False):
        results = real_run(self, batch, layers, pool, single_thread)
        for layer in layers if 1 in batch.indices else ():  # text 1's batch (the two may run apart, side by side)
            results[layer][list(batch.indices).index(1)] = 3e38  # finite at every layer; their sum is not
        return results

    monkeypatch.setattr(Engine, "run", huge)
    with pytest.raises(NonFiniteOutputError, match=r"produced NaN or Inf when combining layers \(combine='sum'\) for text 1 'second'"):
        encoder.embed(["first", "second"], layers=[0, -1], combine="sum")
    with pytest.raises(NonFiniteOutputError, match=r"when combining layers \(combine='sum'\) for text 1"):
        encoder.embed_tokens(["first", "second"], layers=[0, -1], combine="sum")
    assert np.isfinite(encoder.embed(["first", "second"], layers=[0, -1], combine="concat")).all()


def test_per_token_states_have_their_own_entry_point(encoder):
    with pytest.raises(InputError, match=r"pool='none' gives one array per text: call embed_tokens\(\) for per-token states"):
        encoder.embed(["x"], pool="none")
