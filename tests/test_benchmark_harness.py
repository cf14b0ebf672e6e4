"""The benchmark code paths that the CI machine can run: the accelerator job on the CPU
provider, the latency grid, the long-documents and batching jobs on a tiny model and the report;
the model-size jobs on a second, harness-built model (tiny here), and the AMX-only contender."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import models as bench_models
from benchmarks import report, run
from benchmarks.common import real_sentences
from benchmarks.jobs import all_layers, batching, gpu, long_docs, peers
from benchmarks.jobs.peers_worker import choose, parse_args
from benchmarks.models import MODELS, BenchModel, Shape, cpu_variants, model_facts, random_bert_bundle
from benchmarks.peerkit.registry import PEERS
from benchmarks.peerkit.torch_peers import bf16_autocast_skip_reason
from layerwise.commands.latency import measure_grid
from layerwise.runtime import load
from layerwise.runtime.batching import Batching, cpu_batch_tokens
from layerwise.runtime.cpu import describe
from layerwise.runtime.manifest import read_manifest


def _entry(jobs: dict) -> dict:
    """A results entry for the tiny test model (facts as run.py records them)."""
    facts = {
        "key": "tiny",
        "name": "tiny BERT",
        "weights": "random weights, seed 3",
        "title": "tiny BERT (1 x 64, random weights, seed 3)",
        "layers": 1,
        "hidden": 64,
        "heads": 4,
        "intermediate": 128,
        "max_positions": 128,
        "vocab": 30522,
        "parameters": 2_000_000,
        "note": "",
    }
    return {"model": facts, "jobs": jobs}


def test_gpu_job_runs_on_the_cpu_provider_and_renders(tiny_bundle):
    job = gpu.run(str(tiny_bundle), provider="cpu", repeats=1)
    assert job["provider"] == "cpu" and job["variant"] == "fused"
    assert set(job["contenders"]) == {
        "layerwise fused engine only",
        "layerwise fused + copy of all hidden states",
        "layerwise fused pooled on device",
    }
    results = {
        "date": "d",
        "host": "h",
        "machine": {**describe(), "versions": {}},
        "models": {"tiny": _entry({"gpu": job, "peers": {"skipped": "no env"}})},
    }
    text = report.markdown(results)
    assert "| layerwise fused engine only |" in text and "### tiny BERT (1 x 64, random weights, seed 3): peers skipped (no env)" in text
    assert text.startswith(f"## Benchmark d on h: {describe()['cpu_family_title']}\n")


def test_latency_grid_reports_percentiles_and_skips_nothing_it_can_run(tiny_bundle):
    cells = measure_grid(load(tiny_bundle, provider="cpu"), [1, 4], [8, 128, 512], seconds=0.05)
    assert [(c["batch_size"], c["seq_len"]) for c in cells] == [(1, 8), (1, 128), (4, 8), (4, 128)]  # 512 > max length 128
    for c in cells:
        assert c["repeats"] >= 5 and c["p50_ms"] <= c["p90_ms"] <= c["p99_ms"]
        assert abs(c["tokens_per_s"] - c["sequences_per_s"] * c["seq_len"]) < 1e-6 * c["tokens_per_s"]


def test_long_docs_job_runs_the_same_windows_as_pytorch_and_renders(tiny_bert, tiny_bundle):
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(tiny_bert).eval(), AutoTokenizer.from_pretrained(tiny_bert)
    job = long_docs.run(str(tiny_bundle), model, tokenizer, threads=1, repeats=1, lengths=(300, 700))
    docs = job["documents"]
    assert docs["tokens"] == [300, 700] and job["max_length"] == 128 and job["stride"] == 63  # half of 126 content tokens
    assert docs["windows"] == (1 + -(-(298 - 126) // 63)) + (1 + -(-(698 - 126) // 63))
    assert set(job["contenders"]) == {"pytorch document loop", "layerwise fused"} and set(job["skipped_variants"]) == {"int8"}
    for row in job["contenders"].values():
        assert row["windows"] == docs["windows"] and row["cos_min"] > 0.9999
        assert abs(row["tokens_per_s"] - 1000 * row["texts_per_s"] / 2) < 1e-6 * row["tokens_per_s"]
    results = {"date": "d", "host": "h", "machine": {**describe(), "versions": {}}, "models": {"tiny": _entry({"long_docs": job})}}
    text = report.markdown(results)
    assert "2 documents from the Python reference manual, 300-700 tokens (median 500, 1000 in all); 15 windows" in text
    assert "| layerwise fused | " in text and "| layerwise int8 | skipped |" in text


def test_batching_job_measures_every_configuration_and_restores_the_defaults(tiny_bundle):
    encoder = load(tiny_bundle, provider="cpu", threads=2)
    with encoder.use_batching(Batching(256, 1)):
        assert (encoder.batching.max_tokens, encoder.batching.side_by_side) == (256, 1)
    assert (encoder.batching.max_tokens, encoder.batching.side_by_side) == (cpu_batch_tokens(encoder.info.cpu), 2)

    sentences = [f"sentence number {i} about cats and dogs" for i in range(64)]
    job = batching.run(str(tiny_bundle), sentences, threads=2, repeats=1)
    assert set(job["sets"]) == {"sentences", "128-token texts", "sentences with a few 128-token texts"}
    assert job["sets"]["sentences with a few 128-token texts"]["texts"] == 66
    for result in job["sets"].values():
        assert len(result["configurations"]) == len(batching.CAPS) + 1
        assert all(row["texts_per_s"] > 0 for row in result["configurations"].values())
    text = report.markdown(
        {"date": "d", "host": "h", "machine": {**describe(), "versions": {}}, "models": {"tiny": _entry({"batching": job})}}
    )
    assert "| cap none, side by side |" in text and f"| cap {cpu_batch_tokens(encoder.info.cpu)}, intra-op threads |" in text
    assert list(job["call_sizes"]["sizes"]) == list(batching.CALL_SIZES) and "| 32 | " in text
    assert job["call_sizes"]["default_spread_from"] == encoder.batching.spread_from


# --- the model-size jobs: a second model, built by the harness, in the same results file ---

TINY = Shape(layers=2, hidden=64, heads=4, intermediate=128, max_positions=128)
TINY_MODEL = BenchModel(
    "tiny", "tiny BERT", "random weights, seed 3", shape=TINY, texts=8, quick_texts=4, jobs=None, peers=None, note="Random weights."
)


def _weights(folder):
    from safetensors.numpy import load_file

    return load_file(folder / "model.safetensors")


def test_random_bert_is_built_at_the_asked_shape_once_and_reused(tmp_path, minilm_dir, monkeypatch):
    from transformers import AutoModel

    stale = bench_models.cache_paths(TINY, 3, tmp_path, ["fp32"])[1].with_name("bundle-older-code")
    stale.mkdir(parents=True)
    checkpoint, bundle = random_bert_bundle(TINY, seed=3, cache=tmp_path, variants=["fp32"], threads=1)
    assert not stale.exists()  # a bundle of older exporter code is removed once the new one is written
    model = AutoModel.from_pretrained(checkpoint)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.max_position_embeddings) == (
        2,
        64,
        4,
        128,
        128,
    )
    assert c.vocab_size == 30522 and (checkpoint / "vocab.txt").read_bytes() == (minilm_dir / "vocab.txt").read_bytes()
    assert tuple(model.encoder.layer[1].intermediate.dense.weight.shape) == (128, 64) and len(model.encoder.layer) == 2
    info = read_manifest(bundle).model
    assert (info.num_layers, info.hidden_size, info.num_attention_heads) == (2, 64, 4) and read_manifest(bundle).variants_built_for(
        "cpu"
    ) == ["fp32"]
    assert cpu_variants() == ["fp32", "fused", "int8"]  # what make bench exports when variants is not given
    facts = model_facts(model, TINY_MODEL)
    assert facts["title"] == "tiny BERT (2 x 64, random weights, seed 3)" and facts["parameters"] == sum(
        p.numel() for p in model.parameters()
    )

    stamps = {p: p.stat().st_mtime_ns for p in (checkpoint / "model.safetensors", bundle / "manifest.json")}
    assert random_bert_bundle(TINY, seed=3, cache=tmp_path, variants=["fp32"], threads=1) == (checkpoint, bundle)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # reused, not rebuilt
    assert not [p for p in tmp_path.rglob("*") if ".partial-" in p.name]
    monkeypatch.setattr(bench_models, "_code_digest", lambda: "changed exporter")
    same_checkpoint, fresh_bundle = bench_models.cache_paths(TINY, 3, tmp_path, ["fp32"])
    assert same_checkpoint == checkpoint and fresh_bundle != bundle  # changed exporter code: the same weights, a fresh bundle
    assert bench_models.cache_paths(TINY, 4, tmp_path, ["fp32"])[0] != checkpoint  # another seed: another checkpoint


def test_random_bert_weights_are_fixed_by_the_seed_and_every_bias_is_drawn(tmp_path, minilm_dir):
    first, same, other = (
        bench_models.write_random_bert(tmp_path / n, TINY, seed, minilm_dir) for n, seed in (("a", 3), ("b", 3), ("c", 4))
    )
    a, b, c = _weights(first), _weights(same), _weights(other)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not any(np.array_equal(a[k], c[k]) for k in a)
    assert all(np.all(a[k] != 0) for k in a if k.endswith("bias"))  # none left at zero for the exporter to fold away


def test_bf16_autocast_is_a_contender_on_amx_only():
    assert bf16_autocast_skip_reason("amx") is None
    for family in ("avx512_vnni", "avx512", "avx_vnni", "avx2", "unknown"):
        assert (
            bf16_autocast_skip_reason(family)
            == f"not applicable: measured on AMX CPUs only (bf16 matmuls on AMX tiles); this CPU family is {family}"
        )
    errors: dict[str, str] = {}
    for family, listed in (("amx", {}), ("avx2", {"pytorch-bf16": bf16_autocast_skip_reason("avx2")})):
        not_applicable: dict[str, str] = {}
        args = parse_args(["--texts", "t.json", "--out-dir", "o", "--peers", "pytorch-sorted,pytorch-bf16"])
        assert list(choose(args, errors, not_applicable, family=family)) == [
            "pytorch-sorted",
            *(["pytorch-bf16"] if family == "amx" else []),
        ]
        assert not_applicable == listed and errors == {}


def test_every_model_names_peers_the_table_knows():
    for bench in MODELS.values():
        assert set(bench.peers or ()) <= set(PEERS)
        assert set(bench.jobs or ()) <= set(run.JOBS)


def test_all_layers_job_on_a_second_model_scores_bf16_autocast_and_renders_under_the_model_name(tiny_bert, tiny_bundle):
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(tiny_bert).eval(), AutoTokenizer.from_pretrained(tiny_bert)
    texts = real_sentences(8)
    on_amx = all_layers.run(str(tiny_bundle), model, tokenizer, texts, threads=1, repeats=1, family="amx")
    elsewhere = all_layers.run(str(tiny_bundle), model, tokenizer, texts, threads=1, repeats=1, family="avx2")
    assert list(on_amx["contenders"]) == [all_layers.PLAIN, all_layers.SORTED, all_layers.BF16, "layerwise fp32", "layerwise fused"]
    assert (
        on_amx["not_applicable"] == {} and 0.99 < on_amx["contenders"][all_layers.BF16]["cos_min"] < 1 - 1e-7
    )  # bf16 rounds, fp32 does not
    assert all_layers.BF16 not in elsewhere["contenders"] and elsewhere["not_applicable"] == {
        all_layers.BF16: bf16_autocast_skip_reason("avx2")
    }
    assert elsewhere["texts"]["texts"] == 8 and elsewhere["contenders"]["layerwise fp32"]["cos_min"] > 0.9999

    minilm = BenchModel("minilm", "all-MiniLM-L6-v2", "trained", shape=None, texts=8, quick_texts=4, jobs=None, peers=None)
    results = {
        "date": "d",
        "host": "h",
        "machine": {**describe(), "versions": {}},
        "models": {
            "minilm": {"model": model_facts(model, minilm), "jobs": {"all_layers": on_amx}},
            "tiny": {"model": model_facts(model, TINY_MODEL), "jobs": {"all_layers": elsewhere, "peers": {"skipped": "no env"}}},
        },
    }
    text = report.markdown(results)
    assert "## tiny BERT (1 x 64, random weights, seed 3)\n\n1 layers x hidden 64, 4 heads, feed-forward 128, vocabulary 30522" in text
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    assert len(headings) == 3 and all(
        h.startswith(("### all-MiniLM-L6-v2 (1 x 64, trained): ", "### tiny BERT (1 x 64, random weights, seed 3): ")) for h in headings
    )
    assert "### tiny BERT (1 x 64, random weights, seed 3): peers skipped (no env)" in headings
    assert f"| {all_layers.BF16} | not applicable | | | | | {bf16_autocast_skip_reason('avx2')} |" in text
    assert text.count(f"| {all_layers.BF16} | ") == 2  # measured under one model, not applicable under the other


def test_peers_job_for_a_second_model_runs_the_worker_on_its_checkpoint(tiny_bert, tiny_bundle):
    """The real worker (here in the project venv: PyTorch and plain ONNX Runtime need nothing else)."""
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(tiny_bert).eval(), AutoTokenizer.from_pretrained(tiny_bert)
    job = peers.run(
        str(tiny_bundle),
        model,
        tokenizer,
        real_sentences(8),
        threads=1,
        repeats=1,
        job="last_layer",
        peers=("pytorch-plain", "pytorch-bf16", "onnxruntime-fp32"),
        model_dir=tiny_bert,
        python=Path(sys.executable),
    )
    assert set(job["peers"]) == {"pytorch-plain", "onnxruntime-fp32", "layerwise-fp32", "layerwise-fused"} and job["errors"] == {}
    assert job["not_applicable"] == (
        {} if describe()["cpu_family"] == "amx" else {"pytorch-bf16": bf16_autocast_skip_reason(describe()["cpu_family"])}
    )
    assert job["settings"]["model_dir"] == str(tiny_bert)
    for row in job["peers"].values():
        assert row["cos_min"] > 0.9999 and row["texts_per_s"] > 0
    text = report.markdown(
        {
            "date": "d",
            "host": "h",
            "machine": {**describe(), "versions": {}},
            "models": {"tiny": {"model": model_facts(model, TINY_MODEL), "jobs": {"peers": job}}},
        }
    )
    assert (
        "### tiny BERT (1 x 64, random weights, seed 3): pooled last-layer sentence embeddings against peers (8 sentences, batch 32, 1 "
        "threads)" in text
    )
    assert (
        "| contender | texts/s | vs OpenVINO fp32 (did not run) | cos min | cos mean | notes |" in text and "| onnxruntime-fp32 | " in text
    )


def test_run_refuses_unknown_models_and_a_missing_minilm_bundle(capsys):
    for argv, message in (
        (["b", "--models", "minilm,bert-large"], "unknown models ['bert-large']; choose from minilm, bert-base (comma-separated)"),
        (["--models", "minilm"], "--models minilm needs its bundle: pass MINILM_BUNDLE"),
        (["b", "--jobs", "all_layers,nope"], "unknown jobs ['nope']; choose from all_layers,"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            run.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    args = run.parse_args(["--models", "bert-base", "--quick"])
    assert [m.key for m in args.models] == ["bert-base"] and args.jobs is None and args.bundle is None
    assert run.jobs_of(MODELS["bert-base"], None) == ["all_layers", "all_layers_peers", "peers"] and run.jobs_of(
        MODELS["minilm"], None
    ) == list(run.JOBS)
    args = run.parse_args(["b", "--jobs", "long_docs"])  # a MiniLM-only job: the BERT-base model is not even built
    assert [m.key for m in args.models] == ["minilm"] and args.jobs == ["long_docs"]
    with pytest.raises(SystemExit):
        run.parse_args(["--models", "bert-base", "--jobs", "grid"])
    assert "no model runs --jobs grid: minilm runs all_layers," in capsys.readouterr().err
