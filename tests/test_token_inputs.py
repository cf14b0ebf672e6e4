"""The tokenizer's extra entry points for untrusted input: token ids run as given, a cheap lower
bound on a huge text's tokens, and refusals that name the text."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

import layerwise
from layerwise.runtime import InputError
from layerwise.runtime.tokenize import PREFIX_CHARS


@pytest.fixture(scope="module")
def encoder(tiny_bundle):
    return layerwise.load(tiny_bundle, provider="cpu", threads=1)


@pytest.fixture(scope="module")
def reference(tiny_bundle):
    return Tokenizer.from_file(str(tiny_bundle / "tokenizer.json"))


def test_count_at_least_is_exact_below_the_cap_and_a_true_lower_bound_above_it(encoder, reference):
    tokenizer = encoder.tokenizer
    short = "naïve café, déjà vu " * 50
    assert tokenizer.count_at_least(short, 10**6) == len(reference.encode(short, add_special_tokens=False).ids)
    huge = "Layers of meaning, word after word. " * 20_000  # 720k characters
    whole = len(reference.encode(huge, add_special_tokens=False).ids)
    counted = tokenizer.count_at_least(huge, 1000)
    assert 1000 < counted <= whole and counted < whole / 10  # a prefix of PREFIX_CHARS, not the whole text
    assert len(huge) > 10 * PREFIX_CHARS


def test_token_ids_run_as_given_and_are_checked(encoder, reference):
    ids = [reference.encode(text).ids for text in ("hello", "Layers of meaning")]
    tokenized = encoder.tokenizer.encode_ids(ids)
    assert tokenized.ids == ids and tokenized.texts == ["[CLS] hello [SEP]", "[CLS] layers of meaning [SEP]"]
    with pytest.raises(InputError, match=r"^token id 30522 \(sequence 1\) is not in the vocabulary of 30522 tokens \(ids 0..30521\)$"):
        encoder.tokenizer.encode_ids([[101], [101, 30522]])
    with pytest.raises(
        InputError, match=r"^sequence 0 has 200 token ids, more than max_length 128 \(1 sequence\(s\) too long\); pass truncate=True"
    ):
        encoder.tokenizer.encode_ids([[7592] * 200], truncate=False)
    cut = encoder.tokenizer.encode_ids([[7592] * 200], truncate=True)
    assert len(cut.ids[0]) == 128 and cut.full_lengths == [200] and cut.truncated == [0]


def test_every_tokenizing_entry_point_names_the_text_it_refuses(encoder):
    message = r"^text 2 holds the lone surrogate '\\udfff' at character 3"
    for call in (encoder.tokenize, lambda texts: encoder.embed(texts, overflow="chunk"), encoder.tokenizer.tokens):
        with pytest.raises(InputError, match=message):
            call(["fine", "also fine", "bad\udfff"])
