"""BERTScore from a bundle: the numbers of the bert-score package 0.3.13 for the same model and layer.

How each step follows the package (bert_score/score.py, utils.py):
- Texts are stripped (``sent_encode``); RoBERTa texts get a leading space (the package passes
  add_prefix_space=True to its default slow RobertaTokenizer). The bundle's tokenizer adds the
  special tokens and cuts at the model maximum (512: 510 tokens besides [CLS] and [SEP]), as the
  package cuts at ``tokenizer.model_max_length``; by default with a ScoreTruncationWarning.
- Token weights: without idf 1, and 0 for the ids of [CLS] and [SEP] (RoBERTa's <s> and </s>);
  with idf log((M + 1) / (df + 1)), df counted over the M references (every reference of every
  candidate, repeats included: the package flattens them) or over given sentences; the special
  tokens occur in all M and so weigh 0 there too.
- Matching, F1 and empty texts: runtime/greedy.py. Several references per candidate: the package
  keeps the maximum of P, of R and of F each on its own, so they may come from different references.
- Rescaling: (s - b) / (1 - b) with the layer's row of a baseline (runtime/baseline.py).

How it runs: each distinct text is tokenized once and embedded once, every asked layer in one
pass; pairs are scored in chunks of bounded memory, sorted so that pairs sharing a reference are
together; a text needed again by a later chunk is kept until then, within the same bound
(``stats.embedded_texts`` counts any text that bound made embed twice).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .baseline import Baseline, read_baseline
from .errors import InputError, UntokenizableText
from .greedy import f_measure, rescale
from .options import resolve_layers
from .pair_chunks import Progress, score_pairs
from .score_inputs import ScoreTruncationWarning, TokenEncoder, TokenTable, unique_rows

CHUNK_BYTES = 256 << 20  # token vectors of one chunk, and at most as much again kept for later chunks
PREFIX_SPACE = ("roberta",)  # model types whose slow tokenizer the package calls with add_prefix_space=True
OVERFLOWS = (None, "truncate", "error")
MAX_WORDS = 32  # compute_baseline keeps lines of fewer words (split on " "), as the package did
MAX_SENTENCES = 1_000_000  # and reads at most the first million, as the package did


@dataclass(frozen=True)
class ScoreStats:
    pairs: int  # candidate-reference pairs (every reference of every candidate)
    unique_texts: int
    embedded_texts: int  # unique_texts, or more when the memory bound made a text embed twice
    tokens: int  # tokens embedded
    chunks: int
    seconds: float


@dataclass(frozen=True)
class BERTScore:
    """Precision, recall and F1 per candidate: float32 [candidates] when ``layers`` was an int,
    [len(layers), candidates] otherwise (rows in the order asked, "all" is 0..L)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    layers: tuple[int, ...]
    hash: str  # what produced the numbers: bundle, manifest digest, variant, layers, idf, baseline
    truncated_candidates: tuple[int, ...]  # candidates cut to the model maximum
    truncated_references: tuple[int, ...]  # candidates with a reference cut to the model maximum
    stats: ScoreStats


