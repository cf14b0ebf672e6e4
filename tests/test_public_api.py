"""The public surface fits on one screen and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import layerwise


def test_public_names_are_exactly_these():
    assert sorted(layerwise.__all__) == ["Encoder", "__version__", "export", "load"]
    assert sorted(n for n in dir(layerwise) if not n.startswith("_") and n not in {"annotations", "Path", "Any"} and not isinstance(getattr(layerwise, n), type(sys))) == [
        "Encoder",
        "export",
        "load",
    ]


def test_import_layerwise_does_not_import_torch_or_transformers():
    code = "import sys, layerwise; print(sorted(m for m in ('torch', 'transformers', 'onnx', 'optimum') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
