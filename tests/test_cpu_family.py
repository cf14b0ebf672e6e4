"""The CPU description every benchmark writer uses: model name, flags, family (runtime/cpu.py)."""

from __future__ import annotations

import struct

import pytest

from layerwise.runtime.cpu import arm64_features, describe, family_of, family_title, parse_cpuinfo

# Trimmed /proc/cpuinfo texts of real machines (two processors each; the first one is read).
HASWELL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2

processor\t: 1
model name\t: something else entirely
flags\t\t: avx512f avx512bw avx512_vnni
"""
ZEN4 = """processor\t: 0
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni
"""
GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
"""
SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""


@pytest.mark.parametrize(
    "text, model, family, flags",
    [
        (HASWELL, "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", "avx2", ["avx2", "fma"]),
        (GRAVITON2, "ARM implementer 0x41 part 0xd0c", "arm64_dotprod", ["asimd", "asimddp"]),
        (ZEN4, "AMD EPYC 9R14 96-Core Processor", "avx512_vnni", ["avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f", "fma"]),
        (
            SAPPHIRE_RAPIDS,
            "Intel(R) Xeon(R) Platinum 8488C",
            "amx",
            ["amx_bf16", "amx_int8", "amx_tile", "avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f", "avx_vnni", "fma"],
        ),
    ],
)
def test_cpuinfo_gives_model_flags_and_the_best_int8_kernel_family(text, model, family, flags):
    assert parse_cpuinfo(text) == {"cpu": model, "cpu_flags": flags, "cpu_family": family}


def test_families_follow_mlas_preference_and_unknown_when_no_avx2():
    assert family_of({"avx2", "avx_vnni"}) == "avx_vnni"
    assert family_of({"avx2", "avx512f", "avx512bw"}) == "avx512"
    assert family_of({"avx512f", "avx512bw", "avx512_vnni", "avx2"}) == "avx512_vnni"
    assert family_of({"sse4_2", "avx"}) == "unknown"
    assert family_title("avx512_vnni") == "AVX-512 VNNI" and family_title("avx2") == "AVX2 (no VNNI)"
    assert family_of({"asimd", "asimddp", "i8mm", "sve"}) == "arm64_i8mm" and family_of({"asimd"}) == "arm64_neon"


def test_arm64_features_are_read_from_the_auxiliary_vector():
    """AT_HWCAP (16) and AT_HWCAP2 (26) pairs as the kernel writes them; a torn tail is ignored."""
    auxv = struct.pack("<6Q", 16, (1 << 1) | (1 << 20) | (1 << 22), 26, 1 << 13, 0, 0) + b"\x01\x02"
    assert arm64_features(auxv) == {"asimd", "asimddp", "sve", "i8mm"}
    assert arm64_features(struct.pack("<4Q", 16, 1 << 1, 0, 0)) == {"asimd"}


def test_this_machine_is_described_with_a_known_title():
    facts = describe()
    assert set(facts) == {"cpu", "cpu_flags", "cpu_family", "cpu_family_title"}
    assert facts["cpu_family_title"] == family_title(facts["cpu_family"])
    assert set(facts["cpu_flags"]) <= {f for f in open("/proc/cpuinfo").read().split()}


def test_results_files_are_keyed_by_cpu_family(tmp_path, monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    stem = common.results_stem("2026-12-02", "vm.example", "avx2", "-server")
    assert stem == tmp_path / "results" / "2026-12-02-vm.example-avx2-server" and stem.parent.is_dir()
    assert common.machine()["cpu_family"] == describe()["cpu_family"]


@pytest.mark.parametrize("family, cap", [("amx", 256), ("avx512_vnni", 512), ("avx2", 512), ("unknown", 512)])
def test_cpu_batches_are_capped_by_the_families_measured_value(tiny_bundle, monkeypatch, family, cap):
    import layerwise
    from layerwise.runtime import encoder as encoder_module
    from layerwise.runtime.batching import BATCH_TOKENS_CPU, cpu_batch_tokens

    monkeypatch.setattr(encoder_module, "describe_cpu", lambda: {"cpu_family": family})
    encoder = layerwise.load(tiny_bundle, variant="fp32", provider="cpu", threads=2)
    assert (encoder.info.cpu, encoder.batching.max_tokens, cpu_batch_tokens(family)) == (family, cap, cap)
    texts = ["word " * 40] * 16  # 42 tokens each: 6 per batch under cap 256, 12 under 512
    encoder.embed(texts, layers=-1, batch_size=32)
    by_cap = -(-16 // (cap // 42))  # 3 batches under cap 256, 2 under 512; balanced over the 2 threads: 4 and 2
    assert encoder.last_stats.batches == -(-by_cap // 2) * 2 and cap // 42 < 32 and BATCH_TOKENS_CPU == 512
