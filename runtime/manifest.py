"""The bundle manifest: the one contract shared by the exporter and the runtime.

A bundle is a folder holding ``manifest.json``, the tokenizer, one ONNX graph per
variant and three tiny pooling graphs. This module names those pieces and holds the
manifest as dataclasses: the exporter builds a ``Manifest`` and writes it, the runtime
reads the same types back, validated. It imports nothing heavy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError

FORMAT = "layerwise-bundle"
# Version 2 added the graph inputs (``inputs``). A bundle whose graphs take version 1's fixed three
# inputs is still written as version 1, with the field, so older readers keep reading BERT bundles.
FORMAT_VERSION = 2
FORMAT_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"
VERIFICATION_NAME = "verification.npz"
# What the runtime feeds each graph input, by role, and the name the exporter gives it (transformers').
INPUT_ROLES = {"ids": "input_ids", "mask": "attention_mask", "type_ids": "token_type_ids"}
REQUIRED_ROLES = ("ids", "mask")
INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")
PROVIDERS = ("cpu", "cuda")
# Every variant and the providers it runs on correctly, the one it is built for first. The
# exporter records this per variant in the manifest; everything else asks the manifest.
VARIANT_PROVIDERS = {"fp32": ("cpu", "cuda"), "fused": ("cpu", "cuda"), "int8": ("cpu",), "fp16": ("cuda", "cpu")}
VARIANTS = tuple(VARIANT_PROVIDERS)
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


def _require(data: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    if not isinstance(data, dict):
        raise BundleError(f"manifest field {where.rstrip('.') or 'root'} must be an object; re-export the bundle")
    if key not in data:
        raise BundleError(f"manifest is missing the field {where}{key!r}; re-export the bundle with `layerwise export`")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise BundleError(f"manifest field {where}{key!r} must be {names}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class FileEntry:
    """A file of the bundle with the size and digest recorded at export time."""

    path: str
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}

    @staticmethod
    def from_json(data: Any, where: str) -> FileEntry:
        try:
            return FileEntry(path=str(data["path"]), bytes=int(data["bytes"]), sha256=str(data["sha256"]))
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"manifest field {where} must be an object with path, bytes and sha256 ({e!r})") from e


@dataclass(frozen=True)
class GraphInput:
    """One int64 [batch, sequence] input of every variant's graph and what the runtime feeds it."""

    name: str
    role: str  # a key of INPUT_ROLES: "ids", "mask" (1 real, 0 padding) or "type_ids"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}


# Version 1 bundles record no inputs: their graphs take these three.
LEGACY_INPUTS = tuple(GraphInput(name, role) for role, name in INPUT_ROLES.items())


def parse_inputs(data: Any) -> tuple[GraphInput, ...]:
    """The manifest's ``inputs`` list, checked: known roles, ids and mask present, no name or role twice."""
    if not isinstance(data, list) or not data:
        raise BundleError("manifest field 'inputs' must be a non-empty list of {name, role}; re-export the bundle")
    inputs = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("role"), str):
            raise BundleError(f"manifest field inputs[{i}] must be an object with string name and role, got {item!r}")
        if not INPUT_NAME.match(item["name"]):
            raise BundleError(f"manifest field inputs[{i}].name {item['name']!r} is not a valid graph input name")
        if item["role"] not in INPUT_ROLES:
            raise BundleError(f"manifest field inputs[{i}].role {item['role']!r} is unknown; roles: {', '.join(INPUT_ROLES)}")
        inputs.append(GraphInput(item["name"], item["role"]))
    names, roles = [i.name for i in inputs], [i.role for i in inputs]
    missing = [r for r in REQUIRED_ROLES if r not in roles]
    if len(set(names)) != len(names) or len(set(roles)) != len(roles) or missing:
        raise BundleError(
            f"manifest field 'inputs' must name each input and role once and include roles {', '.join(REQUIRED_ROLES)}; got {data}"
        )
    return tuple(inputs)


def _session_config(data: Any, where: str) -> dict[str, str]:
    """Session config entries every loader sets for a variant (js/src/manifest.js reads the same field)."""
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise BundleError(f"manifest field {where}session_config must map config keys to string values, got {data!r}")
    return dict(data)


@dataclass(frozen=True)
class BuildReport:
    """How a variant's graph was made: the same shape for every variant."""

    method: str
    fused_operators: dict[str, int] = field(default_factory=dict)  # fused ONNX Runtime operators by type
    kept_float: list[dict[str, Any]] = field(default_factory=list)  # what stayed float32, and why
    details: dict[str, Any] = field(default_factory=dict)  # the variant's own figures (int8: alpha, calibration)
    session_config: dict[str, str] = field(default_factory=dict)  # ONNX Runtime config entries every loader sets

    KEYS = ("method", "fused_operators", "kept_float", "session_config")


