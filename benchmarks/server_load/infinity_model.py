"""Build the int8 all-MiniLM-L6-v2 that Infinity serves, the way a Python user would (run in benchmarks/.venv-infinity).

Usage: python benchmarks/server_load/infinity_model.py OUT --checkpoint DIR

optimum exports the checkpoint to ONNX (``ORTModelForFeatureExtraction.from_pretrained(...,
export=True)``), then ``ORTQuantizer`` quantizes it with the dynamic ``AutoQuantizationConfig`` of
this CPU family, ``per_channel=False`` as optimum's own quantization guide does: avx512_vnni where the
CPU has VNNI (AMX machines too: optimum has no AMX config), avx512 where it has AVX-512 without VNNI,
avx2 on other x86 CPUs, arm64 on ARM. OUT gets what a Hugging Face repository ships: config.json,
the tokenizer files, model.onnx and model_quantized.onnx at its root (Infinity serves an ONNX model
only from that layout, started in OUT with ``--model-id .``; on the CPU it prefers the quantized
file), and infinity-model.json saying which config made it. Imports optimum: never imported by the
project venv.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def quantization_family(cpuinfo: str, machine: str) -> str:
    """optimum's AutoQuantizationConfig constructor for this CPU.

    >>> quantization_family("flags : fpu avx2 avx512f avx512_vnni amx_int8", "x86_64")
    'avx512_vnni'
    >>> quantization_family("flags : fpu avx2", "x86_64")
    'avx2'
    """
    if machine in ("aarch64", "arm64"):
        return "arm64"
    flags = set(cpuinfo.split())
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def build(out: Path, checkpoint: Path) -> dict[str, str]:
    from importlib.metadata import version

    from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from transformers import AutoTokenizer

    family = quantization_family(Path("/proc/cpuinfo").read_text(), platform.machine())
    model = ORTModelForFeatureExtraction.from_pretrained(checkpoint, export=True)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(out)
    config = getattr(AutoQuantizationConfig, family)(is_static=False, per_channel=False)
    ORTQuantizer.from_pretrained(out, file_name="model.onnx").quantize(save_dir=out, quantization_config=config)
    if not (out / "model_quantized.onnx").is_file():
        raise SystemExit(f"ORTQuantizer wrote no model_quantized.onnx in {out}: {sorted(p.name for p in out.iterdir())}")
    facts = {
        "checkpoint": str(checkpoint),
        "quantization": f"AutoQuantizationConfig.{family}(is_static=False, per_channel=False)",
        "optimum": version("optimum"),
        "optimum-onnx": version("optimum-onnx"),
        "onnxruntime": version("onnxruntime"),
        "files": " ".join(sorted(p.name for p in out.iterdir())),
    }
    (out / "infinity-model.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", type=Path, required=True, help="the all-MiniLM-L6-v2 checkpoint folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(json.dumps(build(args.out, args.checkpoint), indent=2))


if __name__ == "__main__":
    main()
