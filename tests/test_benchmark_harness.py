"""The benchmark code paths that the CI machine can run: the accelerator job on the CPU
provider, the latency grid, the long-documents and batching jobs on a tiny model and the report."""

from __future__ import annotations

from benchmarks import batching, gpu, long_docs, report
from layerwise.commands.latency import measure_grid
from layerwise.runtime import load
from layerwise.runtime.bench_hooks import batching as batching_hook
from layerwise.runtime.bench_hooks import batching_settings
from layerwise.runtime.cpu import describe
from layerwise.runtime.engine import cpu_batch_tokens


def test_gpu_job_runs_on_the_cpu_provider_and_renders(tiny_bundle):
    job = gpu.run(str(tiny_bundle), provider="cpu", repeats=1)
    assert job["provider"] == "cpu" and job["variant"] == "fused"
    assert set(job["contenders"]) == {
        "layerwise fused engine only",
        "layerwise fused + copy of all hidden states",
        "layerwise fused pooled on device",
    }
    results = {"date": "d", "host": "h", "machine": {**describe(), "versions": {}}, "jobs": {"gpu": job, "peers": {"skipped": "no env"}}}
    text = report.markdown(results)
    assert "| layerwise fused engine only |" in text and "### peers: skipped (no env)" in text
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
    results = {"date": "d", "host": "h", "machine": {**describe(), "versions": {}}, "jobs": {"long_docs": job}}
    text = report.markdown(results)
    assert "2 documents from the Python reference manual, 300-700 tokens (median 500, 1000 in all); 15 windows" in text
    assert "| layerwise fused | " in text and "| layerwise int8 | skipped |" in text


def test_batching_job_measures_every_configuration_and_restores_the_defaults(tiny_bundle):
    encoder = load(tiny_bundle, provider="cpu", threads=2)
    with batching_hook(encoder, 256, side_by_side=False):
        assert batching_settings(encoder) == (256, 1)
    assert batching_settings(encoder) == (cpu_batch_tokens(encoder.info.cpu), 2)

    sentences = [f"sentence number {i} about cats and dogs" for i in range(64)]
    job = batching.run(str(tiny_bundle), sentences, threads=2, repeats=1)
    assert set(job["sets"]) == {"sentences", "128-token texts", "sentences with a few 128-token texts"}
    assert job["sets"]["sentences with a few 128-token texts"]["texts"] == 66
    for result in job["sets"].values():
        assert len(result["configurations"]) == len(batching.CAPS) + 1
        assert all(row["texts_per_s"] > 0 for row in result["configurations"].values())
    text = report.markdown({"date": "d", "host": "h", "machine": {**describe(), "versions": {}}, "jobs": {"batching": job}})
    assert "| cap none, side by side |" in text and f"| cap {cpu_batch_tokens(encoder.info.cpu)}, intra-op threads |" in text
