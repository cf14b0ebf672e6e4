"""What CPU this is, in the terms that decide int8 and fp32 speed: model name, flags, family.

The family is the best integer-matmul kernel ONNX Runtime's MLAS can dispatch to on it,
in MLAS's own order of preference (AMX, AVX-512 VNNI, AVX-512 core, AVX-VNNI, AVX2):
figures measured on one family do not carry over to another. AVX2 and AVX-512 without VNNI add
uint8 x int8 products in int16 pairs (why int8 weights are pair-bounded: exporter/quantize.py). Linux ``/proc/cpuinfo``
only; elsewhere the family is "unknown". Imports nothing heavy.

    >>> family_of({"avx2", "avx512f", "avx512bw", "avx512_vnni"})
    'avx512_vnni'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")
# Flags that change which matmul kernels run (or, for fma and avx512_bf16, fp32 and bf16 ones).
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
# (family, flags it needs, name for people), best first: the first family whose flags are all present wins.
FAMILIES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("amx", frozenset({"amx_tile", "amx_int8"}), "AMX"),
    ("avx512_vnni", frozenset({"avx512f", "avx512bw", "avx512_vnni"}), "AVX-512 VNNI"),
    ("avx512", frozenset({"avx512f", "avx512bw"}), "AVX-512 (no VNNI)"),
    ("avx_vnni", frozenset({"avx2", "avx_vnni"}), "AVX2 + AVX-VNNI"),
    ("avx2", frozenset({"avx2"}), "AVX2 (no VNNI)"),
)
UNKNOWN = "unknown"


def family_of(flags: set[str] | frozenset[str]) -> str:
    """The CPU family key for a set of /proc/cpuinfo flags (see FAMILIES)."""
    return next((key for key, needed, _ in FAMILIES if needed <= flags), UNKNOWN)


def family_title(family: str) -> str:
    """How people name a family key: 'avx512_vnni' -> 'AVX-512 VNNI'."""
    return next((title for key, _, title in FAMILIES if key == family), "unknown CPU family")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, flags of interest and family from the text of /proc/cpuinfo (first processor)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: all cores of a machine share model and flags here
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name", "unknown"),
        "cpu_flags": sorted(flags.intersection(FLAGS_OF_INTEREST)),
        "cpu_family": family_of(flags),
    }


def describe() -> dict[str, Any]:
    """This machine's CPU: {"cpu": model name, "cpu_flags": [...], "cpu_family": key, "cpu_family_title": text}."""
    try:
        facts = parse_cpuinfo(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        facts = {"cpu": "unknown", "cpu_flags": [], "cpu_family": UNKNOWN}
    return {**facts, "cpu_family_title": family_title(facts["cpu_family"])}
