"""The layerwise command: exit codes, output files and error lines."""

from __future__ import annotations

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
    result = _cli(
        "embed",
        str(tiny_bundle),
        "--layers",
        "-1",
        "--combine",
        "mean",
        "--normalize",
        "--output",
        str(out),
        stdin="first line\nsecond line\n",
    )
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
        (
            ["embed", "{bundle}", "x", "--pool", "none", "--output", "o.npy"],
            "error: per-token output (--pool none) has one array per text: write .npz or .jsonl",
        ),
        (["embed", "{bundle}", "x", "--provider", "cuda"], "error: provider='cuda' was requested"),
        (["embed", "{bundle}", "--input", "missing.txt"], "error: --input 'missing.txt' does not exist"),
        (["embed", "{bundle}", "x", "--no-truncate", "--overflow", "chunk"], "error: --no-truncate is --overflow error: pass one of them"),
        (
            ["embed", "{bundle}", "x", "--stride", "8"],
            "error: --stride applies to --overflow chunk only (the overlap of its windows): pass --overflow chunk with it",
        ),
        (
            ["embed", "{bundle}", "x", "--overflow", "chunk", "--stride", "500"],
            "error: --stride must be an int from 0 to 125 (windows hold 126 tokens besides the special ones, and consecutive windows must "
            "advance), got 500; pass a smaller --stride or a larger --max-length\n",
        ),
        (["embed", "{bundle}", "x", "--max-length", "1"], "error: --max-length must be an int from 2 to the model maximum 128, got 1\n"),
        (["embed", "{bundle}", "x", "--batch-size", "0"], "error: --batch-size must be a positive int, got 0\n"),
        (
            ["verify", "{bundle}", "--texts", "0"],
            "error: --texts is how many reference texts to check, at least 1, got 0; leave it out to check them all\n",
        ),
        (
            ["verify", "{bundle}", "--texts", "-3"],
            "error: --texts is how many reference texts to check, at least 1, got -3; leave it out to check them all\n",
        ),
        (
            ["bench", "{bundle}", "--seq-lens", "16,1024"],
            "error: --seq-lens 1024: above the model maximum 128 tokens; pass lengths from 1 to 128\n",
        ),
        (
            ["inspect", "{bundle}/model.fp32.onnx"],
            "error: '{bundle}/model.fp32.onnx' is a file; pass the bundle folder that holds manifest.json instead: '{bundle}'\n",
        ),
        (
            ["triton", "{bundle}", "--out", "{bundle}/manifest.json"],
            "error: --out '{bundle}/manifest.json': '{bundle}/manifest.json' is a file, not a folder; pass a new or existing folder for "
            "the model repository\n",
        ),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tiny_bundle, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main([a.replace("{bundle}", str(tiny_bundle)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.replace("{bundle}", str(tiny_bundle))) and err.count("\n") == 1


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
    tokens = _cli(
        "embed", str(tiny_bundle), "--input", "-", "--input-format", "jsonl", "--pool", "none", "--layers", "-1", stdin='{"text": "a"}\n'
    )
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


def test_empty_arguments_are_texts_so_rows_line_up_with_the_arguments(tiny_bundle, tmp_path):
    import layerwise

    out = tmp_path / "rows.npy"
    result = _cli("embed", str(tiny_bundle), "", "a", "", "--layers", "-1", "--provider", "cpu", "--output", str(out))
    assert result.returncode == 0, result.stderr
    want = layerwise.load(tiny_bundle, provider="cpu").embed(["", "a", ""], layers=-1)  # "" is [CLS] [SEP], as transformers encodes it
    np.testing.assert_allclose(np.load(out), want, atol=1e-6)
    alone = _cli("embed", str(tiny_bundle), "", "--layers", "-1", "--provider", "cpu", stdin="not this\nnor this\n")
    assert alone.returncode == 0, alone.stderr
    np.testing.assert_allclose(np.array(json.loads(alone.stdout)["embeddings"]), want[:1], atol=1e-6)  # stdin is not read


def test_an_empty_input_file_is_refused_and_writes_nothing(tiny_bundle, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    for extra in ([], ["--pool", "none", "--output", str(tmp_path / "t.npz")]):
        assert main(["embed", str(tiny_bundle), "--input", str(empty), *extra]) == 2
        assert capsys.readouterr().err == f"error: --input '{empty}' holds no texts: give at least one line (or JSONL record) to embed\n"
    assert not (tmp_path / "t.npz").exists()


def _many_texts(count: int, long_at: int) -> list[str]:
    texts = [f"sentence number {i} about layer {i % 7}" for i in range(count)]
    texts[long_at] = LONG_TEXT
    return texts


def test_more_than_a_chunk_of_texts_is_refused_or_warned_about_by_its_index_among_all(tiny_bundle, tmp_path, monkeypatch, capsys, caplog):
    """More than 1,024 texts on a terminal run in chunks with a progress bar; the long text 1049
    is named as text 1049 of 1100, and --no-truncate refuses before any chunk runs."""
    import layerwise

    texts = _many_texts(1100, long_at=1049)
    source, out = tmp_path / "many.txt", tmp_path / "many.npy"
    source.write_text("\n".join(texts) + "\n")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    common = ["embed", str(tiny_bundle), "--input", str(source), "--layers", "-1", "--provider", "cpu", "--output", str(out)]
    from tokenizers import Tokenizer

    tokens = len(Tokenizer.from_file(str(tiny_bundle / "tokenizer.json")).encode(LONG_TEXT).ids)
    assert main([*common, "--overflow", "error"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: text 1049 has {tokens} tokens, more than --max-length 128 (1 of 1100 text(s) too long); "
        "pass --overflow truncate to cut them, --overflow chunk to embed them whole as windows, or shorten them\n"
    )  # and no progress bar: nothing ran
    assert not out.exists()
    assert main(common) == 0
    assert "1024/1100 texts" in capsys.readouterr().err
    assert caplog.messages == [
        "warning: 1 of 1100 texts were longer than 128 tokens and were cut (first: text 1049); "
        "--overflow chunk embeds them whole, --overflow error refuses them, --overflow truncate cuts without this warning"
    ]
    want = layerwise.load(tiny_bundle, provider="cpu").embed(texts, layers=-1, truncate=True)
    np.testing.assert_allclose(np.load(out), want, atol=1e-5)


def test_an_error_inside_a_later_chunk_names_the_text_among_all(monkeypatch):
    from layerwise.commands.embed import CHUNK, _in_chunks
    from layerwise.runtime.errors import InputError

    def embed(start: int, end: int) -> list[int]:
        if start > 0:
            raise InputError("{text} 'x' cannot be encoded; fix {text}", index=3)
        return list(range(start, end))

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with pytest.raises(InputError) as caught:
        _in_chunks(embed, CHUNK + 10)
    assert caught.value.index == CHUNK + 3  # a field, not a rewritten message
    assert str(caught.value) == f"text {CHUNK + 3} 'x' cannot be encoded; fix text {CHUNK + 3}"


def test_inspect_accepts_the_manifest_path(tiny_bundle, capsys):
    assert main(["inspect", str(tiny_bundle / "manifest.json")]) == 0
    assert capsys.readouterr().out.startswith(f"bundle   {tiny_bundle}  (format layerwise-bundle v1")


def test_a_text_column_with_plain_text_input_is_refused_not_ignored(tiny_bundle, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("one text\nanother\n")
    args = ["extract", str(tiny_bundle), "--input", str(source), "--output", str(tmp_path / "out"), "--text-column", "body"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {source} is plain text (one text a line), which has no columns; leave out --text-column body or use JSONL or Parquet\n"
    )
    assert not (tmp_path / "out").exists()


def test_extract_without_pyarrow_names_the_pip_install_that_fixes_it(tiny_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if the extract extra were not installed
    assert main(["extract", str(tiny_bundle), "--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    assert (
        capsys.readouterr().err
        == "error: `layerwise extract` needs the extract extra (pyarrow is missing): pip install 'layerwise[extract]'\n"
    )


def test_serve_refuses_ray_only_flags_without_ray(tiny_bundle, capsys):
    """--replicas, --autoscale and --ray-address mean nothing to the plain server: an error, not ignored."""
    assert main(["serve", str(tiny_bundle), "--replicas", "3", "--ray-address", "auto"]) == 2
    assert capsys.readouterr().err == (
        "error: --replicas, --ray-address only apply with --ray; add --ray to serve on Ray Serve, or leave them out\n"
    )
