"""One export per target at a time: a lock file beside the target, ``.NAME.lock``.

The lock is an ``flock`` on that file, so it dies with its process (SIGKILL, OOM, a closed
laptop): a lock file nobody holds is free. The file records the owner (pid, host, start)
so that a refused export can name it. Whoever holds the lock owns every partial folder of
the target, so folders left by a dead export (``.NAME.partial-*``, ``.NAME.old-*``) are
removed when the next export of the same target takes the lock, and a live export's never are.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..io.atomic import lock_if_current, partial_prefix
from .errors import ExportError

OLD_MARK = ".old-"  # the previous bundle, moved aside while the new one is renamed into place


def lock_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.lock"


def old_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}{OLD_MARK}"


def _describe_owner(lock: Path) -> str:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
        return f"process {owner['pid']} on {owner['host']}, started {owner['started_utc']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"a process that holds {str(lock)!r}"


def _acquire(lock: Path, out_dir: Path) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if lock_if_current(fd, lock):
            return fd
        os.close(fd)
        try:
            os.stat(lock)
        except FileNotFoundError:
            continue  # its holder finished and removed it between our open and lock
        raise ExportError(
            f"{str(out_dir)!r} is being exported by another {_describe_owner(lock)}; "
            "wait for it to finish (or stop it), or choose another --out"
        )


def _clean_after_dead_export(out_dir: Path) -> None:
    """Remove a dead export's partial folders; put back a bundle it had moved aside and not replaced."""
    parent = out_dir.parent
    for old in sorted(parent.glob(glob.escape(old_prefix(out_dir)) + "*")):
        if not out_dir.exists() and (old / "bundle").is_dir():
            os.replace(old / "bundle", out_dir)
        shutil.rmtree(old, ignore_errors=True)
    for partial in parent.glob(glob.escape(partial_prefix(out_dir)) + "*"):
        if partial.is_dir() and not partial.is_symlink():
            shutil.rmtree(partial, ignore_errors=True)


@contextmanager
def target_lock(out_dir: Path) -> Iterator[None]:
    """Hold the export lock of ``out_dir`` (its parent must exist); refuse at once, naming the
    owner, if a live export holds it. Leftovers of dead exports are removed on entry."""
    lock = lock_path(out_dir)
    try:
        fd = _acquire(lock, out_dir)
    except OSError as e:
        raise ExportError(
            f"cannot write the bundle to {str(out_dir)!r}: cannot create its lock file {str(lock)!r} ({e.strerror or e}); choose "
            "another --out"
        ) from e
    try:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        _clean_after_dead_export(out_dir)
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held: a waiting opener sees it gone and retries
        os.close(fd)
