"""``layerwise triton``: config.pbtxt parses with Triton's own ModelConfig protobuf (tritonclient's
model_config_pb2) and matches the graph; the repository's graph and tokenizer give the runtime's
vectors. A Triton server itself cannot run here: nothing below starts one."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

import layerwise
from layerwise.cli import main
from layerwise.exporter.texts import PARITY_TEXTS
from layerwise.triton.check import TritonConfigError, check_model


@pytest.fixture(scope="module")
def repo(minilm_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("triton")
    argv = [
        "-q",
        "triton",
        str(minilm_bundle),
        "--out",
        str(out),
        "--variant",
        "int8",
        "--instances",
        "2",
        "--max-batch-size",
        "16",
        "--threads",
        "2",
    ]
    assert main(argv) == 0
    return out / "minilm-int8"


def test_config_parses_as_tritons_model_config_and_states_the_graph_contract(repo):
    from tritonclient.grpc import model_config_pb2 as pb

    config = check_model(repo)
    assert config.name == "minilm-int8" and config.backend == "onnxruntime" and config.max_batch_size == 16
    assert [(i.name, pb.DataType.Name(i.data_type), list(i.dims)) for i in config.input] == [
        (name, "TYPE_INT64", [-1]) for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    assert [(o.name, list(o.dims)) for o in config.output] == [(f"hidden_state_{k}", [-1, 384]) for k in range(7)]
    assert config.instance_group[0].count == 2 and pb.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_CPU"
    assert config.parameters["intra_op_thread_count"].string_value == "2"
    assert config.dynamic_batching.max_queue_delay_microseconds > 0


def test_repository_graph_and_tokenizer_give_the_runtimes_vectors(repo, minilm_bundle):
    """What a Triton client does: tokenize with the copied tokenizer.json, send int64 batches, mean-pool what comes back."""
    side = json.loads((repo / "layerwise.json").read_text())
    tokenizer = Tokenizer.from_file(str(repo / "tokenizer.json"))
    tokenizer.enable_truncation(side["max_length"])
    tokenizer.enable_padding(pad_id=side["pad_token_id"])
    texts = list(PARITY_TEXTS[:6])
    encodings = tokenizer.encode_batch(texts)
    feeds = {
        name: np.array([getattr(e, attr) for e in encodings], dtype=np.int64)
        for name, attr in (("input_ids", "ids"), ("attention_mask", "attention_mask"), ("token_type_ids", "type_ids"))
    }
    session = ort.InferenceSession(str(repo / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (last,) = session.run(["hidden_state_6"], feeds)  # request only the outputs needed
    mask = feeds["attention_mask"][..., None]
    pooled = (last * mask).sum(axis=1) / mask.sum(axis=1)
    want = layerwise.load(minilm_bundle, variant="int8").embed(texts, layers=-1)[:, 0]
    np.testing.assert_allclose(pooled, want, atol=2e-4)


def test_a_config_that_disagrees_with_its_graph_is_refused(repo, tmp_path):
    import shutil

    copy = tmp_path / repo.name
    shutil.copytree(repo, copy)
    config = copy / "config.pbtxt"
    config.write_text(
        config.read_text().replace(
            'name: "hidden_state_3" data_type: TYPE_FP32 dims: [ -1, 384 ]', 'name: "hidden_state_3" data_type: TYPE_FP32 dims: [ -1, 768 ]'
        )
    )
    with pytest.raises(
        TritonConfigError, match=r"output 'hidden_state_3' is TYPE_FP32 \[-1, 768\], the graph has tensor\(float\) \[-1, 384\]"
    ):
        check_model(copy)
    config.write_text(config.read_text().replace("max_batch_size: 16", "max_batch_size: many"))
    with pytest.raises(TritonConfigError, match="is not a valid Triton ModelConfig"):
        check_model(copy)
