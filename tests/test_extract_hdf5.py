"""``layerwise extract --pool none --output X.hdf5``: the layout structural-probes and AllenNLP's elmo
command read (``f[str(row)]``, [layers, tokens, hidden]), equal to ``Encoder.embed_tokens``; words
pooled by offsets; a kill -9 at any point, then a rerun, gives every row exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import layerwise
from layerwise.cli import main
from layerwise.exporter.texts import corpus_sentences
from layerwise.extract import hdf5

from .extract_helpers import load_like_structural_probes, sentences, write_jsonl
from .test_interrupted_work import _kill_when


def extract(bundle: Path, source: Path, out: Path, *flags: str) -> int:
    return main(["-q", "extract", str(bundle), "--input", str(source), "--output", str(out), "--variant", "fp32", "--pool", "none", *flags])


def test_hdf5_read_as_structural_probes_reads_it_equals_embed_tokens(minilm_bundle, tmp_path):
    texts = corpus_sentences(500, skip=1000)  # real sentences of Python's reference manual
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "tokens.hdf5"
    assert extract(minilm_bundle, source, out, "--layers", "0,3,-1", "--rows-per-part", "128", "--id-column", "doc") == 0
    encoder = layerwise.load(minilm_bundle, variant="fp32")
    want = encoder.embed_tokens(texts, layers=[0, 3, -1])
    for position in range(3):  # structural-probes' model_layer picks one of the stored layers
        got = load_like_structural_probes(out, position)
        assert len(got) == 500
        assert max(float(np.abs(g - w[position]).max()) for g, w in zip(got, want)) <= 1e-6
    alignments = encoder.token_offsets(texts)
    with h5py.File(out, "r") as f:
        assert sorted(f.keys(), key=int) == [str(i) for i in range(500)] and f["7"].dtype == np.float32
        assert f["7"].attrs["id"] == "d7" and not f["7"].attrs["truncated"]
        assert list(f["7"].attrs["tokens"]) == encoder.tokenizer.tokens([texts[7]])[0].tokens
        np.testing.assert_array_equal(f["7"].attrs["offsets"], alignments[7].offsets)
        meta = json.loads(f.attrs["layerwise"])
    assert meta["layers"] == [0, 3, 6] and meta["words"] is False and meta["dtype"] == "float32" and meta["rows"] == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "tokens.hdf5"]  # the parts folder is gone


def test_words_are_the_mean_of_their_subword_rows_by_offsets(minilm_bundle, tmp_path):
    texts = ["Tokenization isn't trivial, New-York-style.", "Hello   world", "a \u200b b"]  # \u200b: a word with no token
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "words.h5"
    assert extract(minilm_bundle, source, out, "--layers", "-1", "--words", "--dtype", "float16") == 0
    encoder = layerwise.load(minilm_bundle, variant="fp32")
    states = encoder.embed_tokens(texts, layers=[-1])
    with h5py.File(out, "r") as f:
        words = [list(f[str(i)].attrs["words"]) for i in range(3)]
        assert words == [["Tokenization", "isn't", "trivial,", "New-York-style."], ["Hello", "world"], ["a", "b"]]
        assert f["0"].shape == (1, 4, 384) and f["0"].dtype == np.float16
        token_word = f["0"].attrs["token_word"]
        tokens = list(f["0"].attrs["tokens"])
        np.testing.assert_array_equal(f["1"].attrs["word_offsets"], [[0, 5], [8, 13]])
        for i in range(3):
            tw = f[str(i)].attrs["token_word"]
            want = np.stack([states[i][0, tw == w].mean(axis=0) for w in range(len(words[i]))])
            np.testing.assert_allclose(f[str(i)][0].astype(np.float32), want, rtol=2e-3, atol=2e-3)
    assert tokens[:4] == ["[CLS]", "token", "##ization", "isn"] and list(token_word[:4]) == [-1, 0, 0, 1] and token_word[-1] == -1


def test_sigkilled_hdf5_extract_then_rerun_gives_every_row_exactly_once(minilm_bundle, tmp_path):
    texts = corpus_sentences(500, skip=1000)  # real sentences of Python's reference manual
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "tokens.hdf5"
    args = ["extract", str(minilm_bundle), "--input", str(source), "--output", str(out), "--pool", "none", "--layers", "-1"]
    args += ["--variant", "fp32", "--rows-per-part", "25"]
    run = subprocess.Popen([sys.executable, "-m", "layerwise.cli", "-q", *args], stderr=subprocess.PIPE, text=True)
    folder = hdf5.parts_folder(out)
    _kill_when(run, lambda: len(list(folder.glob("part-*.h5"))) >= 2)  # mid-way: parts written, others not
    assert not out.exists()
    parts = len(list(folder.glob("part-*.h5")))
    assert 2 <= parts < 20
    assert main(["-q", *args]) == 0
    got = load_like_structural_probes(out, 0)
    want = layerwise.load(minilm_bundle, variant="fp32").embed_tokens(texts, layers=[-1])
    assert len(got) == 500 and max(float(np.abs(g - w[0]).max()) for g, w in zip(got, want)) <= 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "tokens.hdf5"]


def test_a_kill_during_the_final_copy_or_before_the_clean_up_is_finished_by_the_rerun(tiny_bundle, tmp_path, monkeypatch):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(30))
    out = tmp_path / "t.hdf5"
    real_merge = hdf5.merge

    def killed_while_copying(folder: Path, target: Path, metadata: dict) -> None:
        with hdf5.atomic_h5(target) as f:
            f.create_dataset("0", data=np.zeros(3))
            raise KeyboardInterrupt

    monkeypatch.setattr(hdf5, "merge", killed_while_copying)
    assert extract(tiny_bundle, source, out, "--rows-per-part", "10") == 130
    assert not out.exists() and len(list(hdf5.parts_folder(out).glob("part-*.h5"))) == 3
    (tmp_path / ".t.hdf5.partial-stale1").write_bytes(b"half a file")  # what a kill -9 (no clean-up) leaves
    monkeypatch.setattr(hdf5, "merge", real_merge)
    monkeypatch.setattr(hdf5.shutil, "rmtree", lambda path: None)  # killed after the rename, before the clean-up
    assert extract(tiny_bundle, source, out, "--rows-per-part", "10") == 0
    assert hdf5.parts_folder(out).exists()
    monkeypatch.undo()
    assert extract(tiny_bundle, source, out, "--rows-per-part", "10") == 0  # complete already: only cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "t.hdf5"]
    assert sorted(int(k) for k in h5py.File(out, "r").keys()) == list(range(30))


@pytest.mark.parametrize(
    ("output", "flags", "message"),
    [
        ("out", ("--pool", "none"), "--pool none writes per-token vectors to one HDF5 file: give an --output ending in .hdf5 or .h5, not"),
        ("t.hdf5", ("--pool", "mean"), "an HDF5 --output holds per-token vectors: add --pool none (pooled vectors go to a Parquet folder)"),
        ("t.hdf5", ("--pool", "none", "--combine", "mean"), "--combine does not apply to an HDF5 --output: it keeps every chosen layer"),
        ("out", ("--words",), "--words applies to per-token output only: add --pool none and an --output ending in .hdf5"),
        ("out", ("--dtype", "float16"), "--dtype applies to per-token output only: add --pool none and an --output ending in .hdf5"),
    ],
)
def test_flags_that_do_not_fit_the_output_fail_naming_the_fix_and_write_nothing(tiny_bundle, tmp_path, capsys, output, flags, message):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(3))
    status = main(["-q", "extract", str(tiny_bundle), "--input", str(source), "--output", str(tmp_path / output), *flags])
    assert status == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_rerun_with_other_arguments_is_refused_and_a_finished_file_is_left_alone(tiny_bundle, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(4))
    out = tmp_path / "t.h5"
    assert extract(tiny_bundle, source, out) == 0
    before = out.stat().st_mtime_ns
    assert extract(tiny_bundle, source, out, "--words") == 2
    err = capsys.readouterr().err
    assert "holds a finished run with other arguments or inputs (words: False then, True now): pass a new --output" in err
    assert extract(tiny_bundle, source, out) == 0 and out.stat().st_mtime_ns == before
