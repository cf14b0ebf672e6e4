"""The benchmark code paths that the CI machine can run: the accelerator job on the CPU
provider, the latency grid, the long-documents job on a tiny model and the report."""

from __future__ import annotations

from benchmarks import gpu, long_docs, report
from layerwise.runtime import load
from layerwise.runtime.cpu import describe
from layerwise.runtime.latency import measure_grid


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
