"""``layerwise extract`` (local engine): Parquet read back by pyarrow equals ``Encoder.embed`` row
for row; an interrupted run resumes without duplicates; bad inputs fail naming file and row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import layerwise
from layerwise.cli import main
from layerwise.extract import local

from .extract_helpers import layer, read_output, sentences, write_jsonl


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two JSONL files and one Parquet file of real sentences (one text longer than max length 16)."""
    folder = tmp_path_factory.mktemp("corpus")
    texts = sentences(60)
    write_jsonl(folder / "a.jsonl", texts[:25])
    write_jsonl(folder / "b.jsonl", texts[25:40], first_id=25)
    pq.write_table(pa.table({"doc": [f"d{i}" for i in range(40, 60)], "text": texts[40:]}), folder / "c.parquet", row_group_size=7)
    return folder, texts


def extract(bundle: Path, source: Path | str, out: Path, *flags: str) -> int:
    return main(["-q", "extract", str(bundle), "--input", str(source), "--output", str(out), "--variant", "fp32", *flags])


def test_extract_matches_encoder_row_for_row_across_jsonl_and_parquet(minilm_bundle, corpus, tmp_path):
    folder, texts = corpus
    out = tmp_path / "out"
    assert extract(minilm_bundle, folder, out, "--id-column", "doc", "--layers", "0,-1", "--rows-per-part", "9", "--max-length", "16") == 0
    table, meta = read_output(out)
    encoder = layerwise.load(minilm_bundle, variant="fp32")
    want = encoder.embed(texts, layers=[0, -1], max_length=16)
    full = encoder.tokenize(texts).full_lengths
    assert table.column("row").to_pylist() == list(range(60))
    assert table.column("doc").to_pylist() == [f"d{i}" for i in range(60)]
    assert table.schema.field("layer_6").type == pa.list_(pa.float32(), 384)
    np.testing.assert_allclose(layer(table, "layer_0"), want[:, 0], atol=1e-5)
    np.testing.assert_allclose(layer(table, "layer_6"), want[:, 1], atol=1e-5)
    assert table.column("truncated").to_pylist() == [n > 16 for n in full] and 0 < sum(n > 16 for n in full) < 60
    assert table.column("tokens").to_pylist() == [min(n, 16) for n in full]
    assert meta["variant"] == "fp32" and meta["layers"] == [0, 6] and meta["pool"] == "mean" and len(meta["bundle_sha256"]) == 64


