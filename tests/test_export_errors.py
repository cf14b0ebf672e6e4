"""Bad input to the exporter: each a clear error, and never a partial bundle left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import layerwise
from layerwise.exporter import ExportError, ParityError

from .models import save_gpt2


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    if out.parent.exists():
        assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_missing_local_path_names_the_path(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"source '/no/such/model' does not exist"):
        layerwise.export("/no/such/model", out)
    _no_leftovers(out)


def test_unreachable_hub_id_is_a_clear_error_offline(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "layerwise.cli", "-q", "export", "no-org/no-such-model", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "could not read the model config of 'no-org/no-such-model'" in result.stderr
    _no_leftovers(out)


def test_unsupported_architecture_names_what_is_supported(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(
        ExportError,
        match=r"model type 'gpt2' \(GPT2Model\) is not supported: layerwise exports the encoders of BERT, ALBERT, ELECTRA, RoBERTa, "
        r"XLM-RoBERTa, DistilBERT, MPNet, DeBERTa-v2/v3, ModernBERT \(model types bert, albert, electra, roberta, xlm-roberta, "
        r"distilbert, mpnet, deberta-v2, modernbert\)",
    ):
        layerwise.export(str(save_gpt2(tmp_path / "gpt2")), out)
    _no_leftovers(out)


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_damaged_weights_file_is_named_as_corrupt_or_truncated(tmp_path, tiny_bert, damage):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for f in tiny_bert.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" * 100 if damage == "corrupt" else data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="corrupt or truncated"):
        layerwise.export(str(folder), out)
    _no_leftovers(out)


def test_pickle_checkpoint_needs_allow_pickle(tmp_path, tiny_bert):
    import torch
    import transformers

    folder = tmp_path / "pickle"
    model = transformers.BertModel.from_pretrained(tiny_bert)
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (folder / name).write_bytes((tiny_bert / name).read_bytes())
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(ExportError, match="only pickle weights .* pass --allow-pickle if you trust"):
        layerwise.export(str(folder), tmp_path / "refused")
    _no_leftovers(tmp_path / "refused")
    assert layerwise.export(str(folder), tmp_path / "ok", variants=["fp32"], allow_pickle=True).is_dir()


def test_output_under_a_file_is_refused_before_any_work(tmp_path, tiny_bert):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        layerwise.export(str(tiny_bert), blocker / "bundle")


def test_unwritable_output_is_a_clear_error(tmp_path, tiny_bert):
    with pytest.raises(ExportError, match="cannot write the bundle to '/proc/layerwise-test'"):
        layerwise.export(str(tiny_bert), "/proc/layerwise-test", variants=["fp32"])


def test_existing_bundle_is_replaced_only_with_force(tmp_path, tiny_bert):
    out = tmp_path / "bundle"
    layerwise.export(str(tiny_bert), out, variants=["fp32"])
    first = (out / "manifest.json").read_text()
    with pytest.raises(ExportError, match="already exists; pass --force"):
        layerwise.export(str(tiny_bert), out, variants=["fp32"])
    assert (out / "manifest.json").read_text() == first
    layerwise.export(str(tiny_bert), out, variants=["fused"], force=True)
    assert (out / "model.fused.onnx").exists() and not (out / "model.fp32.onnx").exists()


def test_failed_parity_leaves_nothing_and_keeps_the_old_bundle(tmp_path, tiny_bert):
    fresh = tmp_path / "fresh"
    with pytest.raises(ParityError, match=r"variant 'fp32' is further from PyTorch than allowed.*layer \d: max abs difference"):
        layerwise.export(str(tiny_bert), fresh, variants=["fp32"], thresholds=["fp32.max_abs=0"])
    _no_leftovers(fresh)
    kept = tmp_path / "kept"
    layerwise.export(str(tiny_bert), kept, variants=["fp32"])
    before = sorted(p.name for p in kept.iterdir())
    with pytest.raises(ParityError):
        layerwise.export(str(tiny_bert), kept, variants=["fp32"], force=True, thresholds=["fp32.max_abs=0"])
    assert sorted(p.name for p in kept.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kept.")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variants": ["fp64"]}, r"unknown variant\(s\) \['fp64'\]; choose from fp32, fused, int8, fp16"),
        ({"thresholds": ["int8.cosine=1"]}, r"threshold 'int8.cosine=1' names an unknown variant or metric"),
        ({"thresholds": ["nonsense"]}, r"must look like VARIANT.METRIC=NUMBER"),
    ],
)
def test_bad_options_are_refused_up_front(tmp_path, tiny_bert, options, message):
    with pytest.raises(ExportError, match=message):
        layerwise.export(str(tiny_bert), tmp_path / "out", **options)
    _no_leftovers(tmp_path / "out")


def test_force_never_replaces_a_folder_that_is_not_a_bundle(tmp_path, tiny_bert):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(ExportError, match="is not a layerwise bundle .* --force only replaces bundles"):
        layerwise.export(str(tiny_bert), precious, variants=["fp32"], force=True)
    assert (precious / "thesis.txt").read_text() == "years of work"


def test_a_failed_swap_puts_the_previous_bundle_back(tmp_path, tiny_bert, monkeypatch):
    out = tmp_path / "bundle"
    layerwise.export(str(tiny_bert), out, variants=["fp32"])
    before = (out / "manifest.json").read_text()
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.startswith(".bundle.partial-"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        layerwise.export(str(tiny_bert), out, variants=["fused"], force=True)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
