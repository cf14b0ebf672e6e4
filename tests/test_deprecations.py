"""``truncate`` is deprecated in favour of ``overflow``: it still works, with a DeprecationWarning naming the replacement."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from layerwise.runtime import InputError, load

LONG = "word " * 40  # more than max_length=16 tokens


@pytest.fixture(scope="module")
def encoder(tiny_bundle):
    with load(tiny_bundle, provider="cpu", threads=1) as enc:
        yield enc


@pytest.mark.parametrize("method", ["embed", "embed_tokens"])
def test_truncate_true_warns_and_equals_overflow_truncate(encoder, method):
    with pytest.warns(DeprecationWarning, match=r"truncate=True is deprecated and will be removed: pass overflow='truncate' instead"):
        old = getattr(encoder, method)([LONG, "short"], layers=-1, max_length=16, truncate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither a DeprecationWarning nor a TruncationWarning
        new = getattr(encoder, method)([LONG, "short"], layers=-1, max_length=16, overflow="truncate")
    assert all(np.array_equal(a, b) for a, b in zip(old, new))


def test_truncate_false_warns_and_raises_as_overflow_error(encoder):
    with pytest.warns(DeprecationWarning, match=r"pass overflow='error' instead"):
        with pytest.raises(InputError, match=r"text 0 has \d+ tokens, more than max_length 16 .*pass overflow='truncate' to cut them"):
            encoder.embed([LONG], max_length=16, truncate=False)
    with pytest.raises(InputError, match=r"pass overflow='truncate' to cut them"):
        encoder.embed([LONG], max_length=16, overflow="error")


def test_the_warning_points_at_the_callers_line(encoder):
    with pytest.warns(DeprecationWarning) as caught:
        encoder.embed(["short"], truncate=True)
    assert caught[0].filename == __file__


def test_tokenize_takes_overflow_and_warns_on_truncate(encoder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cut = encoder.tokenize([LONG], max_length=16, overflow="truncate")
    assert cut.truncated == [0] and not cut.warn_truncated
    with pytest.warns(DeprecationWarning, match="pass overflow='truncate' instead"):
        assert encoder.tokenize([LONG], max_length=16, truncate=True).truncated == [0]
    with pytest.warns(DeprecationWarning), pytest.raises(InputError, match="pass overflow or truncate, not both"):
        encoder.tokenize([LONG], overflow="error", truncate=False)
    with pytest.raises(InputError, match="tokenize\\(\\) cuts or refuses long texts"):
        encoder.tokenize([LONG], overflow="chunk")


def test_the_truncation_warning_names_overflow(encoder):
    with pytest.warns(
        UserWarning, match=r"pass overflow='chunk' to embed them whole as windows, overflow='error' to get an error instead"
    ):
        encoder.embed([LONG], max_length=16)
