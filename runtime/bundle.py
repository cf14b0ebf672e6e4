"""Open a bundle folder safely: every file inside it, every digest as recorded.

Checks run before ONNX Runtime reads anything: manifest paths and the graphs'
external-data locations must stay inside the bundle (no ``..``, absolute paths or
symlinks leading out; the path-traversal class of CVE-2022-25882 and CVE-2024-27318),
and every file must have the size and sha256 the manifest records.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import BundleError
from .manifest import FileEntry, Manifest, Variant, read_manifest
from .onnx_graph import external_data_locations
from .protowire import WireFormatError

CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedGraph:
    """A verified ONNX graph held in memory, with the folder its external data lives in."""

    name: str
    model_bytes: bytes
    folder: Path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inside(bundle: Path, relative: str, what: str) -> Path:
    """Resolve ``relative`` inside the bundle, refusing anything that leads out of it."""
    pure = PurePosixPath(relative.replace("\\", "/"))
    if (
        not relative
        or pure.is_absolute()
        or PureWindowsPath(relative).is_absolute()
        or PureWindowsPath(relative).drive
        or ".." in pure.parts
    ):
        raise BundleError(f"{what} refers to {relative!r}, which is outside the bundle folder; refusing to load it")
    root = bundle.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise BundleError(
            f"{what} refers to {relative!r}, which resolves to {target} outside the bundle folder "
            "(a symbolic link?); refusing to load it"
        )
    return target


def _verify_file(bundle: Path, entry: FileEntry, what: str) -> Path:
    path = _inside(bundle, entry.path, what)
    if not path.is_file():
        raise BundleError(f"{what} {entry.path!r} is missing from the bundle {str(bundle)!r}; re-export the bundle")
    size = path.stat().st_size
    if size != entry.bytes:
        raise BundleError(
            f"{what} {entry.path!r} has {size} bytes but the manifest records {entry.bytes}: "
            "the file is truncated or was changed; re-export the bundle"
        )
    if sha256_of(path) != entry.sha256:
        raise BundleError(
            f"{what} {entry.path!r} does not match the sha256 in the manifest: the file was changed "
            "after export; re-export the bundle"
        )
    return path


def load_graph(bundle: Path, graph: FileEntry, external_data: tuple[FileEntry, ...] = (), what: str = "graph") -> LoadedGraph:
    """Read a graph, check its external-data references, then verify every file's digest."""
    path = _inside(bundle, graph.path, what)
    if not path.is_file():
        raise BundleError(f"{what} {graph.path!r} is missing from the bundle {str(bundle)!r}; re-export the bundle")
    model_bytes = path.read_bytes()
    try:
        locations = external_data_locations(model_bytes)
    except (WireFormatError, ValueError) as e:
        raise BundleError(f"{what} {graph.path!r} is not a readable ONNX file ({e}); re-export the bundle") from e
    listed = {e.path for e in external_data}
    for location in sorted(locations):
        _inside(path.parent, location, f"{what} {graph.path!r} external data")
        if location not in listed:
            raise BundleError(
                f"{what} {graph.path!r} refers to external data {location!r} that the manifest does not list; "
                "refusing to load unverified weights"
            )
    if len(model_bytes) != graph.bytes or hashlib.sha256(model_bytes).hexdigest() != graph.sha256:
        raise BundleError(
            f"{what} {graph.path!r} does not match the size and sha256 in the manifest: the file is truncated "
            "or was changed after export; re-export the bundle"
        )
    for entry in external_data:
        _verify_file(bundle, entry, f"{what} external data")
    return LoadedGraph(name=graph.path, model_bytes=model_bytes, folder=path.parent)


@dataclass(frozen=True)
class Bundle:
    """A bundle whose manifest was read; graphs are verified as they are loaded."""

    path: Path
    manifest: Manifest

    def tokenizer_path(self) -> Path:
        return _verify_file(self.path, self.manifest.tokenizer, "tokenizer")

    def variant_graph(self, variant: Variant) -> LoadedGraph:
        return load_graph(self.path, variant.graph, variant.external_data, f"variant {variant.name!r} graph")

    def pooling_graph(self, kind: str) -> LoadedGraph:
        return load_graph(self.path, self.manifest.pooling[kind], (), f"pooling graph {kind!r}")


def open_bundle(bundle_dir: str | os.PathLike[str]) -> Bundle:
    """Read the manifest of a bundle folder (files are verified when loaded)."""
    path = Path(bundle_dir)
    return Bundle(path=path, manifest=read_manifest(path))
