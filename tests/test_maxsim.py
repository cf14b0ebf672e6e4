"""MaxSim (ColBERT late interaction): the kernel on hand-built arrays, and scores on the tiny random bundle
equal to the sum of each query token's best cosine computed from ``embed_tokens`` directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import layerwise
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime import maxsim as maxsim_module
from layerwise.runtime.errors import InputError
from layerwise.runtime.maxsim import MaxSim, best_matches, maxsim, punctuation_ids


def test_best_matches_docstring_example_and_skipped_tokens() -> None:
    query = np.array([[1, 0]], dtype=np.float32)
    document = np.array([[0, 1], [1, 0]], dtype=np.float32)
    best, where = best_matches(query, [document], [np.array([True, True])])
    assert best.tolist() == [[1.0]] and where.tolist() == [[1]]
    best, where = best_matches(query, [document], [np.array([True, False])])
    assert best.tolist() == [[0.0]] and where.tolist() == [[0]]


def test_best_matches_equals_a_loop_over_documents_of_other_lengths() -> None:
    rng = np.random.default_rng(0)
    query = rng.standard_normal((4, 6)).astype(np.float32)
    documents = [rng.standard_normal((n, 6)).astype(np.float32) for n in (7, 2, 11, 5)]
    keep = [rng.random(len(d)) > 0.3 for d in documents]
    for k in keep:
        k[0] = True
    best, where = best_matches(query, documents, keep)
    for i, (d, k) in enumerate(zip(documents, keep)):
        sim = np.where(k[None, :], query @ d.T, -np.inf)
        assert np.allclose(best[i], sim.max(axis=1)) and (where[i] == sim.argmax(axis=1)).all()


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> layerwise.Encoder:
    return layerwise.load(tiny_bundle, variant="fp32")


def brute_force(enc: layerwise.Encoder, query: str, document: str, skip_punctuation: bool) -> float:
    q = enc.embed_tokens([query], layers=-1, normalize=True)[0][0]
    d = enc.embed_tokens([document], layers=-1, normalize=True)[0][0]
    ids = np.array(enc.tokenizer.tokens([document])[0].ids)
    keep = ~np.isin(ids, punctuation_ids(enc)) if skip_punctuation else np.ones(len(ids), dtype=bool)
    return float((q @ d[keep].T).max(axis=1).sum())


def test_scores_are_sums_of_best_cosines_with_punctuation_skipped_in_documents(tiny: layerwise.Encoder) -> None:
    query = "How are default arguments evaluated?"
    documents = corpus_sentences(6, skip=1300) + ["Default values are evaluated once, when the function is defined!"]
    result = maxsim(tiny, query, documents, return_matches=True)
    assert isinstance(result, MaxSim) and result.scores.shape == (7,) and result.layers == (1,)
    for score, document in zip(result.scores, documents):
        assert score == pytest.approx(brute_force(tiny, query, document, True), abs=1e-5)
    assert result.query_tokens[0] == "[CLS]" and result.query_tokens[-1] == "[SEP]"  # every query token counts
    assert all(t not in {",", "!", "."} for m in result.matches for t in m.tokens)
    kept = maxsim(tiny, query, documents[-1:], skip_punctuation=False)
    assert kept.scores[0] == pytest.approx(brute_force(tiny, query, documents[-1], False), abs=1e-5)


def test_matches_name_the_best_document_token_per_query_token(tiny: layerwise.Encoder) -> None:
    result = maxsim(tiny, "cats and dogs", ["dogs, and cats", "cats"], return_matches=True)
    q = tiny.embed_tokens(["cats and dogs"], layers=-1, normalize=True)[0][0]
    d = tiny.embed_tokens(["dogs, and cats"], layers=-1, normalize=True)[0][0]
    tokens = tiny.tokenizer.tokens(["dogs, and cats"])[0].tokens
    first = result.matches[0]
    assert first.tokens == tuple(tokens[p] for p in first.positions) and "," not in first.tokens
    sim = q @ d.T
    sim[:, tokens.index(",")] = -np.inf
    assert (first.positions == sim.argmax(axis=1)).all() and np.allclose(first.similarities, sim.max(axis=1))
    assert result.scores[0] == pytest.approx(first.similarities.sum())


def test_combined_layers_and_document_chunks_give_the_same_scores(tiny: layerwise.Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = corpus_sentences(9, skip=1310)
    whole = maxsim(tiny, "a query about strings", documents, layers=[0, 1], combine="concat")
    monkeypatch.setattr(maxsim_module, "DOCUMENTS_PER_CHUNK", 2)
    chunked = maxsim(tiny, "a query about strings", documents, layers=[0, 1], combine="concat")
    assert np.allclose(whole.scores, chunked.scores, atol=1e-6) and whole.layers == (0, 1)


def test_long_documents_are_cut_or_scored_whole(tiny: layerwise.Encoder) -> None:
    long = " ".join(corpus_sentences(20, skip=1300))  # far over the tiny model's 128 tokens
    cut = maxsim(tiny, "strings", [long], overflow="truncate", return_matches=True)
    whole = maxsim(tiny, "strings", [long], overflow="chunk", return_matches=True)
    assert whole.scores[0] >= cut.scores[0] - 1e-5 and whole.matches[0].positions.max() >= 0


@pytest.mark.parametrize(
    ("query", "documents", "options", "error", "message"),
    [
        ("q", [], {}, InputError, "no documents were given"),
        ("q", ["d"], {"layers": [0, 1]}, InputError, r"MaxSim over several layers \(\[0, 1\]\) needs combine 'concat'"),
        ("q", ["d"], {"layers": 7}, InputError, "layer 7 does not exist"),
        (["q"], ["d"], {}, TypeError, "query must be a str"),
        ("q", ["d", "\ud800"], {}, InputError, "document 1 holds the lone surrogate"),
    ],
)
def test_bad_requests_get_clear_errors(tiny: layerwise.Encoder, query, documents, options, error, message) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        maxsim(tiny, query, documents, **options)