@dataclass(frozen=True)
class Variant:
    """One exported graph: its files, where it runs, how it was built and how close it is to PyTorch."""

    name: str
    graph: FileEntry
    external_data: tuple[FileEntry, ...]
    providers: tuple[str, ...]  # where it runs correctly; the one it is built (and fastest) for first
    build: BuildReport
    parity: dict[str, Any]  # bars and per-layer figures from the export's parity check
    export_seconds: float

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return (self.graph, *self.external_data)

    @property
    def built_for(self) -> str:
        return self.providers[0]

    def to_json(self) -> dict[str, Any]:
        """Build fields sit beside the files, as in every bundle written so far."""
        build = self.build
        return {
            "graph": self.graph.to_json(),
            "external_data": [e.to_json() for e in self.external_data],
            "providers": list(self.providers),
            "method": build.method,
            "fused_operators": build.fused_operators,
            "kept_float": build.kept_float,
            "session_config": build.session_config,
            **build.details,
            "parity": self.parity,
            "export_seconds": self.export_seconds,
        }

    @staticmethod
    def from_json(name: str, data: Any) -> Variant:
        where = f"variants.{name}."
        if name not in VARIANTS:
            raise BundleError(f"manifest names an unknown variant {name!r}; known variants: {', '.join(VARIANTS)}")
        providers = tuple(_require(data, "providers", list, where))
        if not providers or any(p not in PROVIDERS for p in providers):
            raise BundleError(f"manifest field {where}providers must list some of {', '.join(PROVIDERS)}, got {list(providers)}")
        known = {"graph", "external_data", "providers", "parity", "export_seconds", *BuildReport.KEYS}
        return Variant(
            name=name,
            graph=FileEntry.from_json(data.get("graph"), f"{where}graph"),
            external_data=tuple(FileEntry.from_json(e, f"{where}external_data") for e in data.get("external_data", [])),
            providers=providers,
            build=BuildReport(
                method=str(data.get("method", "")),
                fused_operators=dict(data.get("fused_operators") or {}),
                kept_float=list(data.get("kept_float") or []),
                details={k: v for k, v in data.items() if k not in known},
                session_config=_session_config(data.get("session_config", {}), where),
            ),
            parity=_require(data, "parity", dict, where),
            export_seconds=float(_require(data, "export_seconds", (int, float), where)),
        )


@dataclass(frozen=True)
class ModelInfo:
    """The encoder's shape and its tokenizer's facts."""

    model_type: str
    architecture: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    max_length: int
    max_position_embeddings: int
    vocab_size: int
    pad_token_id: int

    @staticmethod
    def from_json(data: Any) -> ModelInfo:
        kinds = {"model_type": str, "architecture": str}
        return ModelInfo(**{f: _require(data, f, kinds.get(f, int), "model.") for f in ModelInfo.__dataclass_fields__})


@dataclass(frozen=True)
class Source:
    """Where the checkpoint came from; ``config`` is its config.json as transformers read it."""

    id_or_path: str
    local_path: str | None
    revision: str | None
    config: dict[str, Any]

    @staticmethod
    def from_json(data: Any) -> Source:
        optional = (str, type(None))
        return Source(
            id_or_path=_require(data, "id_or_path", str, "source."),
            local_path=_require(data, "local_path", optional, "source."),
            revision=_require(data, "revision", optional, "source."),
            config=_require(data, "config", dict, "source."),
        )


@dataclass(frozen=True)
class Verification:
    """PyTorch reference vectors stored at export (``verification.npz``) and each variant's pooled bars."""

    file: FileEntry
    bars: dict[str, dict[str, float]]  # variant -> {"pooled_max_abs" | "pooled_cos_mean" | "pooled_cos_min": bar}

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file.to_json(), "bars": self.bars}

    @staticmethod
    def from_json(data: Any) -> Verification:
        bars = _require(data, "bars", dict, "verification.")
        return Verification(
            file=FileEntry.from_json(data.get("file"), "verification.file"),
            bars={variant: {metric: float(bar) for metric, bar in dict(b).items()} for variant, b in bars.items()},
        )


