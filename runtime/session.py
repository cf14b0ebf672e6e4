"""Create ONNX Runtime sessions for one execution provider, and prove it is the one in use.

CPU and CUDA share everything here except the provider name and its options. Memory
settings are chosen for variable shapes, where an arena keeps whatever it once grew:
on the CPU no arena (``python -m benchmarks.experiments.soak``: 300 mixed-length requests held
0.55-0.81 GB instead of 2.0 GB with the default arena, 71 s against 69 s), on CUDA an
arena that grows by what is requested and is shrunk back after every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BundleError, ProviderError
from .manifest import PROVIDERS as MANIFEST_PROVIDERS

try:
    import onnxruntime as ort
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        "layerwise needs ONNX Runtime: pip install 'layerwise[cpu]' (or 'layerwise[gpu]' for CUDA; never both)"
    ) from e

# ONNX Runtime's name for each provider the manifest lists ("cpu" -> "CPUExecutionProvider")
PROVIDERS = {name: f"{name.upper()}ExecutionProvider" for name in MANIFEST_PROVIDERS}
EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(), (topology / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def cuda_provider_installed() -> bool:
    """True when the installed ONNX Runtime has a CUDA provider; whether a GPU works shows at session creation."""
    return PROVIDERS["cuda"] in ort.get_available_providers()


def resolve_provider(provider: str) -> str:
    """Turn "auto", "cpu" or "cuda" into "cpu" or "cuda", refusing what cannot work."""
    if provider not in ("auto", *PROVIDERS):
        raise ProviderError(f"provider must be 'auto', 'cpu' or 'cuda', got {provider!r}")
    if provider == "auto":
        return "cuda" if cuda_provider_installed() else "cpu"
    if provider == "cuda" and not cuda_provider_installed():
        raise ProviderError(
            f"provider='cuda' was requested, but the installed onnxruntime {ort.__version__} has no CUDA execution "
            f"provider (available: {', '.join(ort.get_available_providers())}). Install the GPU build instead of the "
            "CPU one: pip uninstall -y onnxruntime && pip install 'layerwise[gpu]'"
        )
    return provider


@dataclass(frozen=True)
class SessionConfig:
    """How every session of one encoder is created."""

    provider: str  # "cpu" or "cuda"
    threads: int
    device_id: int = 0
    cpu_arena: bool = False  # off: see the module docstring (benchmarks.experiments.soak compares both)
    entries: tuple[tuple[str, str], ...] = ()  # session config entries the variant's manifest entry asks for

    def session_options(self, external_data_folder: Path | None = None) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = self.cpu_arena
        if external_data_folder is not None:
            options.add_session_config_entry(EXTERNAL_DATA_FOLDER, str(external_data_folder))
        for key, value in self.entries:
            options.add_session_config_entry(key, value)
        return options

    def providers(self) -> list[Any]:
        if self.provider == "cuda":
            cuda_options = {"device_id": self.device_id, "arena_extend_strategy": "kSameAsRequested"}
            return [(PROVIDERS["cuda"], cuda_options), PROVIDERS["cpu"]]
        return [PROVIDERS["cpu"]]

    def run_options(self) -> ort.RunOptions:
        """Options for each run: on CUDA, give device memory grown by this run back afterwards."""
        options = ort.RunOptions()
        if self.provider == "cuda":
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", f"gpu:{self.device_id}")
        return options


def create_session(model_bytes: bytes, config: SessionConfig, name: str, external_data_folder: Path | None = None) -> ort.InferenceSession:
    """Create a session from model bytes and check that the requested provider really runs it."""
    try:
        session = ort.InferenceSession(
            model_bytes, config.session_options(external_data_folder), providers=config.providers()
        )
    except Exception as e:  # onnxruntime raises its own exception types from C++
        if config.provider == "cpu":
            raise BundleError(f"ONNX Runtime could not load {name}: {e}; re-export the bundle with this onnxruntime") from e
        raise ProviderError(f"ONNX Runtime could not create a {config.provider} session for {name}: {e}") from e
    in_use = session.get_providers()[0]
    if in_use != PROVIDERS[config.provider]:
        raise ProviderError(
            f"{PROVIDERS[config.provider]} was requested for {name}, but ONNX Runtime is running it with "
            f"{in_use}: the CUDA provider failed to initialise (no visible GPU, or CUDA/cuDNN libraries missing "
            "or mismatched with onnxruntime-gpu). Check nvidia-smi and the onnxruntime-gpu install notes, "
            "or use provider='cpu'"
        )
    return session