def bertscore(
    encoder: TokenEncoder,
    candidates: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    layers: int | Sequence[int] | str,
    *,
    idf: bool | Sequence[str] = False,
    baseline: Baseline | str | Path | None = None,
    overflow: str | None = None,
    batch_size: int | None = None,
    chunk_tokens: int | None = None,
    progress: Progress | None = None,
) -> BERTScore:
    """BERTScore of each candidate against its reference (a str) or references (a list: the best is kept).

    layers: the hidden state(s) to match (0 is the embedding output, -1 the last layer; a list or
    "all" gives one row per layer, as the package's all_layers=True). idf: False, True (from the
    references) or sentences to count document frequencies in. baseline: a Baseline or a file in the
    package's format, to rescale. overflow: None cuts long texts with a ScoreTruncationWarning,
    "truncate" without, "error" raises. chunk_tokens: tokens embedded at a time (default from
    CHUNK_BYTES). progress(done, total) is called after each chunk.

    Example:
        >>> bertscore(enc, ["the cat sat"], [["a cat sat", "the dog ran"]], layers=4).f1
        array([0.93...], dtype=float32)
    """
    started = time.perf_counter()
    cands, groups = _pairs(candidates, references)
    if overflow not in OVERFLOWS:
        raise InputError(f"overflow must be None, 'truncate' or 'error' for a score, got {overflow!r}")
    info = encoder.info
    chosen = resolve_layers(layers, info.num_layers)
    needed = sorted(set(chosen))
    base = None if baseline is None else _read(baseline)
    where = "given" if isinstance(baseline, Baseline) else f"file {baseline}"
    rescale_by = None if base is None else base.rows(chosen, info.num_layers, where)
    flat_refs = [ref for group in groups for ref in group]
    starts = np.cumsum([0] + [len(group) for group in groups[:-1]])
    prefix = info.model_type in PREFIX_SPACE
    index: dict[str, int] = {}
    cand_rows = unique_rows([_prepare(t, prefix) for t in cands], index)
    ref_rows = unique_rows([_prepare(t, prefix) for t in flat_refs], index)
    table = _tokenize(encoder, list(index), cand_rows, ref_rows, starts)
    cut_cands, cut_refs = _check_lengths(table, cand_rows, ref_rows, starts, overflow)
    weights, idf_tag = _weights(encoder, table, ref_rows, idf, prefix)
    empty = table.lengths <= encoder.tokenizer.special_tokens  # the package: 2 tokens, [CLS] [SEP] alone
    pair_cands = np.repeat(cand_rows, [len(group) for group in groups])  # the candidate of each reference
    live = np.flatnonzero(~(empty[pair_cands] | empty[ref_rows]))
    budget = chunk_tokens or max(1, CHUNK_BYTES // (4 * len(needed) * info.hidden_size))
    precision, recall, counts = score_pairs(encoder, table, weights, pair_cands, ref_rows, live, needed, budget, batch_size, progress)
    positions = [needed.index(layer) for layer in chosen]
    precision, recall = precision[positions], recall[positions]
    scores = [np.maximum.reduceat(s, starts, axis=1) for s in (precision, recall, f_measure(precision, recall))]
    if rescale_by is not None:
        scores = [rescale(s, rescale_by[:, [k]]) for k, s in enumerate(scores)]
    if isinstance(layers, int):
        scores = [s[0] for s in scores]
    stats = ScoreStats(len(flat_refs), len(index), counts[0], counts[1], counts[2], time.perf_counter() - started)
    precision, recall, f1 = scores
    return BERTScore(
        precision,
        recall,
        f1,
        layers=tuple(chosen),
        hash=score_hash(encoder, chosen, idf_tag, base),
        truncated_candidates=cut_cands,
        truncated_references=cut_refs,
        stats=stats,
    )


def _pairs(candidates: Any, references: Any) -> tuple[list[str], list[list[str]]]:
    """Candidates and their reference lists, checked."""
    cands = _str_list(candidates, "candidates")
    if not isinstance(references, (list, tuple)):
        raise TypeError(f"references must be a list of str or of lists of str, got {type(references).__name__}")
    groups = [[ref] if isinstance(ref, str) else _str_list(ref, f"references[{i}]") for i, ref in enumerate(references)]
    if not cands:
        raise InputError("no candidates were given: give at least one candidate and one reference for it")
    if len(cands) != len(groups):
        raise InputError(f"{len(cands)} candidates but {len(groups)} references: give one reference (or list of them) per candidate")
    for i, group in enumerate(groups):
        if not group:
            raise InputError(f"references[{i}] is an empty list: give at least one reference for candidate {i}")
    return cands, groups


def _str_list(values: Any, name: str) -> list[str]:
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of str, got {type(values).__name__}")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(value).__name__}")
    return list(values)


