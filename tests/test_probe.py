"""``layerwise probe``: every layer and combination scored on the same folds, the learned scalar mix,
the JSON and plot written, and bad labelled files refused naming the fix with nothing written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import layerwise
from layerwise.cli import main
from layerwise.probe import labelled, probe
from layerwise.probe.demo import write_csv
from layerwise.probe.mix import learn_scalar_mix

from .extract_helpers import sentences


def run_probe(bundle: Path | str, data: Path, out: Path, *flags: str) -> int:
    return main(["-q", "probe", str(bundle), str(data), "--json", str(out / "p.json"), "--plot", str(out / "p.png"), *flags])


def test_scalar_mix_puts_its_weight_on_the_one_layer_that_carries_the_label():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    hidden = rng.normal(size=(300, 4, 16)).astype(np.float32)
    hidden[:, 2, :3] += 3.0 * np.eye(3)[y]  # only layer 2 knows the class
    hidden[:, 3] *= 50  # a loud layer with nothing to say must not win by its scale
    mix = learn_scalar_mix(hidden, y, "classification", 3)
    assert mix.weights.argmax() == 2 and mix.weights[2] > 0.9
    assert np.isclose(mix.weights.sum(), 1.0) and np.allclose(np.exp(mix.parameters) / np.exp(mix.parameters).sum(), mix.weights)


def test_scalar_mix_applies_gamma_times_the_softmax_weighted_sum_with_unit_rms():
    rng = np.random.default_rng(1)
    hidden = (rng.normal(size=(200, 3, 8)) * [[[1.0], [10.0], [0.1]]]).astype(np.float32)
    y = hidden[:, 0, 0] + hidden[:, 2, 1] * 10
    mix = learn_scalar_mix(hidden, y, "regression", 0)
    by_hand = mix.gamma * sum(w * hidden[:, k] for k, w in enumerate(mix.weights))
    np.testing.assert_allclose(mix.apply(hidden), by_hand, rtol=1e-5, atol=1e-5)
    centred = by_hand - by_hand.mean(axis=0)
    assert np.sqrt(np.mean(centred**2)) == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize(
    ("name", "content", "flags", "message"),
    [
        ("d.csv", "text,topic\na,x\nb,y\n", (), "d.csv has no column 'label' (its columns: 'text', 'topic'); pass --label-column NAME"),
        ("d.csv", "body,label\na,x\n", (), "d.csv has no column 'text' (its columns: 'body', 'label'); pass --text-column NAME"),
        (
            "d.csv",
            "text,label\n" + "a,x\n" * 6,
            (),
            "d.csv: the label 'label' has one class only ('x'); a classification probe needs at least two",
        ),
        ("d.csv", "text,label\na,x\nb,y\nc,x\n", (), "d.csv has 3 texts, fewer than the 5 folds; add texts or lower --folds"),
        (
            "d.csv",
            "text,label\n" + "a,x\n" * 5 + "b,y\n" * 2,
            (),
            "d.csv: class 'y' has 2 texts, fewer than the 5 folds (every fold needs one); add texts of that class, drop it, or "
            "lower --folds",
        ),
        (
            "d.jsonl",
            "".join(json.dumps({"text": f"t{i}", "label": v}) + "\n" for i, v in enumerate([1.5, 2, "high", 3, 4, 5])),
            ("--task", "regression"),
            "d.jsonl line 3: the label 'label' is 'high', not a number; --task regression needs a number in every row (or pass "
            "--task classification)",
        ),
        ("d.csv", "text,label\na,x\n  ,y\n", (), "d.csv row 1 (0-based, after the header): the text 'text' is empty; fill or drop the row"),
        (
            "d.csv",
            "text,label\na,x\nb,\n",
            (),
            "d.csv row 1 (0-based, after the header): the label 'label' is missing; fill or drop the row",
        ),
        ("d.txt", "a\n", (), "DATA '{tmp}/d.txt' has an unknown suffix: use .csv, .tsv, .jsonl, .ndjson, .parquet, .pq"),
    ],
)
def test_bad_labelled_file_fails_naming_the_fix_exit_2_and_writes_nothing(tmp_path, capsys, name, content, flags, message):
    data = tmp_path / name
    data.write_text(content)
    out = tmp_path / "out"
    out.mkdir()
    assert run_probe(tmp_path / "no-bundle-needed", data, out, *flags) == 2
    err = capsys.readouterr().err
    assert err == f"error: {str(tmp_path) + '/' if not message.startswith('DATA') else ''}{message.format(tmp=tmp_path)}\n"
    assert list(out.iterdir()) == []


def test_regression_probe_reads_csv_jsonl_and_parquet_alike(tiny_bundle, tmp_path, capsys):
    texts = sentences(40)
    values = [round(len(t) / len(t.split()), 4) for t in texts]  # a number every text really has: characters per word
    with open(tmp_path / "d.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "n"), *zip(texts, values)])
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t, "n": v}) + "\n" for t, v in zip(texts, values)))
    pq.write_table(pa.table({"text": texts, "n": values}), tmp_path / "d.parquet")
    results = []
    for name in ("d.csv", "d.jsonl", "d.parquet"):
        out = tmp_path / name.replace(".", "-")
        out.mkdir()
        assert run_probe(tiny_bundle, tmp_path / name, out, "--label-column", "n", "--folds", "4", "--variant", "fp32") == 0
        results.append(json.loads((out / "p.json").read_text()))
        assert (out / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "regression of 'n' (labels are non-integer numbers; pass --task classification to treat them as classes)" in printed
    assert [r["rows"] for r in results[1:]] == [results[0]["rows"]] * 2  # same data, same folds, same numbers
    names = [r["name"] for r in results[0]["rows"]]
    assert names == ["layer 0", "layer 1", "last 2 concatenated", "mean of all layers", "scalar mix (learned)"]
    assert all(len(r["scores"]["r2"]) == 4 for r in results[0]["rows"]) and results[0]["metrics"] == ["r2"]


@pytest.fixture(scope="module")
def sections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demonstration task, smaller: 40 sentences from each of the 9 largest reference-manual sections."""
    return write_csv(tmp_path_factory.mktemp("probe") / "sections.csv", min_sentences=60, per_section=40)


