"""BERTScore's pieces on hand-built arrays, and its orchestration on the tiny random bundle (fast tier).

The match with the bert-score package itself, on the real MiniLM, is tests/test_bertscore.py.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import layerwise
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.baseline import Baseline, read_baseline
from layerwise.runtime.bertscore import BERTScore, baseline_corpus, bertscore, compute_baseline, idf_weights, random_halves
from layerwise.runtime.errors import InputError
from layerwise.runtime.greedy import blocks, f_measure, greedy_match, rescale, share, unit_rows
from layerwise.runtime.pair_chunks import keep_for_later, plan_chunks
from layerwise.runtime.score_inputs import ScoreTruncationWarning, TokenTable


def test_greedy_match_equals_a_token_by_token_loop() -> None:
    rng = np.random.default_rng(0)
    cands = [unit_rows(rng.standard_normal((2, n, 8)).astype(np.float32)) for n in (3, 5, 1)]
    refs = [unit_rows(rng.standard_normal((2, n, 8)).astype(np.float32)) for n in (4, 2, 6)]
    cw = [share(rng.random(c.shape[1])) for c in cands]
    rw = [share(rng.random(r.shape[1])) for r in refs]
    precision, recall = greedy_match(cands, cw, refs, rw)
    for i, (c, r) in enumerate(zip(cands, refs)):
        for layer in range(2):
            best_c = [max(float(c[layer, a] @ r[layer, b]) for b in range(r.shape[1])) for a in range(c.shape[1])]
            best_r = [max(float(c[layer, a] @ r[layer, b]) for a in range(c.shape[1])) for b in range(r.shape[1])]
            assert precision[layer, i] == pytest.approx(float(np.dot(best_c, cw[i])), abs=1e-6)
            assert recall[layer, i] == pytest.approx(float(np.dot(best_r, rw[i])), abs=1e-6)


def test_greedy_match_docstring_example_and_negative_cosines_stay_negative() -> None:
    cand = np.array([[[1, 0], [0, 1]]], dtype=np.float32)
    ref = np.array([[[1, 0]]], dtype=np.float32)
    precision, recall = greedy_match([cand], [share(np.ones(2))], [ref], [share(np.ones(1))])
    assert precision.tolist() == [[0.5]] and recall.tolist() == [[1.0]]
    precision, _ = greedy_match([-ref], [share(np.ones(1))], [ref], [share(np.ones(1))])
    assert precision.tolist() == [[-1.0]]  # the package could give 0 here when the pair sat next to a longer one


def test_blocks_pad_each_pair_to_its_own_lengths_rounded_up() -> None:
    got = blocks(np.array([5, 3, 12]), np.array([4, 9, 4]), per_token=1)
    assert [(rows.tolist(), wc, wr) for rows, wc, wr in got] == [([0], 8, 8), ([1], 8, 16), ([2], 16, 8)]


def test_a_pairs_numbers_do_not_depend_on_the_pairs_beside_it() -> None:
    rng = np.random.default_rng(1)
    cands = [unit_rows(rng.standard_normal((1, n, 16)).astype(np.float32)) for n in (9, 30, 10, 11)]
    refs = [unit_rows(rng.standard_normal((1, n, 16)).astype(np.float32)) for n in (12, 5, 13, 14)]
    cw, rw = [share(np.ones(c.shape[1])) for c in cands], [share(np.ones(r.shape[1])) for r in refs]
    together = greedy_match(cands, cw, refs, rw)
    for i in range(4):
        alone = greedy_match(cands[i : i + 1], cw[i : i + 1], refs[i : i + 1], rw[i : i + 1])
        assert alone[0][0, 0] == together[0][0, i] and alone[1][0, 0] == together[1][0, i]


def test_all_zero_weights_give_nan_and_f_zero_as_the_package() -> None:
    assert np.isnan(share(np.zeros(3))).all()
    f = f_measure(np.array([np.nan, 0.5, 0.0], dtype=np.float32), np.array([0.5, 0.5, 0.0], dtype=np.float32))
    assert f.tolist() == [0.0, 0.5, 0.0]


def test_rescale_is_s_minus_b_over_one_minus_b() -> None:
    assert rescale(np.array([0.5, 1.0], dtype=np.float32), np.array(0.25)).tolist() == pytest.approx([1 / 3, 1.0])


def test_idf_is_log_m_plus_1_over_df_plus_1_counting_repeats() -> None:
    table = TokenTable(
        texts=["a", "b"],
        ids=np.array([101, 7, 7, 102, 101, 102]),
        type_ids=np.zeros(6, dtype=np.int8),
        offsets=np.array([0, 4, 6]),
        full_lengths=np.array([4, 2]),
        limit=512,
    )
    weights = idf_weights(table, np.array([2, 1]), vocab=200)  # text "a" is the reference of two pairs
    assert weights[7] == pytest.approx(np.log(4 / 3))  # in 2 of M=3 references, counted once per reference
    assert weights[101] == weights[102] == 0.0  # in every reference
    assert weights[5] == pytest.approx(np.log(4))  # in none


def test_baseline_file_round_trips_in_the_package_format(tmp_path: Path) -> None:
    values = np.array([[0.3231512, 0.32322776, 0.31853873], [0.32517454, 0.32522815, 0.32197207]], dtype=np.float32)
    Baseline(values).save(tmp_path / "b.tsv")
    text = (tmp_path / "b.tsv").read_text()
    assert text == "LAYER,P,R,F\n0,0.3231512,0.32322776,0.31853873\n1,0.32517454,0.32522815,0.32197207\n"
    assert np.array_equal(read_baseline(tmp_path / "b.tsv").values, values)
    assert [p.name for p in tmp_path.iterdir()] == ["b.tsv"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LAYER,P,R\n0,1,2\n", "must start with the header line LAYER,P,R,F"),
        ("LAYER,P,R,F\n1,0.1,0.2,0.3\n", "rows must be layers 0, 1, 2, ... in order"),
        ("LAYER,P,R,F\n0,0.1,x,0.3\n", "row 2: '0,0.1,x,0.3' is not LAYER,P,R,F numbers"),
        ("LAYER,P,R,F\n", "has a header but no rows"),
    ],
)
def test_baseline_file_errors_name_the_row_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "b.tsv").write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_baseline(tmp_path / "b.tsv")


def test_a_baseline_of_another_model_is_refused() -> None:
    with pytest.raises(InputError, match=r"has 3 rows \(hidden states 0\.\.2\), but this model has hidden states 0\.\.6"):
        Baseline(np.zeros((3, 3), dtype=np.float32)).rows([4], 6, "given")


def test_plan_chunks_groups_pairs_sharing_a_reference_within_the_budget() -> None:
    cand_rows, ref_rows = np.array([0, 1, 3]), np.array([2, 2, 4])
    chunks = plan_chunks(cand_rows, ref_rows, np.arange(3), np.full(5, 10), budget=30)
    assert [c.tolist() for c in chunks] == [[0, 1], [2]]
    assert [c.tolist() for c in plan_chunks(cand_rows, ref_rows, np.arange(3), np.full(5, 10), budget=1)] == [[0], [1], [2]]


def test_keep_for_later_keeps_the_soonest_needed_within_the_budget() -> None:
    # text t used in chunks: 0 -> {0, 1}, 1 -> {0, 3}, 2 -> {0}; after chunk 0, budget for one text of 10 tokens
    uses = np.array([0 * 4 + 0, 0 * 4 + 1, 1 * 4 + 0, 1 * 4 + 3, 2 * 4 + 0])
    cache = {0: (np.zeros(1), np.zeros(1)), 1: (np.zeros(1), np.zeros(1)), 2: (np.zeros(1), np.zeros(1))}
    keep_for_later(cache, uses, 4, 0, np.full(3, 10), budget=10)
    assert list(cache) == [0]


def test_baseline_corpus_and_halves_follow_the_package_selection() -> None:
    lines = ["  short line  ", "", " ".join(["w"] * 31), " ".join(["w"] * 32)]
    assert baseline_corpus(lines) == ["short line", " ".join(["w"] * 31)]
    cands, refs = random_halves(7, seed=0)
    assert len(cands) == len(refs) == 3 and not set(cands) & set(refs)


# --- on the tiny random bundle (1 layer, hidden 64, MiniLM's tokenizer, 128 tokens at most) ---


class CountingEncoder:
    """An Encoder that records the texts each ``embed_tokens`` call embeds."""

    def __init__(self, encoder: layerwise.Encoder) -> None:
        self._encoder = encoder
        self.info = encoder.info
        self.embedded: list[str] = []

    @property
    def tokenizer(self):  # noqa: ANN201
        return self._encoder.tokenizer

    def tokenize(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._encoder.tokenize(*args, **kwargs)

    def embed_tokens(self, texts, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        self.embedded += list(texts.texts)
        return self._encoder.embed_tokens(texts, *args, **kwargs)


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> layerwise.Encoder:
    return layerwise.load(tiny_bundle, variant="fp32")


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return corpus_sentences(40, skip=1300)


def reference_scores(enc: layerwise.Encoder, cands: list[str], refs: list[str], layer: int) -> np.ndarray:
    """BERTScore without idf in a dozen lines over embed_tokens: [P, R, F] per pair."""
    out = []
    for c, r in zip(cands, refs):
        (cv,), (rv,) = (enc.embed_tokens([text.strip()], layers=layer, normalize=True)[0] for text in (c, r))
        sim = cv @ rv.T
        wc, wr = np.ones(len(cv)), np.ones(len(rv))
        wc[[0, -1]] = wr[[0, -1]] = 0
        p, r_ = sim.max(1) @ wc / wc.sum(), sim.max(0) @ wr / wr.sum()
        out.append([p, r_, 2 * p * r_ / (p + r_)])
    return np.array(out)


def test_scores_equal_a_plain_numpy_reference(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    cands, refs = sentences[:10], sentences[10:20]
    result = bertscore(tiny, cands, refs, layers=1)
    assert isinstance(result, BERTScore) and result.precision.shape == (10,) and result.layers == (1,)
    got = np.stack([result.precision, result.recall, result.f1], axis=1)
    assert np.abs(got - reference_scores(tiny, cands, refs, 1)).max() < 1e-5


def test_each_distinct_text_is_embedded_once_in_one_call(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    counting = CountingEncoder(tiny)
    cands = [sentences[0], sentences[1], sentences[0], "  " + sentences[2]]
    refs = [[sentences[2], sentences[3]], [sentences[3]], [sentences[1]], [sentences[0]]]
    result = bertscore(counting, cands, refs, layers=[0, 1])
    assert sorted(counting.embedded) == sorted(sentences[:4])  # "  text" is stripped, as the package does
    assert result.stats.unique_texts == result.stats.embedded_texts == 4 and result.stats.pairs == 5


def test_chunked_scoring_equals_one_pass(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    cands = sentences[:20] + sentences[:5]
    refs = [[sentences[20 + i % 7], sentences[30 + i % 3]] for i in range(25)]
    whole = bertscore(tiny, cands, refs, layers="all", idf=True)
    progress: list[tuple[int, int]] = []
    counting = CountingEncoder(tiny)
    chunked = bertscore(counting, cands, refs, layers="all", idf=True, chunk_tokens=150, progress=lambda d, t: progress.append((d, t)))
    assert chunked.stats.chunks > 3 and whole.stats.chunks == 1
    for name in ("precision", "recall", "f1"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name))
    assert progress[-1] == (50, 50) and len(progress) == chunked.stats.chunks
    assert chunked.stats.embedded_texts == len(counting.embedded) >= chunked.stats.unique_texts == 30


def test_all_layers_equal_per_layer_calls(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    cands, refs = sentences[:8], sentences[8:16]
    every = bertscore(tiny, cands, refs, layers="all", idf=True)
    assert every.f1.shape == (2, 8) and every.layers == (0, 1)
    for row, layer in enumerate((0, 1)):
        single = bertscore(tiny, cands, refs, layers=layer, idf=True)
        assert np.array_equal(single.f1, every.f1[row]) and np.array_equal(single.precision, every.precision[row])
    reordered = bertscore(tiny, cands, refs, layers=[-1, 0])
    assert np.array_equal(reordered.recall[0], bertscore(tiny, cands, refs, layers=1).recall)


def test_several_references_keep_the_best_precision_recall_and_f1_each(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    cand, refs = sentences[0], sentences[1:4]
    each = bertscore(tiny, [cand] * 3, refs, layers=1)
    best = bertscore(tiny, [cand], [refs], layers=1)
    assert best.precision[0] == each.precision.max() and best.recall[0] == each.recall.max() and best.f1[0] == each.f1.max()


def test_a_candidate_or_reference_without_tokens_scores_zero(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    result = bertscore(tiny, ["", sentences[0], " \u200b ", sentences[1]], [sentences[0], "   ", sentences[2], sentences[2]], layers=1)
    assert result.f1[:3].tolist() == [0.0, 0.0, 0.0] and result.precision[:3].tolist() == [0.0] * 3 and result.f1[3] > 0


def test_idf_from_given_sentences_changes_the_weights_and_the_hash(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    plain = bertscore(tiny, sentences[:5], sentences[5:10], layers=1)
    refs_idf = bertscore(tiny, sentences[:5], sentences[5:10], layers=1, idf=True)
    given = bertscore(tiny, sentences[:5], sentences[5:10], layers=1, idf=sentences[10:30])
    assert not np.array_equal(plain.f1, refs_idf.f1) and not np.array_equal(refs_idf.f1, given.f1)
    assert "_no-idf_" in plain.hash and "_idf_" in refs_idf.hash and "_idf-given=" in given.hash


def test_long_texts_are_cut_as_the_package_cuts_them_with_a_warning(tiny: layerwise.Encoder, sentences: list[str]) -> None:
    long = " ".join(sentences)  # far over the tiny model's 128 tokens
    with pytest.warns(ScoreTruncationWarning, match=r"1 candidate\(s\) and the references of 1 candidate\(s\) were longer .* 128 tokens"):
        warned = bertscore(tiny, [sentences[0], long], [long, sentences[1]], layers=1)
    assert warned.truncated_candidates == (1,) and warned.truncated_references == (0,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = bertscore(tiny, [sentences[0], long], [long, sentences[1]], layers=1, overflow="truncate")
    assert np.array_equal(quiet.f1, warned.f1)
    with pytest.raises(InputError, match=r"^candidate 1 has \d+ tokens, more than the model maximum 128 .*overflow='truncate'"):
        bertscore(tiny, [sentences[0], long], [sentences[1], long], layers=1, overflow="error")


@pytest.mark.parametrize(
    ("cands", "refs", "options", "error", "message"),
    [
        ([], [], {}, InputError, "no candidates were given"),
        (["a", "b"], ["a"], {}, InputError, "2 candidates but 1 references"),
        (["a"], [[]], {}, InputError, r"references\[0\] is an empty list"),
        (["a"], ["b"], {"layers": 9}, InputError, "layer 9 does not exist"),
        (["a"], ["b"], {"idf": "yes"}, InputError, "idf must be False, True"),
        (["a"], ["b"], {"overflow": "chunk"}, InputError, "overflow must be None, 'truncate' or 'error'"),
        ("a", ["b"], {}, TypeError, "candidates must be a list of str"),
        (["a"], [["b", 3]], {}, TypeError, r"references\[0\]\[1\] must be a str, got int"),
        (["a", "b\ud800"], ["c", "d"], {}, InputError, "candidate 1 holds the lone surrogate"),
        (["a"], ["\ud800"], {}, InputError, "reference 0 holds the lone surrogate"),
    ],
)
def test_bad_requests_get_clear_errors(tiny: layerwise.Encoder, cands, refs, options, error, message) -> None:  # noqa: ANN001
    with pytest.raises(error, match=message):
        bertscore(tiny, cands, refs, **{"layers": 1, **options})


def test_hash_pins_bundle_variant_layers_idf_and_baseline(tiny: layerwise.Encoder, tiny_bundle: Path, tmp_path: Path) -> None:
    Baseline(np.full((2, 3), 0.5, dtype=np.float32)).save(tmp_path / "b.tsv")
    result = bertscore(tiny, ["a cat"], ["a dog"], layers=[0, 1], idf=True, baseline=tmp_path / "b.tsv")
    digest = "[0-9a-f]{16}"
    pattern = rf"{tiny_bundle.name}_L0,1_idf_version=layerwise-[^(]+\(bundle={digest},variant=fp32\)-rescaled\(baseline={digest}\)"
    assert re.fullmatch(pattern, result.hash), result.hash
    raw = bertscore(tiny, ["a cat"], ["a dog"], layers=[0, 1], idf=True)
    assert np.allclose(result.f1, (raw.f1 - 0.5) / 0.5)


def test_compute_baseline_averages_random_pairs_at_every_layer(tiny: layerwise.Encoder, sentences: list[str], tmp_path: Path) -> None:
    baseline = compute_baseline(tiny, sentences + ["", "   "], seed=3)
    assert baseline.values.shape == (2, 3) and baseline.values.dtype == np.float32
    kept = baseline_corpus(sentences)  # fewer than 32 words
    cands, refs = random_halves(len(kept), seed=3)
    direct = bertscore(tiny, [kept[i] for i in cands], [kept[i] for i in refs], layers="all")
    assert np.allclose(baseline.values[:, 2], direct.f1.mean(axis=1))
    baseline.save(tmp_path / "tiny.tsv")
    assert np.array_equal(read_baseline(tmp_path / "tiny.tsv").values, baseline.values)
