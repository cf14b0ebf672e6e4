"""`layerwise score`, `baseline` and `maxsim`: the Python API's numbers in every output format, bad input
refused naming the fix with nothing written (on the tiny bundle; the package comparison is test_bertscore.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import layerwise
from layerwise.cli import main

CANDIDATES = ["the cat sat on the mat", "a storm is coming", "prices rose in March"]
REFERENCES = ["a cat was on the mat", "the weather turns bad", "in March, prices went up"]
OTHER = ["cats sit on mats", "it will rain", "the market fell"]


@pytest.fixture()
def files(tmp_path):
    for name, lines in (("c.txt", CANDIDATES), ("r.txt", REFERENCES), ("r2.txt", OTHER)):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    return tmp_path


def _score(bundle, folder, *flags):
    return main(["-q", "score", str(bundle), "--candidates", str(folder / "c.txt"), "--references", str(folder / "r.txt"), *flags])


def test_every_output_format_holds_the_python_apis_scores(tiny_bundle, files):
    want = layerwise.load(tiny_bundle).bertscore(CANDIDATES, REFERENCES, [0, 1], idf=True)
    for suffix in (".json", ".jsonl", ".tsv", ".npz"):
        assert _score(tiny_bundle, files, "--layers", "0,1", "--idf", "--output", str(files / f"s{suffix}")) == 0
    written = json.loads((files / "s.json").read_text())
    np.testing.assert_array_equal(written["f1"], want.f1)
    assert written["hash"] == want.hash and written["layers"] == [0, 1]
    assert written["mean"]["F"] == pytest.approx([float(row.mean(dtype=np.float64)) for row in want.f1])
    rows = [json.loads(line) for line in (files / "s.jsonl").read_text().splitlines()]
    assert [row["F"] for row in rows] == want.f1.T.tolist()
    tsv = (files / "s.tsv").read_text().splitlines()
    assert tsv[0] == "index\tlayer\tP\tR\tF" and len(tsv) == 1 + 2 * len(CANDIDATES)
    assert float(tsv[2].split("\t")[4]) == pytest.approx(float(want.f1[1, 0]), abs=1e-7)
    with np.load(files / "s.npz") as npz:
        np.testing.assert_array_equal(npz["precision"], want.precision)
        assert str(npz["hash"]) == want.hash


def test_several_reference_files_keep_the_best_as_the_package_does(tiny_bundle, files, capsys):
    assert main(["-q", "score", str(tiny_bundle), "--candidates", str(files / "c.txt"), "--references", str(files / "r.txt"),
                 str(files / "r2.txt"), "--layers", "1"]) == 0  # fmt: skip
    written = json.loads(capsys.readouterr().out)
    want = layerwise.load(tiny_bundle).bertscore(CANDIDATES, [list(pair) for pair in zip(REFERENCES, OTHER)], 1)
    np.testing.assert_array_equal(written["f1"][0], want.f1)


def test_a_baseline_written_by_the_command_rescales_the_scores(tiny_bundle, files):
    corpus = files / "corpus.txt"
    corpus.write_text("\n".join(CANDIDATES + REFERENCES + OTHER) + "\n")
    assert main(["-q", "baseline", str(tiny_bundle), str(corpus), "--out", str(files / "base.tsv")]) == 0
    assert (files / "base.tsv").read_text().splitlines()[0] == "LAYER,P,R,F"
    assert _score(tiny_bundle, files, "--layers", "1", "--baseline", str(files / "base.tsv"), "--output", str(files / "s.json")) == 0
    want = layerwise.load(tiny_bundle).bertscore(CANDIDATES, REFERENCES, 1, baseline=files / "base.tsv")
    written = json.loads((files / "s.json").read_text())
    np.testing.assert_array_equal(written["f1"][0], want.f1)
    assert "-rescaled(baseline=" in written["hash"]


def test_maxsim_command_gives_the_python_apis_scores_and_matches(tiny_bundle, files, capsys):
    assert main(["-q", "maxsim", str(tiny_bundle), "cat on a mat", "--documents", str(files / "c.txt"), "--matches"]) == 0
    written = json.loads(capsys.readouterr().out)
    want = layerwise.load(tiny_bundle).maxsim("cat on a mat", CANDIDATES, return_matches=True)
    np.testing.assert_array_equal(written["scores"], want.scores)
    assert written["matches"][0]["tokens"] == list(want.matches[0].tokens)


@pytest.mark.parametrize(
    ("lines", "flags", "message"),
    [
        (
            {"r.txt": REFERENCES[:2]},
            ["--layers", "1"],
            "error: --references '{dir}/r.txt' has 2 lines but --candidates '{dir}/c.txt' has 3: "
            "give one reference line per candidate line",
        ),
        (
            {"c.txt": [], "r.txt": []},
            ["--layers", "1"],
            "error: no candidates were given: give at least one candidate and one reference for it",
        ),
        ({}, ["--layers", "9"], "error: layer 9 does not exist: this model has hidden states 0..1"),
        (
            {},
            ["--layers", "1", "--output", "{dir}/s.csv"],
            "error: --output '{dir}/s.csv': use a file name ending in .json, .jsonl, .tsv, .npz",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_fix_and_nothing_is_written(tiny_bundle, files, capsys, lines, flags, message):
    for name, content in lines.items():
        (files / name).write_text("".join(line + "\n" for line in content))
    flags = [flag.replace("{dir}", str(files)) for flag in flags]
    assert _score(tiny_bundle, files, *flags) == 2
    assert capsys.readouterr().err.startswith(message.replace("{dir}", str(files)))
    assert not list(files.glob("s.*"))
