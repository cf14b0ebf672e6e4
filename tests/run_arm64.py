"""Run a bundle's int8 variant on an aarch64 Python (QEMU user mode); run by test_int8_arm64.

One process does it all, because QEMU starts Python and ONNX Runtime slowly:
1. ``layerwise verify BUNDLE --variant int8 --texts N``: the CLI as users run it, its output and status;
2. ``layerwise.load(BUNDLE, variant="int8").embed_tokens(texts)``: every hidden state of every token;
3. a ``MatMulInteger`` probe graph (built on x86, saved as a file): its exact int32 products;
4. the CPU as layerwise describes it (runtime/cpu.py: features from the HWCAPs this process saw; QEMU
   sets them per ``-cpu`` model, and ONNX Runtime picks its uint8 x int8 kernel from them: plain NEON,
   dot product or i8mm).
layerwise is not installed here: the ``layerwise`` package is mapped onto this checkout.

    python run_arm64.py SPEC.json    # SPEC: repo, bundle, verify_texts, texts, probe, probe_feeds, out
"""

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def import_checkout(repo: Path) -> None:
    """Import ``layerwise`` from the checkout: each subpackage is found in layerwise/ or at the top
    (layerwise.runtime is runtime/), as pyproject.toml's package-dir maps them."""
    spec = importlib.util.spec_from_file_location(
        "layerwise", repo / "layerwise" / "__init__.py", submodule_search_locations=[str(repo / "layerwise"), str(repo)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["layerwise"] = module
    spec.loader.exec_module(module)


spec = json.loads(Path(sys.argv[1]).read_text())
import_checkout(Path(spec["repo"]))
import layerwise  # noqa: E402  (the checkout, mapped above)
from layerwise.cli import main  # noqa: E402
from layerwise.runtime.cpu import describe  # noqa: E402

printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    status = main(["verify", spec["bundle"], "--variant", "int8", "--texts", str(spec["verify_texts"])])
with layerwise.load(spec["bundle"], variant="int8", provider="cpu") as encoder:
    states = encoder.embed_tokens(spec["texts"], layers="all")  # [layers, tokens, hidden] per text
with np.load(spec["probe_feeds"]) as saved:
    probe = ort.InferenceSession(spec["probe"], providers=["CPUExecutionProvider"])
    products = probe.run(None, {k: saved[k] for k in saved.files})
np.savez(
    spec["out"],
    verify_status=np.array(status),
    verify_output=np.array(printed.getvalue()),
    cpu=np.array(json.dumps(describe())),
    **{f"states_{i}": s for i, s in enumerate(states)},
    **{f"product_{i}": p for i, p in enumerate(products)},
)
