"""``layerwise extract --engine ray`` on a real local Ray cluster: the same vectors as
``Encoder.embed`` by id, the actors' thread count, a killed driver resumed, bad inputs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import layerwise
from layerwise.cli import main

from .extract_helpers import layer, read_output, sentences, write_jsonl


def test_each_actor_runs_onnx_runtime_with_the_cpus_ray_gave_it(minilm_bundle, ray_cluster):
    import ray

    from layerwise.ray import Embedder

    @ray.remote(num_cpus=2)
    def threads_in_actor() -> int:
        return Embedder(str(minilm_bundle), layers=-1).encoder.info.threads

    assert ray.get(threads_in_actor.remote()) == 2
    assert ray.get(threads_in_actor.options(num_cpus=1).remote()) == 1


def _parts(out) -> list[str]:
    return sorted(p.name for p in out.glob("part-*.parquet"))


def test_driver_killed_midway_then_rerun_computes_the_rest_with_the_encoders_vectors_by_id(minilm_bundle, ray_cluster, tmp_path):
    texts = sentences(160)
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", texts[:100])
    pq.write_table(
        pa.table({"doc": [f"d{i}" for i in range(100, 160)], "text": texts[100:]}), tmp_path / "in" / "b.parquet", row_group_size=25
    )
    out = tmp_path / "out"
    argv = [
        "extract",
        str(minilm_bundle),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--engine",
        "ray",
        "--id-column",
        "doc",
        "--variant",
        "int8",
        "--rows-per-part",
        "10",
        "--actors",
        "2",
        "--threads-per-actor",
        "1",
        "--ray-address",
        ray_cluster,
    ]  # the whole cluster: reads and writes must still run
    driver = subprocess.Popen(
        [sys.executable, "-m", "layerwise.cli", "-q", *argv], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not _parts(out) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    settled, seen = time.monotonic(), _parts(out)
    while time.monotonic() - settled < 2:  # until Ray has ended the dead driver's workers
        time.sleep(0.25)
        if _parts(out) != seen:
            settled, seen = time.monotonic(), _parts(out)
    assert seen, "no part was written within 120 s (reads or writes left unscheduled?)"
    before, _ = read_output(out)
    assert 0 < before.num_rows < 160, "the driver was not killed midway"
    assert main(["-q", *argv]) == 0
    assert set(seen) <= set(_parts(out))  # what the killed run wrote was kept, not recomputed
    table, meta = read_output(out)
    assert table.column("row").to_pylist() == list(range(160))  # every row once: none lost, none twice
    want = layerwise.load(minilm_bundle, variant="int8").embed(texts, layers="all")
    by_id = {doc: i for i, doc in enumerate(table.column("doc").to_pylist())}
    order = [by_id[f"d{i}"] for i in range(160)]
    for k in range(7):
        np.testing.assert_allclose(layer(table, f"layer_{k}")[order], want[:, k], atol=1e-5)
    assert meta["variant"] == "int8" and meta["layers"] == list(range(7))


def test_bad_input_fails_before_ray_runs_anything(minilm_bundle, ray_cluster, tmp_path, capsys):
    (tmp_path / "in.jsonl").write_text('{"text": "ok"}\n{"text": null}\n')
    argv = [
        "-q",
        "extract",
        str(minilm_bundle),
        "--input",
        str(tmp_path / "in.jsonl"),
        "--output",
        str(tmp_path / "out"),
        "--engine",
        "ray",
    ]
    assert main(argv) == 2
    assert "in.jsonl line 2: the text field 'text' is null" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_more_actors_than_the_cluster_can_place_are_refused_not_waited_for(tiny_bundle, ray_cluster, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", sentences(4))
    argv = ["-q", "extract", str(tiny_bundle), "--input", str(source), "--output", str(tmp_path / "out"), "--engine", "ray",
            "--actors", "2", "--threads-per-actor", "2", "--ray-address", ray_cluster]  # fmt: skip
    assert main(argv) == 2  # the session's cluster has 2 CPUs
    assert capsys.readouterr().err == (
        "error: --actors 2 x --threads-per-actor 2 needs 4 CPUs, but the Ray cluster has 2; "
        "pass fewer --actors or --threads-per-actor, or join a bigger cluster with --ray-address\n"
    )


def test_relative_bundle_and_output_paths_work_on_a_joined_cluster(tiny_bundle, ray_cluster, tmp_path, monkeypatch):
    """Actors of a cluster the command joins run in the cluster's folders: relative paths are the caller's."""
    shutil.copytree(tiny_bundle, tmp_path / "bundle")
    write_jsonl(tmp_path / "in.jsonl", sentences(6))
    monkeypatch.chdir(tmp_path)
    argv = [
        "-q",
        "extract",
        "bundle",
        "--input",
        "in.jsonl",
        "--output",
        "out",
        "--engine",
        "ray",
        "--layers",
        "-1",
        "--ray-address",
        ray_cluster,
    ]
    assert main(argv) == 0
    table, _ = read_output(tmp_path / "out")
    want = layerwise.load(tiny_bundle).embed(sentences(6), layers=-1)
    np.testing.assert_allclose(layer(table, "layer_1"), want[:, 0], atol=1e-5)