def _prepare(text: str, prefix_space: bool) -> str:
    """The package's ``sent_encode`` before tokenizing: strip; RoBERTa: a leading space before a non-empty text."""
    text = text.strip()
    return " " + text if prefix_space and text else text


def _name(row: int, cand_rows: np.ndarray, ref_rows: np.ndarray, starts: np.ndarray) -> str:
    """How the caller knows the text of unique ``row``: its first candidate or reference."""
    hits = np.flatnonzero(cand_rows == row)
    if len(hits):
        return f"candidate {hits[0]}"
    flat = int(np.flatnonzero(ref_rows == row)[0])
    owner = int(np.searchsorted(starts, flat, side="right") - 1)
    single = len(starts) == len(ref_rows)
    return f"reference {owner}" if single else f"reference {flat - starts[owner]} of candidate {owner}"


def _tokenize(encoder: TokenEncoder, texts: list[str], cand_rows: np.ndarray, ref_rows: np.ndarray, starts: np.ndarray) -> TokenTable:
    try:
        return TokenTable.build(encoder, texts)
    except UntokenizableText as e:  # name the caller's text, not the distinct-text row
        raise InputError(f"{_name(e.index, cand_rows, ref_rows, starts)} {e.reason}") from e


def _check_lengths(
    table: TokenTable, cand_rows: np.ndarray, ref_rows: np.ndarray, starts: np.ndarray, overflow: str | None
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Candidates cut, and candidates with a reference cut; refused or warned about as ``overflow`` says."""
    cut = table.full_lengths > table.limit
    cut_cands = tuple(int(i) for i in np.flatnonzero(cut[cand_rows]))
    owners = np.searchsorted(starts, np.flatnonzero(cut[ref_rows]), side="right") - 1
    cut_refs = tuple(int(i) for i in np.unique(owners))
    if not cut.any() or overflow == "truncate":
        return cut_cands, cut_refs
    first = int(np.flatnonzero(cut)[0])
    name = _name(first, cand_rows, ref_rows, starts)
    if overflow == "error":
        raise InputError(
            f"{name} has {table.full_lengths[first]} tokens, more than the model maximum {table.limit} ({int(cut.sum())} distinct "
            "text(s) too long); bert-score cuts such texts: pass overflow='truncate' to score them cut, or shorten them"
        )
    warnings.warn(
        f"{len(cut_cands)} candidate(s) and the references of {len(cut_refs)} candidate(s) were longer than the model maximum of "
        f"{table.limit} tokens and were cut to it, as bert-score cuts them (first: {name}); pass overflow='truncate' to cut "
        "without this warning, or overflow='error' to refuse such texts",
        ScoreTruncationWarning,
        stacklevel=3,
    )
    return cut_cands, cut_refs


def _weights(encoder: TokenEncoder, table: TokenTable, ref_rows: np.ndarray, idf: Any, prefix: bool) -> tuple[np.ndarray, str]:
    """float32 weight per vocabulary id, and the hash's idf tag."""
    vocab = encoder.tokenizer.vocab_size
    if idf is False:
        weights = np.ones(vocab, dtype=np.float32)
        weights[encoder.tokenize([""], overflow="truncate").ids[0]] = 0  # [CLS] and [SEP]: what an empty text holds
        return weights, "_no-idf"
    if idf is True:
        return idf_weights(table, np.bincount(ref_rows, minlength=len(table.texts)), vocab), "_idf"
    if isinstance(idf, str) or not isinstance(idf, (list, tuple)) or not idf:
        raise InputError(f"idf must be False, True (from the references) or a non-empty list of sentences, got {idf!r:.80}")
    index: dict[str, int] = {}
    rows = unique_rows([_prepare(t, prefix) for t in _str_list(idf, "idf")], index)
    given = TokenTable.build(encoder, list(index))
    digest = hashlib.sha256("\n".join(idf).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return idf_weights(given, np.bincount(rows, minlength=len(index)), vocab), f"_idf-given={digest}"


def idf_weights(table: TokenTable, counts: np.ndarray, vocab: int) -> np.ndarray:
    """log((M + 1) / (df + 1)) per vocabulary id, in float32: M = counts.sum() documents, text t of ``table``
    occurring counts[t] times; df: in how many of them an id occurs (the package's ``get_idf_dict``).

    Example: texts [[101, 7, 102], [101, 102]] counted [2, 1] -> M = 3; id 7: log(4 / 3); 101: log(4 / 4) = 0; unseen: log(4).
    """
    text_of = np.repeat(np.arange(len(table.texts)), table.lengths)
    pairs = np.unique(text_of * vocab + table.ids)  # each (text, id) once
    df = np.bincount(pairs % vocab, weights=counts[pairs // vocab], minlength=vocab)
    return np.log((counts.sum() + 1) / (df + 1)).astype(np.float32)


def _read(baseline: Baseline | str | Path) -> Baseline:
    return baseline if isinstance(baseline, Baseline) else read_baseline(baseline)


def score_hash(encoder: TokenEncoder, layers: Sequence[int], idf_tag: str, baseline: Baseline | None) -> str:
    """The package's ``get_hash`` shape, pinning what layerwise runs instead of the transformers version:
    ``{bundle}_L{layers}{_idf|_no-idf|_idf-given=…}_version=layerwise-{v}(bundle={manifest sha256[:16]},variant={variant})``,
    then ``-rescaled(baseline={sha256[:16]})`` when rescaled.

    Example: all-MiniLM-L6-v2_L4_no-idf_version=layerwise-0.1.0(bundle=5f0c2a9e11d3b7a4,variant=fp32)
    """
    bundle = Path(encoder.info.bundle)
    digest = hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()[:16]
    try:
        version = metadata.version("layerwise")
    except metadata.PackageNotFoundError:
        version = "unknown"
    text = (
        f"{bundle.resolve().name}_L{','.join(str(layer) for layer in layers)}{idf_tag}"
        f"_version=layerwise-{version}(bundle={digest},variant={encoder.info.variant})"
    )
    return text if baseline is None else f"{text}-rescaled(baseline={baseline.digest[:16]})"


def baseline_corpus(lines: Sequence[str], max_sentences: int = MAX_SENTENCES) -> list[str]:
    """The package's selection: the first ``max_sentences`` lines, stripped, non-empty, fewer than 32 words."""
    kept = (line.strip() for line in lines[:max_sentences])
    return [line for line in kept if line and len(line.split(" ")) < MAX_WORDS]


def random_halves(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random halves of range(count), count // 2 rows each: (candidates, references)."""
    half = count // 2
    chosen = np.random.default_rng(seed).permutation(count)[: 2 * half]
    return chosen[:half], chosen[half:]


def compute_baseline(
    encoder: TokenEncoder,
    lines: Sequence[str],
    *,
    seed: int = 0,
    max_sentences: int = MAX_SENTENCES,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> Baseline:
    """A rescaling baseline for this bundle from a corpus, as the package made its own (runtime/baseline.py says how).

    Example:
        >>> compute_baseline(enc, Path("news.txt").read_text().splitlines()).save("minilm.tsv")
    """
    sentences = baseline_corpus(lines, max_sentences)
    if len(sentences) < 2:
        raise InputError(f"a baseline needs at least 2 non-empty lines of fewer than {MAX_WORDS} words; the corpus has {len(sentences)}")
    cand_rows, ref_rows = random_halves(len(sentences), seed)
    scores = bertscore(
        encoder,
        [sentences[i] for i in cand_rows],
        [sentences[i] for i in ref_rows],
        layers="all",
        overflow="truncate",
        batch_size=batch_size,
        progress=progress,
    )
    means = [s.mean(axis=1, dtype=np.float64) for s in (scores.precision, scores.recall, scores.f1)]
    return Baseline(np.stack(means, axis=1).astype(np.float32))
