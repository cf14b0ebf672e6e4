"""The JavaScript package (js/, npm name ``layerwise``) against this Python runtime.

Runs ``node --test`` in js/ on the session's real MiniLM bundle: vectors in Node
(onnxruntime-node) and in headless Chromium (onnxruntime-web) must equal the Python
runtime's, which the JS tests compute at test time through js/test/python_reference.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "js"


def test_js_package_gives_the_python_runtimes_vectors_in_node_and_chromium(minilm_bundle: Path) -> None:
    if shutil.which("node") is None or not (JS / "node_modules" / ".installed").exists():
        pytest.fail("the js/ package's dependencies are not installed: run `make test` (or `make js/node_modules/.installed chromium`)")
    env = {**os.environ, "LAYERWISE_BUNDLE": str(minilm_bundle), "LAYERWISE_PYTHON": sys.executable}
    run = subprocess.run(["node", "--test", "test/"], cwd=JS, env=env, capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    print(report[-4000:])  # the browser's load time and latency are test diagnostics
    assert run.returncode == 0, report[-8000:]