def test_interrupted_run_says_so_in_one_line_and_resumes_computing_only_missing_rows(minilm_bundle, tmp_path, monkeypatch, capsys):
    texts = sentences(40)
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "out"
    real, calls = local.embed_batch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises, in the middle of the third part
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "ROW_GROUP", 5)
    monkeypatch.setattr(local, "embed_batch", interrupted)
    assert extract(minilm_bundle, source, out, "--layers", "-1", "--rows-per-part", "10") == 130  # as a shell reports Ctrl-C
    assert capsys.readouterr().err == "interrupted: the parts written so far are kept; rerun the same command to compute only the rest\n"
    first = sorted(p.name for p in out.glob("part-*.parquet"))
    assert len(first) == 1 and not list(out.glob(".part-*"))  # one whole part; the half-written one was removed
    calls.clear()
    monkeypatch.setattr(local, "embed_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert extract(minilm_bundle, source, out, "--layers", "-1", "--rows-per-part", "10") == 0
    assert len(calls) == 6  # three missing parts of two row groups: the first part was not recomputed
    assert set(first) <= {p.name for p in out.glob("part-*.parquet")}
    table, _ = read_output(out)
    assert table.column("row").to_pylist() == list(range(40))
    want = layerwise.load(minilm_bundle, variant="fp32").embed(texts, layers=-1)
    np.testing.assert_allclose(layer(table, "layer_6"), want[:, 0], atol=1e-5)


def test_rerun_after_a_killed_run_removes_its_temp_file_and_fills_in(minilm_bundle, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(12))
    out = tmp_path / "out"
    assert extract(minilm_bundle, source, out, "--layers", "-1", "--rows-per-part", "4") == 0
    parts = sorted(out.glob("part-*.parquet"))
    parts[1].rename(out / f".{parts[1].name}.partial-x1y2")  # as a run killed while writing that part leaves it
    assert extract(minilm_bundle, source, out, "--layers", "-1", "--rows-per-part", "4") == 0
    table, _ = read_output(out)
    assert table.column("row").to_pylist() == list(range(12)) and not list(out.glob(".part-*"))


def test_rerun_with_other_arguments_is_refused(minilm_bundle, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(3))
    out = tmp_path / "out"
    assert extract(minilm_bundle, source, out, "--layers", "-1") == 0
    assert extract(minilm_bundle, source, out, "--layers", "0") == 2
    assert "holds a run with other arguments or inputs (layers: [6] then, [0] now): pass a new --output" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "bad.jsonl",
            '{"text": "fine"}\n{"body": "no text"}\n',
            "bad.jsonl line 2: the text field 'text' is missing; fix the row or pass --text-column",
        ),
        ("bad.jsonl", '{"text": "fine"}\n\n{"text": 7}\n', "bad.jsonl line 3: the text field 'text' is int, not a string"),
        ("bad.jsonl", '{"text": "fine"}\nnot json\n', "bad.jsonl line 2 is not valid JSON"),
        ("bad.txt", "one\n\nthree\n", "bad.txt line 2 is empty: a text file holds one text per line"),
        ("empty.txt", "", "holds no texts (1 file(s), all empty)"),
        ("bad.csv", "a,b\n", "bad.csv' has an unknown suffix: use .jsonl, .ndjson, .parquet, .pq, .txt, .text"),
    ],
)
def test_bad_input_names_file_and_row_and_writes_nothing(minilm_bundle, tmp_path, capsys, name, content, message):
    source = tmp_path / name
    source.write_text(content)
    out = tmp_path / "out"
    assert extract(minilm_bundle, source, out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_parquet_null_text_names_the_row(minilm_bundle, tmp_path, capsys):
    pq.write_table(pa.table({"text": ["a", "b", None, "d"]}), tmp_path / "in.parquet", row_group_size=2)
    assert extract(minilm_bundle, tmp_path / "in.parquet", tmp_path / "out") == 2
    assert "in.parquet row 2 (0-based): column 'text' is null; fill or drop the row" in capsys.readouterr().err


def test_plain_text_and_combined_column(minilm_bundle, tmp_path):
    texts = sentences(5)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    assert extract(minilm_bundle, tmp_path / "in.txt", tmp_path / "out", "--layers", "-2,-1", "--combine", "concat", "--normalize") == 0
    table, meta = read_output(tmp_path / "out")
    want = layerwise.load(minilm_bundle, variant="fp32").embed(texts, layers=[-2, -1], combine="concat", normalize=True)
    assert table.column_names == ["row", "tokens", "truncated", "embedding"] and meta["combine"] == "concat"
    np.testing.assert_allclose(layer(table, "embedding"), want, atol=1e-5)
    assert json.loads((tmp_path / "out" / "_layerwise_extract.json").read_text())["rows"] == 5


def test_bad_option_fails_before_the_output_folder_is_created(minilm_bundle, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(2))
    assert extract(minilm_bundle, source, tmp_path / "out", "--max-length", "9999") == 2
    assert "--max-length must be an int from 2 to the model maximum 512, got 9999" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_overflow_chunk_embeds_whole_texts_as_encoder_embed_does(minilm_bundle, corpus, tmp_path, capsys):
    folder, texts = corpus
    out = tmp_path / "out"
    flags = ("--layers", "0,-1", "--max-length", "16", "--overflow", "chunk", "--stride", "4", "--rows-per-part", "20")
    assert extract(minilm_bundle, folder / "a.jsonl", out, *flags) == 0
    table, meta = read_output(out)
    encoder = layerwise.load(minilm_bundle, variant="fp32")
    want = encoder.embed(texts[:25], layers=[0, -1], max_length=16, overflow="chunk", stride=4)
    assert encoder.last_stats.split > 0  # some texts really were split into windows
    np.testing.assert_allclose(layer(table, "layer_6"), want[:, 1], atol=1e-5)
    truncated = encoder.embed(texts[:25], layers=[-1], max_length=16, truncate=True)[:, 0]
    assert np.abs(layer(table, "layer_6") - truncated).max() > 1e-2  # not the truncated vectors
    assert table.column("tokens").to_pylist() == list(encoder.tokenize(texts[:25]).full_lengths)
    assert not any(table.column("truncated").to_pylist())
    assert meta["overflow"] == "chunk" and meta["stride"] == 4

    capsys.readouterr()
    assert extract(minilm_bundle, folder / "a.jsonl", out, "--layers", "0,-1", "--max-length", "16", "--rows-per-part", "20") == 2
    assert "(overflow: 'chunk' then, 'truncate' now; stride: 4 then, None now)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--stride", "4"), "--stride applies to --overflow chunk only"),
        (("--overflow", "chunk", "--max-length", "16", "--stride", "14"), "stride must be an int from 0 to 13"),
        (("--overflow", "chunk", "--stride", "-1"), "stride must be an int from 0 to 509"),
    ],
)
def test_bad_overflow_options_fail_before_the_output_exists(minilm_bundle, corpus, tmp_path, capsys, flags, message):
    folder, _ = corpus
    assert extract(minilm_bundle, folder / "a.jsonl", tmp_path / "out", *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_second_run_on_a_locked_folder_stops_at_once_and_no_lock_file_is_left(tiny_bundle, tmp_path, capsys):
    import fcntl
    import os

    source = tmp_path / "in.txt"
    source.write_text("one text\nanother\n")
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)  # as a run in progress holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert extract(tiny_bundle, source, out) == 2
        assert (
            capsys.readouterr().err
            == f"error: another layerwise extract is writing to {str(out)!r}; wait for it or pass another --output\n"
        )
    finally:
        os.close(fd)
    assert extract(tiny_bundle, source, out) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == ["_layerwise_extract.json"]
