"""The benchmark code paths that the CI machine can run: the accelerator job on the CPU
provider, the latency grid and the report."""

from __future__ import annotations

from benchmarks import gpu, report
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
