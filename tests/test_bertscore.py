"""BERTScore equals the bert-score package 0.3.13 on the real all-MiniLM-L6-v2, at two layers.

The package runs in its own venv (benchmarks/.venv-bertscore: it needs transformers < 4.58, this
venv has 5.x), built by benchmarks/bertscore_setup.sh (``make test`` runs it; the fixture below runs
it too, a no-op once built), as a subprocess writing JSON (benchmarks/jobs/bertscore_worker.py), on the
checkpoint folder the bundle was exported from (``model_type`` = that folder, ``num_layers=k``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import layerwise
from benchmarks.common import real_sentences
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.bertscore import bertscore, compute_baseline
from layerwise.runtime.score_inputs import ScoreTruncationWarning

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_PYTHON = ROOT / "benchmarks" / ".venv-bertscore" / "bin" / "python"
BAR = 1e-4  # fp32 and fused against the package: P, R and F of every pair


def pairs() -> tuple[list[str], list[str], list[list[str]]]:
    """Held-out sentence pairs (consecutive sentences of the Python manual), plus texts that test the edges:
    identical, empty, surrounding blanks, odd Unicode, one over the 512-token maximum. And two references each."""
    s = real_sentences(244)
    cands, refs = s[0:240:2], s[1:240:2]
    long = " ".join(s[:40])  # about 900 tokens: both cut at 512
    cands += [s[5], "", "   Spaces around this one.  ", "Café naïve — 東京 ü ß 😀 ＡＢＣ", long, s[7]]
    refs += [s[5], s[3], "Spaces around that one.", "Cafe naive Tokyo", s[9], long]
    several = [[r, s[(i * 7 + 3) % 244]] for i, r in enumerate(refs)]
    return cands, refs, several


RUNS: dict[str, dict[str, Any]] = {
    "L2": {"num_layers": 2},
    "L4": {"num_layers": 4},
    "L2-idf": {"num_layers": 2, "idf": True},
    "L4-idf": {"num_layers": 4, "idf": True},
    "L4-idf-several": {"num_layers": 4, "idf": True, "several": True},
    "all": {"num_layers": 6, "all_layers": True},
    "L4-rescaled": {"num_layers": 4, "rescaled": True},
}


@pytest.fixture(scope="module")
def baseline_file(minilm_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline computed by layerwise (fp32) from other real sentences, in the package's file format."""
    path = tmp_path_factory.mktemp("baseline") / "minilm.tsv"
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        compute_baseline(enc, corpus_sentences(300, skip=1000)).save(path)
    return path


