"""int8 on ARM64: ONNX Runtime's aarch64 kernels, run under QEMU user mode, compute exactly the
integer products x86 computes, give hidden states that meet the bar against PyTorch, and
``layerwise verify`` passes there.

ONNX Runtime's MLAS picks its uint8 x int8 kernel on ARM64 from the HWCAPs, which QEMU sets per
``-cpu`` model, so three models cover its three kernels (QEMU's instruction log confirms each):
``max`` (SVE + i8mm: SVE UMMLA, and SVE float kernels), ``neoverse-n1`` (dot product: NEON UDOT;
Graviton 2, Ampere Altra) and ``cortex-a57`` (plain NEON, as on many edge boards: SMULL/SMLAL sum
two int8 x int8 products in int16, which 128 x 254 fits, then SADALP into int32).
The aarch64 Python (Debian's, with the aarch64 wheels) is tests/arm64_setup.sh's; `make test` runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import layerwise
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.manifest import read_manifest

from .reference import cosine, torch_states
from .test_int8_portability import int16_pair_matmul, projection_weights

QEMU = "qemu-aarch64-static"
ARM64 = Path(__file__).resolve().parents[1] / ".arm64"  # tests/arm64_setup.sh builds it
RUNNER = Path(__file__).with_name("run_arm64.py")
# QEMU -cpu model: the features (HWCAPs) ONNX Runtime reads, as runtime/cpu.py names them and their family,
# and the uint8 x int8 kernel they select in MLAS
CPUS = {
    "max": ((["asimd", "asimddp", "i8mm", "sve"], "arm64_i8mm"), "SVE UMMLA (i8mm)"),
    "neoverse-n1": ((["asimd", "asimddp"], "arm64_dotprod"), "NEON UDOT (dot product)"),
    "cortex-a57": ((["asimd"], "arm64_neon"), "NEON SMULL/SMLAL (int16 pair sums)"),
}
VERIFY_TEXTS = 4  # QEMU runs MiniLM at one or two seconds per short text
PROBE_ROWS = 32  # per weight: the output channels whose neighbouring weights sum highest


def probe_inputs(weights: list[np.ndarray]) -> dict[str, np.ndarray]:
    """For each weight [K, N], uint8 rows that push PROBE_ROWS channels' partial sums to the top in
    any grouping of K (255 where the weight is positive, 0 elsewhere: with zero point 128 every
    product is 127|w| or 128|w|)."""
    inputs = {}
    for i, w in enumerate(weights):
        pairs = np.abs(w.astype(np.int64)).reshape(-1, 2, w.shape[1]).sum(axis=1).max(axis=0)
        channels = np.argsort(-pairs, kind="stable")[:PROBE_ROWS]
        inputs[f"a{i}"] = np.where(w[:, channels].T > 0, 255, 0).astype(np.uint8)
    return inputs


def probe_graph(weights: list[np.ndarray]) -> onnx.ModelProto:
    """One MatMulInteger per weight, uint8 activations with zero point 128 as in the int8 graph: int32 out."""
    nodes, inputs, outputs, inits = [], [], [], [numpy_helper.from_array(np.array(128, np.uint8), "zero")]
    for i, w in enumerate(weights):
        nodes.append(helper.make_node("MatMulInteger", [f"a{i}", f"w{i}", "zero"], [f"y{i}"]))
        inputs.append(helper.make_tensor_value_info(f"a{i}", TensorProto.UINT8, [None, w.shape[0]]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.INT32, [None, w.shape[1]]))
        inits.append(numpy_helper.from_array(w, f"w{i}"))
    model = helper.make_model(helper.make_graph(nodes, "probe", inputs, outputs, inits), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


@pytest.fixture(scope="module")
def probe_weights(minilm_bundle) -> list[np.ndarray]:
    """Layer 0's six int8 weights as exported (pair-bounded), and the same rescaled to reach ±127 per
    channel, as ordinary 8-bit weights do (those saturate x86's AVX2 kernels)."""
    exported = [w for name, w in projection_weights(minilm_bundle / "model.int8.onnx").items() if "layer.0_" in name]
    full = [np.clip(np.round(w * (127 / np.abs(w).max(axis=0))), -127, 127).astype(np.int8) for w in exported]
    return exported + full


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return corpus_sentences(2, skip=1450) + ["sequence pattern", "match a mapping"]


@pytest.fixture(scope="module")
def arm64_runs(minilm_bundle, probe_weights, texts, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """run_arm64.py's outputs under each QEMU CPU model."""
    qemu, root = shutil.which(QEMU), ARM64 / "root"
    assert qemu, f"{QEMU} is missing: `make test` installs it (apt-get install qemu-user-static)"
    assert (ARM64 / ".installed").is_file(), f"{ARM64} is missing: `make test` builds it (bash tests/arm64_setup.sh)"
    work = tmp_path_factory.mktemp("arm64")
    onnx.save(probe_graph(probe_weights), work / "probe.onnx")
    np.savez(work / "probe.npz", **probe_inputs(probe_weights))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(ARM64 / "site")
    runs = {}
    for cpu in CPUS:
        spec = {
            "repo": str(Path(__file__).resolve().parents[1]),
            "bundle": str(minilm_bundle),
            "verify_texts": VERIFY_TEXTS,
            "texts": texts,
            "probe": str(work / "probe.onnx"),
            "probe_feeds": str(work / "probe.npz"),
            "out": str(work / f"{cpu}.npz"),
        }
        (work / f"{cpu}.json").write_text(json.dumps(spec))
        command = [qemu, "-cpu", cpu, "-L", str(root), str(root / "usr/bin/python3.11"), str(RUNNER), str(work / f"{cpu}.json")]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, (cpu, done.stderr[-3000:])
        print(f"\nqemu-aarch64-static -cpu {cpu}: {time.perf_counter() - started:.0f} s")
        with np.load(work / f"{cpu}.npz") as out:
            runs[cpu] = {k: out[k] for k in out.files}
    return runs


def states_of(run: dict[str, np.ndarray], count: int) -> list[np.ndarray]:
    return [run[f"states_{i}"] for i in range(count)]


def test_verify_passes_on_every_arm64_int8_kernel(arm64_runs):
    for cpu, ((flags, family), kernel) in CPUS.items():
        run = arm64_runs[cpu]
        facts = json.loads(str(run["cpu"]))
        assert facts["cpu_flags"] == flags, f"QEMU's -cpu {cpu} no longer selects {kernel}: {facts}"
        assert facts["cpu_family"] == family and facts["cpu"].startswith("ARM implementer 0x41 part"), facts  # QEMU's own cpuinfo
        assert int(run["verify_status"]) == 0 and "  PASS" in str(run["verify_output"]), (cpu, str(run["verify_output"]))


def test_arm64_kernels_compute_exact_integer_products(arm64_runs, probe_weights):
    inputs = probe_inputs(probe_weights)
    exact = [(inputs[f"a{i}"].astype(np.int64) - 128) @ w.astype(np.int64) for i, w in enumerate(probe_weights)]
    full = range(len(probe_weights) // 2, len(probe_weights))  # the same weights rescaled to full 8-bit
    pair_summed = [int16_pair_matmul(inputs[f"a{i}"], probe_weights[i]) for i in full]
    assert any((p != inputs[f"a{i}"].astype(np.int64) @ probe_weights[i]).any() for i, p in zip(full, pair_summed))  # AVX2 would fail
    for cpu in CPUS:
        for i, want in enumerate(exact):
            assert np.array_equal(arm64_runs[cpu][f"product_{i}"], want), (cpu, CPUS[cpu][1], i)


def test_arm64_hidden_states_match_x86_and_pytorch(arm64_runs, minilm_bundle, torch_minilm, texts):
    """Pooled per layer: the int8 variant's bars against PyTorch (the manifest's, as `verify` uses), and
    close to x86's int8 (float rounding moves a few quantization steps; AVX2 saturation cost 0.98)."""
    bars = read_manifest(minilm_bundle).verification.bars["int8"]
    with layerwise.load(minilm_bundle, variant="int8", provider="cpu") as encoder:
        here = encoder.embed_tokens(texts, layers="all")  # per text [layers, tokens, hidden]
    model, tokenizer = torch_minilm
    reference, feeds = torch_states(model, tokenizer, texts)
    lengths = feeds["attention_mask"].sum(axis=1)
    torch_pooled = np.stack([np.stack([h[t, : lengths[t]].mean(axis=0) for h in reference]) for t in range(len(texts))])
    here_pooled = np.stack([s.mean(axis=1) for s in here])  # [texts, layers, hidden]
    for cpu in CPUS:
        arm = states_of(arm64_runs[cpu], len(texts))
        assert [s.shape for s in arm] == [s.shape for s in here]
        pooled = np.stack([s.mean(axis=1) for s in arm])
        print(
            f"\n{cpu}: max |arm64 - x86| per layer, all tokens:",
            " ".join(f"{max(float(np.abs(a[layer] - h[layer]).max()) for a, h in zip(arm, here)):.2e}" for layer in range(len(reference))),
        )
        for layer in range(len(reference)):
            to_x86 = cosine(pooled[:, layer], here_pooled[:, layer])
            to_torch = cosine(pooled[:, layer], torch_pooled[:, layer])
            print(
                f"  layer {layer}: pooled cosine to x86 min {to_x86.min():.6f}; to PyTorch mean {to_torch.mean():.5f} min "
                f"{to_torch.min():.5f}"
            )
            assert to_x86.min() >= 0.999, (cpu, layer, to_x86.min())
            assert to_torch.mean() >= bars["pooled_cos_mean"] and to_torch.min() >= bars["pooled_cos_min"], (
                cpu,
                layer,
                to_torch.mean(),
                to_torch.min(),
            )


def test_dot_product_and_plain_neon_kernels_give_identical_hidden_states(arm64_runs, texts):
    """Same float kernels (no SVE on either), different integer kernels: bit for bit the same."""
    dot, neon = states_of(arm64_runs["neoverse-n1"], len(texts)), states_of(arm64_runs["cortex-a57"], len(texts))
    assert all(np.array_equal(a, b) for a, b in zip(dot, neon))
