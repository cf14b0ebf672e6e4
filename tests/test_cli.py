"""The layerwise command: exit codes, output files and error lines."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from layerwise.cli import main


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "layerwise.cli", *args], capture_output=True, text=True, input=stdin, timeout=600)


def test_export_then_inspect_prints_the_parity_table(tmp_path, tiny_bert):
    out = tmp_path / "bundle"
    result = _cli("-q", "export", str(tiny_bert), "--out", str(out), "--variants", "fp32,fused")
    assert result.returncode == 0, result.stderr
    assert "| fused | 1 |" in result.stdout and "| variant | layer | max abs diff |" in result.stdout
    shown = _cli("inspect", str(out))
    assert shown.returncode == 0 and "model    bert BertModel: 1 layers, hidden 64, max length 128" in shown.stdout
    assert "inputs   input_ids (ids), attention_mask (mask), token_type_ids (type_ids)" in shown.stdout


def test_embed_arguments_to_json_on_stdout(tiny_bundle, capsys):
    assert main(["embed", str(tiny_bundle), "one text", "another", "--layers", "0,-1", "--pool", "cls", "--provider", "cpu"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["layers"] == [0, 1] and np.array(payload["embeddings"]).shape == (2, 2, 64)


def test_embed_stdin_lines_to_npy(tiny_bundle, tmp_path):
    out = tmp_path / "vectors.npy"
    result = _cli("embed", str(tiny_bundle), "--layers", "-1", "--combine", "mean", "--normalize", "--output", str(out), stdin="first line\nsecond line\n")
    assert result.returncode == 0, result.stderr
    vectors = np.load(out)
    assert vectors.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_jsonl_input_to_jsonl_and_tokens_to_npz(tiny_bundle, tmp_path, monkeypatch):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "alpha beta"}\n{"text": "gamma", "id": 7}\n')
    assert main(["embed", str(tiny_bundle), "--input", str(source), "--output", str(tmp_path / "o.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1] and np.array(rows[0]["embedding"]).shape == (2, 64)
    assert main(["embed", str(tiny_bundle), "--input", str(source), "--pool", "none", "--output", str(tmp_path / "t.npz")]) == 0
    saved = np.load(tmp_path / "t.npz")
    assert saved["lengths"].tolist() == [4, 3] and saved["layer_1"].shape == (7, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["embed", "/no/bundle", "x"], "error: bundle folder '/no/bundle' does not exist"),
        (["embed", "{bundle}", "x", "--layers", "5"], "error: layer 5 does not exist"),
        (["embed", "{bundle}", "x", "--pool", "none", "--output", "o.npy"], "error: per-token output (--pool none) has one array per text: write .npz or .jsonl"),
        (["embed", "{bundle}", "x", "--provider", "cuda"], "error: provider='cuda' was requested"),
        (["embed", "{bundle}", "--input", "missing.txt"], "error: --input 'missing.txt' does not exist"),
        (["embed", "{bundle}", "x", "--no-truncate", "--overflow", "chunk"], "error: --no-truncate is --overflow error: pass one of them"),
        (["embed", "{bundle}", "x", "--stride", "8"], 'error: stride applies to overflow="chunk" only'),
        (["embed", "{bundle}", "x", "--overflow", "chunk", "--stride", "500"], "error: stride must be an int from 0 to 125"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tiny_bundle, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([a.replace("{bundle}", str(tiny_bundle)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_bad_jsonl_names_the_line(tiny_bundle, tmp_path, capsys):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    assert main(["embed", str(tiny_bundle), "--input", str(source)]) == 2
    assert "bad.jsonl line 2: the text field 'text' is missing; fix the row\n" in capsys.readouterr().err


def test_negative_layer_lists_and_jsonl_on_stdin_work_as_the_readme_shows(tiny_bundle, tmp_path):
    out = tmp_path / "feats.npy"
    result = _cli("embed", str(tiny_bundle), "--input", "-", "--input-format", "jsonl", "--layers", "-2,-1", "--combine", "concat",
                  "--output", str(out), stdin='{"text": "a"}\n{"text": "b c"}\n')  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (2, 128)
    tokens = _cli("embed", str(tiny_bundle), "--input", "-", "--input-format", "jsonl", "--pool", "none", "--layers", "-1", stdin='{"text": "a"}\n')
    assert np.array(json.loads(tokens.stdout)["embeddings"][0]).shape == (1, 3, 64)  # [CLS] a [SEP], not the JSON text


def test_an_unwritable_output_file_is_one_line_with_exit_status_1(tiny_bundle, capsys):
    assert main(["embed", str(tiny_bundle), "x", "--output", "/proc/nope/out.npy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


LONG_TEXT = " ".join(f"token{i % 37} and layer {i} of the encoder." for i in range(60))  # ~700 tokens: 6+ windows of 128


def test_embed_overflow_chunk_embeds_long_texts_whole_as_the_runtime_does(tiny_bundle, tmp_path):
    import layerwise

    source = tmp_path / "in.txt"
    source.write_text(f"{LONG_TEXT}\nshort one\n")
    common = ["--input", str(source), "--layers", "0,-1", "--overflow", "chunk", "--stride", "16", "--provider", "cpu", "--threads", "1"]
    pooled, tokens = tmp_path / "pooled.npy", tmp_path / "tokens.npz"
    for extra in (["--output", str(pooled)], ["--pool", "none", "--output", str(tokens)]):
        result = _cli("embed", str(tiny_bundle), *common, *extra)
        assert result.returncode == 0, result.stderr
    encoder = layerwise.load(tiny_bundle, provider="cpu", threads=1)
    texts = [LONG_TEXT, "short one"]
    want = encoder.embed(texts, layers=[0, -1], overflow="chunk", stride=16)
    assert encoder.last_stats.split == 1 and encoder.last_stats.windows > 5
    np.testing.assert_array_equal(np.load(pooled), want)
    saved, want_tokens = np.load(tokens), encoder.embed_tokens(texts, layers=[0, -1], overflow="chunk", stride=16)
    assert saved["lengths"].tolist() == [t.shape[1] for t in want_tokens] and saved["lengths"][0] > 600
    np.testing.assert_array_equal(saved["layer_1"], np.concatenate([t[1] for t in want_tokens]))
