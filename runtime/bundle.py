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


def _sized(bundle: Path, entry: FileEntry, what: str) -> Path:
    """The file's path, once it is inside the bundle, present, and of the recorded size."""
    path = _inside(bundle, entry.path, what)
    if not path.is_file():
        raise BundleError(f"{what} {entry.path!r} is missing from the bundle {str(bundle)!r}; re-export the bundle")
    size = path.stat().st_size
    if size != entry.bytes:
        raise BundleError(
            f"{what} {entry.path!r} has {size} bytes but the manifest records {entry.bytes}: "
            "the file is truncated or was changed; re-export the bundle"
        )
    return path


def _check_digest(digest: str, entry: FileEntry, what: str) -> None:
    if digest != entry.sha256:
        raise BundleError(
            f"{what} {entry.path!r} does not match the sha256 in the manifest: the file was changed "
            "after export; re-export the bundle"
        )


def _verify_file(bundle: Path, entry: FileEntry, what: str) -> None:
    """Check a (possibly large) file's size and sha256 without holding it in memory."""
    _check_digest(sha256_of(_sized(bundle, entry, what)), entry, what)


def _read_verified(bundle: Path, entry: FileEntry, what: str) -> bytes:
    """A file's bytes, after checking its size (before reading) and its sha256."""
    data = _sized(bundle, entry, what).read_bytes()
    _check_digest(hashlib.sha256(data).hexdigest(), entry, what)
    return data


def load_graph(
    bundle: Path, graph: FileEntry, external_data: tuple[FileEntry, ...] = (), what: str = "graph", verify_external: bool = True
) -> LoadedGraph:
    """Read and verify a graph, refuse external-data references that leave the bundle or are
    not in the manifest, then verify those files (``verify_external=False`` when already done)."""
    model_bytes = _read_verified(bundle, graph, what)
    folder = _inside(bundle, graph.path, what).parent  # external data is relative to the graph file
    try:
        locations = external_data_locations(model_bytes)
    except (WireFormatError, ValueError, RecursionError) as e:
        raise BundleError(f"{what} {graph.path!r} is not a readable ONNX file ({e}); re-export the bundle") from e
    listed = {e.path for e in external_data}
    for location in sorted(locations):
        _inside(folder, location, f"{what} {graph.path!r} external data")
        if location not in listed:
            raise BundleError(
                f"{what} {graph.path!r} refers to external data {location!r} that the manifest does not list; "
                "refusing to load unverified weights"
            )
    if verify_external:
        for entry in external_data:
            _verify_file(bundle, entry, f"{what} external data")
    return LoadedGraph(name=graph.path, model_bytes=model_bytes, folder=folder)


@dataclass(frozen=True)
class Bundle:
    """A bundle whose manifest was read; graphs are verified as they are loaded."""

    path: Path
    manifest: Manifest

    def tokenizer_json(self) -> str:
        """The verified tokenizer.json text (read once, so what was hashed is what is used)."""
        return _read_verified(self.path, self.manifest.tokenizer, "tokenizer").decode("utf-8")

    def variant_graph(self, variant: Variant, verify_external: bool = True) -> LoadedGraph:
        return load_graph(self.path, variant.graph, variant.external_data, f"variant {variant.name!r} graph", verify_external)

    def verification_reference(self) -> bytes:
        """The verified ``verification.npz`` bytes; a bundle exported without them says how to fix it."""
        if self.manifest.verification is None:
            raise BundleError(
                f"bundle {str(self.path)!r} has no verification reference (exported by an older layerwise); "
                "re-export it with `layerwise export SOURCE --out BUNDLE --force`"
            )
        return _read_verified(self.path, self.manifest.verification.file, "verification reference")

    def pooling_graph(self, kind: str) -> LoadedGraph:
        return load_graph(self.path, self.manifest.pooling[kind], (), f"pooling graph {kind!r}")


def open_bundle(bundle_dir: str | os.PathLike[str]) -> Bundle:
    """Read the manifest of a bundle folder (files are verified when loaded)."""
    path = Path(bundle_dir)
    return Bundle(path=path, manifest=read_manifest(path))
