"""The bundle manifest: the one contract shared by the exporter and the runtime.

A bundle is a folder holding ``manifest.json``, the tokenizer, one ONNX graph per
variant and three tiny pooling graphs. This module names those pieces, reads and
validates the manifest, and writes it; it imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError

FORMAT = "layerwise-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
VARIANTS = ("fp32", "fused", "int8", "fp16")
POOLING_KINDS = ("mean", "max", "cls")
POOLING_INPUTS = ("hidden_state", "attention_mask")
POOLING_OUTPUT = "pooled"


def output_name(layer: int) -> str:
    """Graph output holding hidden state ``layer`` (0 is the embedding output)."""
    return f"hidden_state_{layer}"


def variant_file(variant: str) -> str:
    """File name of a variant's graph inside the bundle."""
    return f"model.{variant}.onnx"


def pooling_file(kind: str) -> str:
    """File name of a pooling graph inside the bundle."""
    return f"pool.{kind}.onnx"


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle with the size and digest recorded at export time."""

    path: str
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class Variant:
    """One exported graph: its files, and the export-time report kept as plain JSON."""

    name: str
    graph: FileEntry
    external_data: tuple[FileEntry, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return (self.graph, *self.external_data)


@dataclass(frozen=True)
class Manifest:
    """What the runtime needs to know about a bundle, validated on read."""

    model_type: str
    num_layers: int
    hidden_size: int
    max_length: int
    tokenizer: FileEntry
    pooling: dict[str, FileEntry]
    variants: dict[str, Variant]
    default_pooling: dict[str, Any]
    raw: dict[str, Any]

    @property
    def output_names(self) -> list[str]:
        return [output_name(i) for i in range(self.num_layers + 1)]


def _file_entry(data: Any, where: str) -> FileEntry:
    try:
        entry = FileEntry(path=str(data["path"]), bytes=int(data["bytes"]), sha256=str(data["sha256"]))
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"manifest field {where} must be an object with path, bytes and sha256 ({e!r})") from e
    return entry


def _require(data: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    if key not in data:
        raise BundleError(f"manifest is missing the field {where}{key!r}; re-export the bundle with `layerwise export`")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise BundleError(f"manifest field {where}{key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def parse_manifest(data: dict[str, Any]) -> Manifest:
    """Validate a manifest's JSON object and return it as a Manifest."""
    if data.get("format") != FORMAT:
        raise BundleError(f"not a layerwise bundle manifest: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version!r} is not supported by this layerwise (it reads version "
            f"{FORMAT_VERSION}); re-export the bundle or install a matching layerwise"
        )
    model = _require(data, "model", dict)
    variants_json = _require(data, "variants", dict)
    if not variants_json:
        raise BundleError("manifest lists no variants; re-export the bundle")
    variants = {}
    for name, entry in variants_json.items():
        if name not in VARIANTS:
            raise BundleError(f"manifest names an unknown variant {name!r}; known variants: {', '.join(VARIANTS)}")
        variants[name] = Variant(
            name=name,
            graph=_file_entry(entry.get("graph"), f"variants.{name}.graph"),
            external_data=tuple(
                _file_entry(e, f"variants.{name}.external_data") for e in entry.get("external_data", [])
            ),
            report={k: v for k, v in entry.items() if k not in ("graph", "external_data")},
        )
    pooling_json = _require(data, "pooling_graphs", dict)
    missing_pools = set(POOLING_KINDS) - set(pooling_json)
    if missing_pools:
        raise BundleError(f"manifest lacks the pooling graphs {sorted(missing_pools)}; re-export the bundle")
    return Manifest(
        model_type=_require(model, "model_type", str, "model."),
        num_layers=_require(model, "num_layers", int, "model."),
        hidden_size=_require(model, "hidden_size", int, "model."),
        max_length=_require(model, "max_length", int, "model."),
        tokenizer=_file_entry(data.get("tokenizer"), "tokenizer"),
        pooling={k: _file_entry(pooling_json[k], f"pooling_graphs.{k}") for k in POOLING_KINDS},
        variants=variants,
        default_pooling=dict(data.get("default_pooling") or {"pool": "mean", "normalize": False}),
        raw=data,
    )


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``manifest.json`` from a bundle folder."""
    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise BundleError(f"bundle folder {str(bundle)!r} does not exist; create one with `layerwise export SOURCE --out {bundle}`")
    path = bundle / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{str(bundle)!r} has no {MANIFEST_NAME}: it is not a layerwise bundle (or its export did not finish)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} is not valid JSON ({e}); re-export the bundle") from e
    if not isinstance(data, dict):
        raise BundleError(f"{path} must hold a JSON object")
    return parse_manifest(data)


def write_manifest(bundle_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write a manifest after checking that it parses back; return its path."""
    parse_manifest(data)
    path = Path(bundle_dir) / MANIFEST_NAME
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