def test_probe_of_reference_sections_lists_every_layer_and_the_scalar_mix_is_within_one_std_of_the_best_layer(
    minilm_bundle, sections, tmp_path, capsys
):
    assert run_probe(minilm_bundle, sections, tmp_path, "--variant", "fp32") == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "p.json").read_text())
    assert (tmp_path / "p.png").stat().st_size > 10_000
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == [f"layer {k}" for k in range(7)] + ["last 4 concatenated", "mean of all layers", "scalar mix (learned)"]
    assert result["texts"] == 360 and len(result["classes"]) == 9 and result["metrics"] == ["accuracy", "macro_f1"]
    for name, row in rows.items():
        assert len(row["scores"]["accuracy"]) == len(row["scores"]["macro_f1"]) == 5
        folds = " ".join(f"{v:.3f}" for v in row["scores"]["accuracy"])
        assert f"{name}  " in printed and folds in printed  # the table lists every row with its fold scores
    best_layer = max((rows[f"layer {k}"] for k in range(7)), key=lambda r: r["mean"]["accuracy"])
    mix = rows["scalar mix (learned)"]
    assert mix["mean"]["accuracy"] >= best_layer["mean"]["accuracy"] - best_layer["std"]["accuracy"]
    weights = result["scalar_mix"]["weights"]
    assert len(weights) == 7 and sum(weights) == pytest.approx(1.0)
    flags, gamma = result["scalar_mix"]["use"]["embed"], float(f"{result['scalar_mix']['gamma']:.4g}")
    assert "--combine scalar_mix --weights " in flags and f"--gamma {gamma}" in flags
    assert f"best: {result['best']['name']}, accuracy" in printed and result["best"]["use"]["embed"] in printed


def test_python_probe_equals_the_command_on_the_same_folds(minilm_bundle, sections, tmp_path):
    with open(sections, newline="") as f:
        rows = list(csv.DictReader(f))
    assert run_probe(minilm_bundle, sections, tmp_path, "--variant", "fp32", "--folds", "3") == 0
    encoder = layerwise.load(minilm_bundle, variant="fp32")
    report = probe(encoder, labelled([r["text"] for r in rows], [r["label"] for r in rows]), folds=3)
    command = json.loads((tmp_path / "p.json").read_text())
    assert [r["scores"] for r in report.to_dict()["rows"]] == [r["scores"] for r in command["rows"]]
