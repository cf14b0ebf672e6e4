"""The runtime needs numpy, onnxruntime and tokenizers only: it works with the torch stack unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKED = ("torch", "transformers", "optimum", "onnx", "sentencepiece", "safetensors", "ray", "pyarrow", "tritonclient")
RUNTIME = Path(__file__).resolve().parents[1] / "runtime"


def _run(code: str) -> subprocess.CompletedProcess:
    blocker = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"blocked for this test: {{name}}")
        sys.meta_path.insert(0, Block())
        """
    )
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_import_load_and_embed_without_the_torch_stack(minilm_bundle):
    result = _run(
        f"""
        import layerwise, sys
        encoder = layerwise.load({str(minilm_bundle)!r}, provider="cpu")
        out = encoder.embed(["light runtime", "no torch here"], layers=[0, -1])
        assert out.shape == (2, 2, 384), out.shape
        assert not [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
        print("ok", encoder.info.variant)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "int8"]


def test_export_without_the_extra_says_which_pip_install_fixes_it():
    result = _run(
        """
        import layerwise
        try:
            layerwise.export("x", "y")
        except ImportError as e:
            print(e)
        """
    )
    assert "layerwise.export needs the exporter extra" in result.stdout
    assert "pip install 'layerwise[export]'" in result.stdout


def test_runtime_sources_import_nothing_heavy():
    for path in RUNTIME.glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in BLOCKED, f"{path.name}: {line.strip()}"