@pytest.fixture(scope="module")
def package(minilm_dir: Path, baseline_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every run of RUNS through bert-score 0.3.13 itself."""
    subprocess.run(["bash", str(ROOT / "benchmarks" / "bertscore_setup.sh")], check=True, timeout=1800)
    cands, refs, several = pairs()
    runs = []
    for options in RUNS.values():
        run = {"cands": cands, "refs": several if options.get("several") else refs, "num_layers": options["num_layers"]}
        run.update(idf=options.get("idf", False), all_layers=options.get("all_layers", False))
        if options.get("rescaled"):
            run["baseline_path"] = str(baseline_file)
        runs.append(run)
    work = tmp_path_factory.mktemp("bertscore")
    (work / "request.json").write_text(json.dumps({"model": str(minilm_dir), "runs": runs, "threads": 2}))
    subprocess.run(
        [str(REFERENCE_PYTHON), str(ROOT / "benchmarks" / "jobs" / "bertscore_worker.py"), str(work / "request.json"),
         str(work / "result.json")],  # fmt: skip
        check=True,
        timeout=1800,
    )
    result = json.loads((work / "result.json").read_text())
    assert result["versions"]["transformers"].startswith("4.57"), result["versions"]
    return dict(zip(RUNS, result["runs"]))


def ours(enc: layerwise.Encoder, name: str, baseline_file: Path) -> np.ndarray:
    """[P, R, F] of one run of RUNS through layerwise: [3, pairs], or [3, layers, pairs] for all layers."""
    options = RUNS[name]
    cands, refs, several = pairs()
    layers = "all" if options.get("all_layers") else options["num_layers"]
    result = bertscore(
        enc,
        cands,
        several if options.get("several") else refs,
        layers=layers,
        idf=options.get("idf", False),
        baseline=baseline_file if options.get("rescaled") else None,
        overflow="truncate",
    )
    return np.stack([result.precision, result.recall, result.f1])


def theirs(package: dict[str, dict[str, Any]], name: str) -> np.ndarray:
    run = package[name]
    return np.array([run["P"], run["R"], run["F"]], dtype=np.float64)


@pytest.mark.parametrize("name", list(RUNS))
def test_fp32_scores_equal_bert_score_0_3_13(minilm_bundle: Path, package: dict, baseline_file: Path, name: str) -> None:
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        got = ours(enc, name, baseline_file)
    expected = theirs(package, name)  # all layers: [3, 7, pairs], as ours
    assert got.shape == expected.shape
    if RUNS[name].get("all_layers"):  # layer 0 (the embedding output) holds negative best cosines: see below
        below = expected[:, 0] - got[:, 0]
        assert below.min() > -BAR and below.max() < 1e-3
        got, expected = got[:, 1:], expected[:, 1:]
    assert np.abs(got - expected).max() < BAR, f"{name}: max |difference| {np.abs(got - expected).max():.2e}"


def test_the_package_alone_lifts_negative_best_cosines_to_zero_next_to_longer_texts(minilm_bundle: Path, package: dict) -> None:
    """The one known difference (runtime/greedy.py): the package's maximum runs over a padded batch of 64 pairs,
    where padding scores 0, so a token whose best cosine is negative gets 0 when its partner is shorter than the
    batch's longest. At MiniLM's embedding output (layer 0) that lifts the recall of 2 of these 126 pairs by up to
    1.2e-4; layers 1-6 have no negative best cosine here."""
    cands, refs, _ = pairs()
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        got = bertscore(enc, cands, refs, layers=0, overflow="truncate").recall
        vectors = enc.embed_tokens([c.strip() for c in cands + refs], layers=0, normalize=True, overflow="truncate")
    expected = np.array(package["all"]["R"][0])
    lifted = np.flatnonzero(np.abs(got - expected) > 1e-6)
    assert len(lifted) and (expected[lifted] > got[lifted]).all()
    for i in lifted:  # each has a reference token whose best cosine against its candidate is negative
        c, r = vectors[i][0], vectors[len(cands) + i][0]
        assert (c @ r.T).max(axis=0).min() < 0


def test_truncation_and_empty_texts_match_the_package(minilm_bundle: Path, package: dict) -> None:
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        cands, refs, _ = pairs()
        with pytest.warns(ScoreTruncationWarning):
            result = bertscore(enc, cands, refs, layers=4)
    assert result.truncated_candidates == (124,) and result.truncated_references == (125,)
    assert result.f1[121] == package["L4"]["F"][121] == 0.0  # the empty candidate
    assert result.stats.unique_texts < 2 * len(cands)  # repeated texts embedded once


def test_fused_equals_the_package_and_int8_stays_within_the_issue_targets(minilm_bundle: Path, package: dict, baseline_file: Path) -> None:
    with layerwise.load(minilm_bundle, variant="fp32") as fp32, layerwise.load(minilm_bundle, variant="fused") as fused:
        with layerwise.load(minilm_bundle, variant="int8") as int8:
            for name in ("L2", "L4-idf"):
                assert np.abs(ours(fused, name, baseline_file) - theirs(package, name)).max() < BAR
                reference, quantized = ours(fp32, name, baseline_file)[2], ours(int8, name, baseline_file)[2]
                assert np.abs(quantized - reference).mean() <= 0.002, name
                assert abs(quantized.mean() - reference.mean()) <= 0.002, name


def test_hash_names_the_bundle_layer_idf_and_rescaling(minilm_bundle: Path, package: dict, baseline_file: Path) -> None:
    assert package["L4-idf"]["hash"].endswith("_L4_idf_version=0.3.12(hug_trans=4.57.6)")  # 0.3.13 reports itself as 0.3.12
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        result = bertscore(enc, ["a"], ["b"], layers=4, idf=True, baseline=baseline_file)
    assert result.hash.startswith(f"{minilm_bundle.name}_L4_idf_version=layerwise-") and "variant=fp32)-rescaled(baseline=" in result.hash



def _score_command(bundle: Path, folder: Path, cands: list[str], reference_files: list[list[str]], *flags: str) -> np.ndarray:
    """`layerwise score` (fp32) on line files as the package's CLI reads them: [P, R, F] per candidate."""
    from layerwise.cli import main

    (folder / "c.txt").write_text("\n".join(cands) + "\n")
    paths = []
    for k, lines in enumerate(reference_files):
        paths.append(folder / f"r{k}.txt")
        paths[-1].write_text("\n".join(lines) + "\n")
    args = ["-q", "score", str(bundle), "--variant", "fp32", "--candidates", str(folder / "c.txt"), "--references", *map(str, paths)]
    assert main([*args, *flags, "--output", str(folder / "s.json")]) == 0
    written = json.loads((folder / "s.json").read_text())
    return np.array([written["precision"][0], written["recall"][0], written["f1"][0]])


REAL_PAIRS = 120  # the real sentence pairs of pairs(): line files cannot hold its edge texts (an empty line, a blank one)


@pytest.mark.parametrize("layer", [2, 4])
def test_the_score_command_gives_the_packages_numbers(minilm_bundle: Path, package: dict, tmp_path: Path, layer: int) -> None:
    cands, refs, _ = pairs()
    got = _score_command(minilm_bundle, tmp_path, cands[:REAL_PAIRS], [refs[:REAL_PAIRS]], "--layers", str(layer))
    assert np.abs(got - theirs(package, f"L{layer}")[:, :REAL_PAIRS]).max() < BAR


def test_the_score_command_with_several_reference_files_and_idf_is_the_python_api(minilm_bundle: Path, tmp_path: Path) -> None:
    cands, _, several = pairs()
    cands, several = cands[:REAL_PAIRS], several[:REAL_PAIRS]
    got = _score_command(minilm_bundle, tmp_path, cands, [[g[0] for g in several], [g[1] for g in several]], "--layers", "4", "--idf")
    with layerwise.load(minilm_bundle, variant="fp32") as enc:
        api = enc.bertscore(cands, several, 4, idf=True)
    np.testing.assert_array_equal(got, np.stack([api.precision, api.recall, api.f1]))
