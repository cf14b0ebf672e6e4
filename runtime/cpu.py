"""Which CPU this is, in the terms that decide ONNX Runtime's int8 kernels.

x86 with AVX-512 VNNI or AVX-VNNI multiplies uint8 x int8 into int32 directly; plain AVX2 and
AVX-512BW add pairs of products in int16 first (the reason int8 weights are pair-bounded,
see exporter/quantize.py). Every benchmark figure and ``Encoder.info`` name this family.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


@lru_cache(maxsize=1)
def cpu_description() -> dict[str, object]:
    """Model name, architecture, the int8-relevant flags and the int8 kernel family of this CPU."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "machine": platform.machine(),
        "flags": [f for f in FLAGS_OF_INTEREST if f in flags],
        "int8_family": int8_family(platform.machine(), flags),
    }


def int8_family(machine: str, flags: set[str]) -> str:
    """'avx512_vnni', 'avx_vnni', 'avx512bw', 'avx2' (int16 pair sums), 'arm64', or the machine name."""
    if machine.lower() in ("arm64", "aarch64"):
        return "arm64"
    for family in ("avx512_vnni", "avx_vnni", "avx512bw", "avx2"):
        if family in flags:
            return family
    return machine.lower() or "unknown"
