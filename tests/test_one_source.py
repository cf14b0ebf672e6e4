"""Each decision has one source that the others ask: variants, providers, pooling kinds, the manifest."""

from __future__ import annotations

import json

from layerwise.cli import build_parser
from layerwise.exporter import pooling_graphs
from layerwise.exporter.builders import BUILDERS, build_order
from layerwise.runtime import session
from layerwise.runtime.manifest import POOLING_KINDS, PROVIDERS, VARIANT_PROVIDERS, VARIANTS, read_manifest


def test_every_variant_has_one_builder_built_after_what_it_starts_from():
    assert list(BUILDERS) == list(VARIANTS) == list(VARIANT_PROVIDERS)
    assert build_order(["fp16"]) == ["fp32", "fp16"]  # fp16 runs its own fusion (SkipLayerNormalization kept)
    assert build_order(["fp16", "fused"]) == ["fp32", "fused", "fp16"]
    assert build_order(["int8", "fused"]) == ["fp32", "fused", "int8"]
    assert build_order(["fp32"]) == ["fp32"]


def test_names_the_cli_offers_come_from_the_manifest_module():
    export = build_parser().parse_args(["export", "src", "--out", "b"])
    assert export.variants == ",".join(VARIANTS)
    embed = build_parser()._subparsers._group_actions[0].choices["embed"]  # type: ignore[union-attr]
    choices = {a.dest: a.choices for a in embed._actions if a.choices}
    assert list(choices["variant"]) == list(VARIANTS) and list(choices["provider"]) == ["auto", *PROVIDERS]


def test_providers_and_pooling_kinds_are_the_manifests():
    assert tuple(session.PROVIDERS) == PROVIDERS
    assert tuple(pooling_graphs.BUILDERS) == POOLING_KINDS


def test_the_manifest_reads_back_exactly_as_the_exporter_wrote_it(tiny_bundle):
    written = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest = read_manifest(tiny_bundle)
    assert manifest.to_json() == written
    assert manifest.variants["fused"].build.fused_operators["Attention"] == 1
    assert manifest.variants["fused"].build.details["expected_fused_operators"]["Attention"] == 1
    assert manifest.model.pad_token_id == 0 and manifest.model.vocab_size > 1000


def test_the_loader_ranks_every_variant():
    from layerwise.runtime.loader import FASTEST_FIRST

    assert sorted(FASTEST_FIRST) == sorted(VARIANTS)


def test_serve_flags_take_the_server_settings_defaults():
    from layerwise.server.settings import Settings

    serve = build_parser().parse_args(["serve", "b"])
    fields = [f for f in Settings.__dataclass_fields__ if f not in ("bundle", "api_key")]
    assert {f: getattr(serve, f) for f in fields} == {f: Settings.__dataclass_fields__[f].default for f in fields}


def test_one_batch_size_default_for_every_entry_point():
    import inspect

    from layerwise.ray.embedder import Embedder
    from layerwise.runtime import EmbedOptions, Encoder
    from layerwise.runtime.options import BATCH_SIZE

    signatures = [inspect.signature(getattr(Encoder, name)) for name in ("embed", "embed_tokens", "embed_spans")]
    signatures.append(inspect.signature(Embedder.__init__))
    assert [s.parameters["batch_size"].default for s in signatures] == [BATCH_SIZE] * 4
    assert EmbedOptions().batch_size == BATCH_SIZE
    for verb in (["embed", "b"], ["extract", "b", "--input", "i", "--output", "o"], ["probe", "b", "d.csv"]):
        assert build_parser().parse_args(verb).batch_size == BATCH_SIZE
def test_the_export_page_family_table_is_the_exporters_family_table():
    """docs/export.md 'Encoder families' lists exactly exporter/families.py's families, names and test kind."""
    from pathlib import Path

    from layerwise.exporter.families import FAMILIES

    page = (Path(__file__).resolve().parent.parent / "docs" / "export.md").read_text(encoding="utf-8")
    section = page.split("\n## Encoder families", 1)[1].split("\n#", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and "`" in line.split("|")[2]
    ]
    assert [(row[1].strip("`"), row[0]) for row in rows] == [(key, family.name) for key, family in FAMILIES.items()]
    for row in rows:
        family = FAMILIES[row[1].strip("`")]
        assert row[-1].startswith("random weights only") == (family.int8_checked_on == "random weights"), row
