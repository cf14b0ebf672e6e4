"""Long texts as windows (overflow="chunk") and span embeddings equal PyTorch running the same
windows, merged by the rules of runtime/windows.py, on real long documents."""

from __future__ import annotations

from pydoc_data.topics import topics

import numpy as np
import pytest
import torch

import layerwise
from layerwise.runtime import InputError

LONG = " ".join(topics[k] for k in sorted(topics)[:12])  # CPython's own docs: real prose and code, thousands of tokens
SHORT = "A short sentence that fits in one window."
ATOL = 1e-4


@pytest.fixture(scope="module")
def fp32(minilm_bundle):
    return layerwise.load(minilm_bundle, variant="fp32", provider="cpu")


@pytest.fixture(scope="module")
def long_doc(fp32) -> str:
    """The first ~2,100 tokens of LONG, cut at a character boundary."""
    encoding = fp32.tokenizer.tokens([LONG], add_special_tokens=False)[0]
    return LONG[: encoding.offsets[2100][1]]


def torch_merged(torch_minilm, text: str, limit: int, stride: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """transformers' own windows (return_overflowing_tokens) through the model, merged by the rule, matched
    to the whole text's tokens by character offsets: (rows [layers, tokens, hidden], cls [layers, hidden], offsets)."""
    model, tokenizer = torch_minilm
    whole = tokenizer(text, return_offsets_mapping=True, verbose=False)
    windows = tokenizer(
        text, max_length=limit, truncation=True, stride=stride, return_overflowing_tokens=True,
        return_offsets_mapping=True, padding=True, return_tensors="pt",
    )
    feeds = {k: windows[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        states = torch.stack(model(**feeds, output_hidden_states=True).hidden_states, 1).double().numpy()  # [w, layers, seq, hidden]
    where = {tuple(o): i for i, o in enumerate(whole["offset_mapping"]) if whole.sequence_ids()[i] is not None}
    total = len(whole["input_ids"])
    sums = np.zeros((states.shape[1], total, states.shape[-1]))
    counts = np.zeros(total)
    cls, weights = [], []
    count = len(states)
    for w in range(count):
        content = [i for i, s in enumerate(windows.sequence_ids(w)) if s is not None]
        rows = [(i, where[tuple(windows["offset_mapping"][w][i].tolist())]) for i in content]
        if w == 0:
            rows.append((0, 0))
        if w == count - 1:
            rows.append((content[-1] + 1, total - 1))
        for source, target in rows:
            sums[:, target] += states[w, :, source]
            counts[target] += 1
        cls.append(states[w, :, 0])
        weights.append(len(content) - (stride if w else 0))
    assert counts.min() == 1  # every token of the whole text was seen
    merged = sums / counts[None, :, None]
    return merged, np.average(np.stack(cls), axis=0, weights=weights), [tuple(o) for o in whole["offset_mapping"]]


@pytest.fixture(scope="module")
def reference(torch_minilm, long_doc):
    return torch_merged(torch_minilm, long_doc, 512, 128)


def test_chunked_tokens_and_pools_match_pytorch_windows_merged(fp32, long_doc, reference):
    merged, cls, _ = reference
    tokens = fp32.embed_tokens([SHORT, long_doc], overflow="chunk", stride=128)
    assert tokens[1].shape == merged.shape and merged.shape[1] > 2000
    np.testing.assert_allclose(tokens[1], merged, atol=ATOL)
    np.testing.assert_allclose(tokens[0], fp32.embed_tokens(SHORT)[0], atol=1e-6)  # a short text is untouched
    for pool, want in {"mean": merged.mean(1), "max": merged.max(1), "cls": cls}.items():
        got = fp32.embed([long_doc, SHORT], pool=pool, overflow="chunk", stride=128)
        stats = fp32.last_stats
        assert (stats.texts, stats.split, stats.windows) == (2, 1, 1 + -(-(merged.shape[1] - 512) // (510 - 128)) + 1)
        np.testing.assert_allclose(got[0], want, atol=ATOL, err_msg=pool)
        np.testing.assert_allclose(got[1], fp32.embed(SHORT, pool=pool)[0], atol=1e-5, err_msg=pool)


def text_of(encoder, source: str, tokens: int) -> str:
    """A piece of ``source`` that is exactly ``tokens`` tokens long, special tokens included."""
    encoding = encoder.tokenizer.tokens([source], add_special_tokens=False)[0]
    for skip in range(50):
        piece = source[encoding.offsets[skip][0] : encoding.offsets[skip + tokens - 3][1]]
        if len(encoder.tokenizer.tokens([piece])[0].ids) == tokens:
            return piece
    raise AssertionError(f"no piece of {tokens} tokens found")


def test_texts_at_the_limit_stay_whole_and_one_token_over_splits(fp32, torch_minilm, long_doc):
    for tokens, windows in ((512, 1), (513, 2)):
        text = text_of(fp32, long_doc, tokens)
        got = fp32.embed(text, overflow="chunk", stride=128)
        assert (fp32.last_stats.split, fp32.last_stats.windows) == (windows - 1, windows)
        merged, _, _ = torch_merged(torch_minilm, text, 512, 128)
        np.testing.assert_allclose(got[0], merged.mean(1), atol=ATOL)


@pytest.mark.parametrize("stride", [0, 61])
def test_stride_zero_and_largest_match_pytorch(fp32, torch_minilm, stride):
    text = LONG[:400]  # about 100 tokens: 2 windows at stride 0, ~40 at stride 61
    merged, cls, _ = torch_merged(torch_minilm, text, 64, stride)
    tokens = fp32.embed_tokens(text, layers=[0, 3, -1], max_length=64, overflow="chunk", stride=stride)[0]
    np.testing.assert_allclose(tokens, merged[[0, 3, 6]], atol=ATOL)
    np.testing.assert_allclose(fp32.embed(text, pool="cls", max_length=64, overflow="chunk", stride=stride)[0], cls, atol=ATOL)


@pytest.mark.parametrize("stride", [-1, 62, 100, 1.5, True, "8"])
def test_bad_stride_is_an_error_naming_the_allowed_range(fp32, stride):
    with pytest.raises(InputError, match=r"stride must be an int from 0 to 61 \(windows hold 62 tokens"):
        fp32.embed(LONG[:600], max_length=64, overflow="chunk", stride=stride)


def test_overflow_choices_and_their_errors(fp32):
    with pytest.raises(InputError, match="stride applies to overflow='chunk' only"):
        fp32.embed(SHORT, stride=8)
    with pytest.raises(InputError, match="pass overflow or truncate, not both"):
        fp32.embed(SHORT, overflow="chunk", truncate=True)
    with pytest.raises(InputError, match="overflow must be one of 'truncate', 'error', 'chunk'"):
        fp32.embed(SHORT, overflow="split")
    with pytest.raises(InputError, match="more than max_length 64"):
        fp32.embed(LONG[:600], max_length=64, overflow="error")
    np.testing.assert_array_equal(
        fp32.embed(LONG[:600], max_length=64, overflow="truncate"), fp32.embed(LONG[:600], max_length=64, truncate=True)
    )


def test_spans_anywhere_in_a_long_document_match_tokens_pooled_by_hand(fp32, long_doc, reference):
    merged, _, offsets = reference
    late = long_doc.rindex("the ")  # a word far beyond the first window
    spans = [(0, 12), (late, late + 3), (late - 40, late + 3)]
    for pool in ("mean", "max", "first"):
        got = fp32.embed_spans([long_doc, SHORT], [spans, []], pool=pool)
        assert got[1].shape == (0, 7, 384)
        for (start, end), vector in zip(spans, got[0]):
            rows = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
            chosen = merged[:, rows]
            want = {"mean": chosen.mean(1), "max": chosen.max(1), "first": chosen[:, 0]}[pool]
            np.testing.assert_allclose(vector, want, atol=ATOL, err_msg=f"{pool} {start, end}")


def test_span_covering_no_token_names_the_text_and_span(fp32):
    text = "two  words"
    with pytest.raises(InputError, match=r"span \(3, 5\) of text 1 'two  words' covers no token"):
        fp32.embed_spans([SHORT, text], [[(0, 1)], [(3, 5)]])
    with pytest.raises(InputError, match=r"span \(8, 20\) of text 0"):
        fp32.embed_spans(text, [[(8, 20)]])


def test_token_offsets_align_embed_tokens_rows_with_characters_and_words(fp32, long_doc):
    for kwargs, count in (({"overflow": "truncate"}, 512), ({"overflow": "chunk", "stride": 64}, None)):
        alignment = fp32.token_offsets([long_doc], **kwargs)[0]
        rows = fp32.embed_tokens(long_doc, layers=-1, **kwargs)[0]
        assert len(alignment.offsets) == len(alignment.word_ids) == rows.shape[1] == (count or rows.shape[1])
        assert alignment.word_ids[0] == alignment.word_ids[-1] == -1 and (alignment.word_ids[1:-1] >= 0).all()
        start, end = alignment.offsets[-2]
        assert long_doc[start:end].strip()
        if count is None:  # the whole text: the last row before [SEP] is the text's last token
            assert end == len(long_doc.rstrip()) and rows.shape[1] > 2000


def test_merge_rules_on_random_rows_whatever_order_the_placements_list_rows_in(fp32, long_doc):
    """The pooled merges equal the rule applied by hand in float64 (a token's rows averaged over the
    windows holding it, then pooled), with rows given as runs (sliced) or as reversed index arrays."""
    from dataclasses import replace

    from layerwise.runtime.windows import merge, split

    windows = split(fp32.tokenizer, [long_doc, SHORT, long_doc[:900]], 64, 16)
    rng = np.random.default_rng(0)
    per_window = [rng.normal(size=(3, len(ids), 8)).astype(np.float32) for ids in windows.tokenized.ids]
    sums = [np.zeros((3, n, 8)) for n in windows.output_lengths]
    counts = [np.zeros(n) for n in windows.output_lengths]
    for place, rows in zip(windows.placements, per_window):
        for source, target in zip(place.source, place.target):
            sums[place.text][:, target] += rows[:, source]
            counts[place.text][target] += 1
    merged = [s / c[None, :, None] for s, c in zip(sums, counts)]
    assert all((c > 0).all() for c in counts) and max(c.max() for c in counts) > 1  # every row covered, some twice
    reversed_rows = replace(windows, placements=[replace(p, source=p.source[::-1], target=p.target[::-1]) for p in windows.placements])
    for case in (windows, reversed_rows):
        np.testing.assert_allclose(merge(case, per_window, "mean"), np.stack([m.mean(axis=1) for m in merged]), atol=1e-5)
        np.testing.assert_allclose(merge(case, per_window, "max"), np.stack([m.max(axis=1) for m in merged]), atol=1e-5)
        for got, want in zip(merge(case, per_window, "none"), merged):
            np.testing.assert_allclose(got, want, atol=1e-5)