@dataclass(frozen=True)
class Manifest:
    """Everything a bundle records about itself, validated on read and checked again on write."""

    created_utc: str
    source: Source
    model: ModelInfo
    default_pooling: dict[str, Any]  # {"pool", "normalize", "source"[, "note"]}: the checkpoint's own pooling
    tokenizer: FileEntry
    pooling: dict[str, FileEntry]
    variants: dict[str, Variant]
    parity_set: dict[str, Any]  # what the parity checks ran on (batches, texts, tokens)
    versions: dict[str, str]
    verification: Verification | None = None  # absent in bundles exported before `layerwise verify` existed
    ort_format: dict[str, Any] = field(default_factory=dict)  # edge bundles: ORT-format graphs, required_operators.config
    inputs: tuple[GraphInput, ...] = LEGACY_INPUTS  # the graphs' inputs, in graph order

    @property
    def format_version(self) -> int:
        """1 when the graphs take version 1's fixed inputs (older readers can run them), else 2."""
        return 1 if self.inputs == LEGACY_INPUTS else FORMAT_VERSION

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [output_name(i) for i in range(self.model.num_layers + 1)]

    def variants_built_for(self, provider: str) -> list[str]:
        """The bundle's variants built for ``provider`` (fp32, fused, int8 for "cpu"), in export order."""
        return [name for name, variant in self.variants.items() if variant.built_for == provider]

    def graph_contract(self) -> dict[str, Any]:
        """The inputs and outputs every variant's graph has, written out for readers of the JSON."""
        hidden = self.model.hidden_size
        outputs = [
            {
                "name": name,
                "dtype": "float32",
                "shape": ["batch", "sequence", hidden],
                "meaning": "embedding output" if i == 0 else f"output of encoder layer {i}",
            }
            for i, name in enumerate(self.output_names)
        ]
        return {
            "inputs": [{**i.to_json(), "dtype": "int64", "shape": ["batch", "sequence"]} for i in self.inputs],
            "outputs": outputs,
            "padding": "right: attention_mask is 1 for real tokens, then 0 for padding",
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "created_utc": self.created_utc,
            "source": vars(self.source),
            "model": vars(self.model),
            "default_pooling": self.default_pooling,
            "inputs": [i.to_json() for i in self.inputs],
            "graph_contract": self.graph_contract(),
            "tokenizer": self.tokenizer.to_json(),
            "pooling_graphs": {kind: entry.to_json() for kind, entry in self.pooling.items()},
            "variants": {name: variant.to_json() for name, variant in self.variants.items()},
            "parity_set": self.parity_set,
            "versions": self.versions,
            **({"verification": self.verification.to_json()} if self.verification else {}),
            **({"ort_format": self.ort_format} if self.ort_format else {}),
        }


def parse_manifest(data: dict[str, Any]) -> Manifest:
    """Validate a manifest's JSON object and return it as a Manifest (unknown fields are ignored)."""
    if data.get("format") != FORMAT:
        raise BundleError(f"not a layerwise bundle manifest: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("format_version")
    if version not in FORMAT_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"bundle format version {version!r} is not supported by this layerwise (it reads versions "
            f"{', '.join(map(str, FORMAT_VERSIONS))}); re-export the bundle or install a matching layerwise"
        )
    if version >= 2 and "inputs" not in data:
        raise BundleError(f"manifest format version {version} must list the graph 'inputs'; re-export the bundle")
    variants_json = _require(data, "variants", dict)
    if not variants_json:
        raise BundleError("manifest lists no variants; re-export the bundle")
    pooling_json = _require(data, "pooling_graphs", dict)
    missing_pools = set(POOLING_KINDS) - set(pooling_json)
    if missing_pools:
        raise BundleError(f"manifest lacks the pooling graphs {sorted(missing_pools)}; re-export the bundle")
    return Manifest(
        created_utc=str(data.get("created_utc", "")),
        source=Source.from_json(_require(data, "source", dict)),
        model=ModelInfo.from_json(_require(data, "model", dict)),
        default_pooling=dict(_require(data, "default_pooling", dict)),
        tokenizer=FileEntry.from_json(data.get("tokenizer"), "tokenizer"),
        pooling={k: FileEntry.from_json(pooling_json[k], f"pooling_graphs.{k}") for k in POOLING_KINDS},
        variants={name: Variant.from_json(name, entry) for name, entry in variants_json.items()},
        parity_set=dict(data.get("parity_set") or {}),
        versions=dict(data.get("versions") or {}),
        verification=Verification.from_json(data["verification"]) if "verification" in data else None,
        ort_format=dict(data.get("ort_format") or {}),
        inputs=parse_inputs(data["inputs"]) if "inputs" in data else LEGACY_INPUTS,
    )


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``manifest.json`` from a bundle folder."""
    bundle = Path(bundle_dir)
    if bundle.is_file():
        raise BundleError(f"{str(bundle)!r} is a file; pass the bundle folder that holds {MANIFEST_NAME} instead: {str(bundle.parent)!r}")
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
