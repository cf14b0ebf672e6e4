"""Write a bundle atomically: build it in a temporary folder beside the target, then rename; write its manifest.

An interrupted or failed export leaves nothing at the target; an existing bundle is
replaced only when asked to, and only once the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..io.atomic import current_umask, partial_prefix, write_text_atomic
from ..runtime.errors import BundleError
from ..runtime.manifest import FORMAT, MANIFEST_NAME, Manifest, parse_manifest
from .errors import ExportError
from .target_lock import old_prefix, target_lock


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _is_bundle_or_empty(folder: Path) -> bool:
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            return False
    return not any(folder.iterdir())


def check_target(out_dir: Path, force: bool) -> None:
    """Refuse early what would fail late: an existing bundle without force, a folder that is not
    a bundle (never replaced, even with force), an unusable parent."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{str(out_dir)!r} exists and is not a folder; choose another --out")
    if out_dir.exists() and not force:
        raise ExportError(f"{str(out_dir)!r} already exists; pass --force (force=True) to replace it")
    if out_dir.exists() and not _is_bundle_or_empty(out_dir):
        raise ExportError(
            f"{str(out_dir)!r} is not a layerwise bundle (no layerwise manifest.json) and not empty; "
            "--force only replaces bundles: choose another --out"
        )
    for parent in out_dir.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError(f"cannot write the bundle to {str(out_dir)!r}: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ExportError(f"cannot write the bundle to {str(out_dir)!r}: no write permission in {str(parent)!r}")
            break


def _unwritable(out_dir: Path, e: OSError) -> ExportError:
    return ExportError(f"cannot write the bundle to {str(out_dir)!r}: {e.strerror or e}; choose another --out")


@contextmanager
def atomic_bundle(out_dir: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``out_dir``, on failure it vanishes.

    The target's export lock is held throughout: a second export of the same target is refused
    at once, naming this one, and a dead export's partial folder is removed (see target_lock)."""
    check_target(out_dir, force)
    created = _missing_parents(out_dir)
    try:
        try:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _unwritable(out_dir, e) from e
        with target_lock(out_dir):
            check_target(out_dir, force)  # again: another export may have finished meanwhile
            try:
                work = Path(tempfile.mkdtemp(prefix=partial_prefix(out_dir), dir=out_dir.parent))
                work.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; a bundle is an ordinary folder
            except OSError as e:
                raise _unwritable(out_dir, e) from e
            try:
                yield work
                _move_into_place(work, out_dir)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        for parent in created:
            shutil.rmtree(parent, ignore_errors=True)
        raise


def _move_into_place(work: Path, out_dir: Path) -> None:
    """Rename the finished folder to ``out_dir``; a previous bundle is swapped out, then deleted."""
    if not out_dir.exists():
        os.replace(work, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=old_prefix(out_dir), dir=out_dir.parent))
    os.replace(out_dir, old / "bundle")
    try:
        os.replace(work, out_dir)
    except OSError:
        os.replace(old / "bundle", out_dir)  # put the previous bundle back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write a manifest after checking that its JSON reads back as the same Manifest; return its path."""
    data = json.loads(json.dumps(manifest.to_json()))
    if parse_manifest(data).to_json() != data:
        raise BundleError("the manifest does not read back as written; this is a layerwise bug")
    path = Path(bundle_dir) / MANIFEST_NAME
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
