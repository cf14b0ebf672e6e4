"""The compact edge bundle (``layerwise export --variants int8 --edge``).

The real MiniLM: its int8 graph with the int8 word-embedding table is at most 30 MB with the
tokenizer and pooling graphs, and meets the int8 bar and hidden_state_0 cosine >= 0.999 on
held-out text. The export path itself (compression checked by the exporter's parity run,
ORT-format copies, required_operators.config, manifest) runs on a small random BERT, which
keeps this module well under a minute; `layerwise export MINILM --variants int8 --edge` runs
the same path on MiniLM (README, "Edge bundle").
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

import layerwise
from layerwise.cli import main
from layerwise.exporter import graph_tools
from layerwise.exporter.edge import check_hidden_state_0, compress_word_embeddings, quantize_blocks
from layerwise.exporter.errors import ExportError
from layerwise.exporter.texts import PARITY_TEXTS, corpus_sentences

from .reference import cosine, mean_pool, onnx_states, per_layer, torch_states

HELD_OUT = corpus_sentences(64, skip=1200) + list(PARITY_TEXTS)  # the export checked sentences 0..447
EDGE_LIMIT_BYTES = 30e6
LOOSE_INT8 = ["--threshold", "int8.pooled_cos_mean=0.95", "--threshold", "int8.pooled_cos_min=0.9"]  # random weights


@pytest.fixture(scope="module")
def minilm_edge_graph(minilm_bundle, tmp_path_factory):
    model = graph_tools.load(minilm_bundle / "model.int8.onnx")
    record = compress_word_embeddings(model)
    path = tmp_path_factory.mktemp("edge") / "model.int8.onnx"
    graph_tools.save(model, path)
    return path, record


def test_minilm_edge_int8_with_tokenizer_and_pooling_is_at_most_30_mb(minilm_bundle, minilm_edge_graph):
    path, record = minilm_edge_graph
    others = ["tokenizer.json", "pool.mean.onnx", "pool.max.onnx", "pool.cls.onnx"]
    total = path.stat().st_size + sum((minilm_bundle / name).stat().st_size for name in others)
    assert total <= EDGE_LIMIT_BYTES, total
    assert record["bytes_after"] < record["bytes_before"] / 3, record


def test_minilm_edge_int8_meets_the_int8_bar_and_hidden_state_0_bar_on_held_out_text(minilm_edge_graph, torch_minilm):
    model, tokenizer = torch_minilm
    for start in range(0, len(HELD_OUT), 32):
        want, feeds = torch_states(model, tokenizer, HELD_OUT[start : start + 32])
        rows = per_layer(onnx_states(minilm_edge_graph[0], feeds), want, feeds["attention_mask"])
        for layer, row in enumerate(rows):
            assert row["pooled_cos_mean"] >= 0.995 and row["pooled_cos_min"] >= 0.99, (layer, row)
        assert rows[0]["pooled_cos_min"] >= 0.999, rows[0]


@pytest.fixture(scope="module")
def edge_bundle(tmp_path_factory, tiny_bert):
    out = tmp_path_factory.mktemp("edge") / "tiny-edge"
    assert main(["-q", "export", str(tiny_bert), "--out", str(out), "--variants", "int8", "--edge", *LOOSE_INT8]) == 0
    return out


def test_edge_export_records_the_compression_and_its_hidden_state_0_check(edge_bundle):
    int8 = json.loads((edge_bundle / "manifest.json").read_text())["variants"]["int8"]
    assert int8["parity"]["passed"]
    edge = int8["edge"]
    assert edge["block"] == 32 and edge["bytes_after"] < edge["bytes_before"] / 3
    assert edge["hidden_state_0_pooled_cos_min"] == round(int8["parity"]["layers"][0]["pooled_cos_min"], 6) >= 0.999
    assert "edge_word_embeddings_gather" in {n.name for n in graph_tools.load(edge_bundle / "model.int8.onnx").graph.node}


def test_ort_format_graphs_and_operator_config_are_written_and_verified(edge_bundle, tiny_bert):
    from transformers import AutoTokenizer

    section = json.loads((edge_bundle / "manifest.json").read_text())["ort_format"]
    assert section["optimization_style"] == "Runtime"
    assert sorted(section["graphs"]) == ["model.int8.onnx", "pool.cls.onnx", "pool.max.onnx", "pool.mean.onnx"]
    for entry in [*section["graphs"].values(), section["required_operators"]]:
        assert (edge_bundle / entry["path"]).stat().st_size == entry["bytes"]
    feeds = {k: v for k, v in AutoTokenizer.from_pretrained(tiny_bert)(list(PARITY_TEXTS[:6]), padding=True, return_tensors="np").items()}
    feeds = {k: np.asarray(feeds[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    from_onnx = onnx_states(edge_bundle / "model.int8.onnx", feeds)
    from_ort = onnx_states(edge_bundle / "model.int8.ort", feeds)  # fewer fusions than the .onnx at load: int8-close, not equal
    for a, b in zip(from_onnx, from_ort):
        assert cosine(mean_pool(a, feeds["attention_mask"]), mean_pool(b, feeds["attention_mask"])).min() > 0.999
    pool = ort.InferenceSession(str(edge_bundle / "pool.mean.ort"), providers=["CPUExecutionProvider"])
    pooled = pool.run(None, {"hidden_state": from_ort[-1], "attention_mask": feeds["attention_mask"]})[0]
    assert cosine(pooled, mean_pool(from_ort[-1], feeds["attention_mask"])).min() > 0.99999
    operators = (edge_bundle / "required_operators.config").read_text()
    for op in ("Gather", "Cast", "MatMulIntegerToFloat", "ReduceSum"):
        assert op in operators, operators


def test_edge_bundle_loads_and_embeds_with_the_runtime(edge_bundle):
    with layerwise.load(edge_bundle, provider="cpu", threads=1) as enc:
        assert enc.info.variant == "int8"
        assert enc.embed(["an edge device"], layers=[0, -1]).shape == (1, 2, enc.info.hidden_size)


def test_edge_without_int8_is_refused_up_front(tmp_path, tiny_bert):
    with pytest.raises(ExportError, match=r"--edge compresses the int8 variant, but --variants is fp32: add int8"):
        layerwise.export(str(tiny_bert), tmp_path / "out", variants=["fp32"], edge=True)
    assert not (tmp_path / "out").exists()


def test_block_quantization_keeps_every_value_within_half_a_step():
    table = np.random.default_rng(0).normal(size=(50, 64)).astype(np.float32) * np.linspace(0.01, 10, 64, dtype=np.float32)
    q, scales = quantize_blocks(table, block=32)
    restored = (q.astype(np.float32) * scales).reshape(50, 64)
    assert np.all(np.abs(restored - table) <= np.repeat(scales, 32, axis=-1).reshape(50, 64) / 2 + 1e-7)


def test_hidden_state_0_below_its_bar_fails_the_export_naming_the_fix():
    with pytest.raises(
        ExportError, match=r"hidden_state_0 mean-pooled cosine to PyTorch is 0.99810 on the worst text, below 0.999.*export without --edge"
    ):
        check_hidden_state_0({"layers": [{"pooled_cos_min": 0.9981}]})


def test_the_ort_format_converter_prints_nothing(tiny_bundle, tmp_path, capfd, caplog):
    """ONNX Runtime's converter prints and logs every scratch path it touches (~30 lines per export): silenced."""
    import logging

    caplog.set_level(logging.INFO)
    import shutil

    from layerwise.exporter.edge import write_ort_format

    shutil.copyfile(tiny_bundle / "pool.mean.onnx", tmp_path / "pool.mean.onnx")
    section = write_ort_format(tmp_path, ["pool.mean.onnx"], lambda path: {"path": path.name})
    assert section["graphs"] == {"pool.mean.onnx": {"path": "pool.mean.ort"}} and (tmp_path / "pool.mean.ort").is_file()
    assert capfd.readouterr() == ("", "")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("ort_format_model")] == []
