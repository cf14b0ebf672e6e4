"""What CPU this is, in the terms that decide int8 and fp32 speed: model name, flags, family.

The family is the best integer-matmul kernel ONNX Runtime's MLAS can dispatch to on it,
in MLAS's own order of preference (x86: AMX, AVX-512 VNNI, AVX-512 core, AVX-VNNI, AVX2; ARM64:
i8mm, dot product, plain NEON): figures measured on one family do not carry over to another.
AVX2, AVX-512 without VNNI and plain NEON add uint8 x int8 products in int16 pairs (why int8
weights are pair-bounded: exporter/quantize.py). Linux only; elsewhere the family is "unknown".
x86 flags come from ``/proc/cpuinfo``; ARM64 features from this process's auxiliary vector, where
ONNX Runtime reads them (``/proc/cpuinfo``'s ``Features`` if it cannot be read). Imports nothing heavy.

    >>> family_of({"avx2", "avx512f", "avx512bw", "avx512_vnni"})
    'avx512_vnni'
    >>> family_of({"asimd", "asimddp"})
    'arm64_dotprod'
"""

from __future__ import annotations

import platform
import struct
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
AUXV = Path("/proc/self/auxv")
# Flags that change which matmul kernels run (or, for fma and avx512_bf16, fp32 and bf16 ones).
FLAGS_OF_INTEREST = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "i8mm", "sve",
)  # fmt: skip
# ARM64 features by (auxiliary vector entry, bit): AT_HWCAP is 16, AT_HWCAP2 26 (Linux's asm/hwcap.h names and bits).
ARM64_HWCAPS = {"asimd": (16, 1 << 1), "asimddp": (16, 1 << 20), "sve": (16, 1 << 22), "i8mm": (26, 1 << 13)}
# (family, flags it needs, name for people), best first: the first family whose flags are all present wins.
FAMILIES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("amx", frozenset({"amx_tile", "amx_int8"}), "AMX"),
    ("avx512_vnni", frozenset({"avx512f", "avx512bw", "avx512_vnni"}), "AVX-512 VNNI"),
    ("avx512", frozenset({"avx512f", "avx512bw"}), "AVX-512 (no VNNI)"),
    ("avx_vnni", frozenset({"avx2", "avx_vnni"}), "AVX2 + AVX-VNNI"),
    ("avx2", frozenset({"avx2"}), "AVX2 (no VNNI)"),
    ("arm64_i8mm", frozenset({"i8mm"}), "ARM64 i8mm"),
    ("arm64_dotprod", frozenset({"asimddp"}), "ARM64 dot product"),
    ("arm64_neon", frozenset({"asimd"}), "ARM64 NEON (no dot product)"),
)
UNKNOWN = "unknown"


def family_of(flags: set[str] | frozenset[str]) -> str:
    """The CPU family key for a set of /proc/cpuinfo flags (see FAMILIES)."""
    return next((key for key, needed, _ in FAMILIES if needed <= flags), UNKNOWN)


def family_title(family: str) -> str:
    """How people name a family key: 'avx512_vnni' -> 'AVX-512 VNNI'."""
    return next((title for key, _, title in FAMILIES if key == family), "unknown CPU family")


def arm64_features(auxv: bytes) -> set[str]:
    """ARM64 feature names (ARM64_HWCAPS) set in the bytes of /proc/self/auxv (64-bit little-endian pairs)."""
    entries = dict(struct.iter_unpack("<QQ", auxv[: len(auxv) // 16 * 16]))
    return {name for name, (key, bit) in ARM64_HWCAPS.items() if entries.get(key, 0) & bit}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, flags of interest and family from the text of /proc/cpuinfo (first processor).

    ARM64 kernels list features as ``Features`` and name no model: the implementer and part codes stand in.
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: all cores of a machine share model and flags here
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    arm_part = f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}" if "CPU implementer" in fields else None
    return {
        "cpu": fields.get("model name", arm_part or "unknown"),
        "cpu_flags": sorted(flags.intersection(FLAGS_OF_INTEREST)),
        "cpu_family": family_of(flags),
    }


def describe() -> dict[str, Any]:
    """This machine's CPU: {"cpu": model name, "cpu_flags": [...], "cpu_family": key, "cpu_family_title": text}."""
    try:
        facts = parse_cpuinfo(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        facts = {"cpu": "unknown", "cpu_flags": [], "cpu_family": UNKNOWN}
    if platform.machine().lower() in ("aarch64", "arm64"):
        facts = _arm64(facts)
    return {**facts, "cpu_family_title": family_title(facts["cpu_family"])}


def _arm64(cpuinfo: dict[str, Any]) -> dict[str, Any]:
    """ARM64 facts: features from the auxiliary vector; the model only from an ARM-format /proc/cpuinfo."""
    try:
        flags = arm64_features(AUXV.read_bytes())
    except OSError:
        flags = set(cpuinfo["cpu_flags"])
    model = cpuinfo["cpu"] if cpuinfo["cpu"].startswith("ARM implementer") else "unknown"
    return {"cpu": model, "cpu_flags": sorted(flags), "cpu_family": family_of(flags)}
