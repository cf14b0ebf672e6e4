"""The JavaScript package (js/, npm name ``layerwise``) against this Python runtime.

Runs ``node --test`` in js/ on the session's real MiniLM bundle: vectors (the scalar mix
included), BERTScore and MaxSim in Node (onnxruntime-node) and in headless Chromium
(onnxruntime-web) must equal the Python runtime's, which the JS tests compute at test time
through js/test/python_reference.py, and errors must read as Python's. Then
js/test/families.test.js on a RoBERTa-style bundle (no token types, byte-level BPE) and an
XLM-R-style one (Unigram), small random models from tests/families_random.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "js"


def _node_test(env: dict[str, str], *files: str) -> subprocess.CompletedProcess:
    if shutil.which("node") is None or not (JS / "node_modules" / ".installed").exists():
        pytest.fail("the js/ package's dependencies are not installed: run `make test` (or `make js/node_modules/.installed chromium`)")
    env = {**os.environ, "LAYERWISE_PYTHON": sys.executable, **env}
    return subprocess.run(["node", "--test", *files], cwd=JS, env=env, capture_output=True, text=True, timeout=600)


def test_js_package_gives_the_python_runtimes_vectors_in_node_and_chromium(minilm_bundle: Path) -> None:
    run = _node_test({"LAYERWISE_BUNDLE": str(minilm_bundle)}, "test/")
    report = run.stdout + run.stderr
    print(report[-4000:])  # the browser's load time and latency are test diagnostics
    assert run.returncode == 0, report[-8000:]


def test_js_package_runs_roberta_bpe_and_xlmr_unigram_bundles_as_python_does(tmp_path: Path) -> None:
    import layerwise

    from .families_random import save_random

    bundles = {
        f"{model_type} ({kind})": str(
            layerwise.export(str(save_random(model_type, tmp_path / model_type)), tmp_path / f"{model_type}-bundle", variants=["fused"])
        )
        for model_type, kind in (("roberta", "byte-level BPE"), ("xlm-roberta", "Unigram"))
    }
    run = _node_test({"LAYERWISE_FAMILY_BUNDLES": json.dumps(bundles)}, "test/families.test.js")
    report = run.stdout + run.stderr
    print(report[-3000:])
    assert run.returncode == 0 and "# skipped 0" in report and "# pass 5" in report, report[-8000:]
