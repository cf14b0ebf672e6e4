"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over it.

A reader sees the previous file or the complete new one, never a truncated one. While it is
written the temporary file is locked (``flock``); the next write of the same target removes
temporaries that no live writer holds (left by a killed run). Standard library only: the
runtime, the CLI, the exporter and the benchmarks all write through here.

Example:
    >>> with atomic_write("out.npy") as f:
    ...     np.save(f, array)
"""

from __future__ import annotations

import glob
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

from ..runtime.errors import LayerwiseError


class OutputError(LayerwiseError, OSError):
    """An output file cannot be written where asked (missing folder, no permission, a folder in the way)."""


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no sweep of stale temporaries, writes stay atomic
    fcntl = None  # type: ignore[assignment]

PARTIAL_MARK = ".partial-"


def partial_prefix(target: Path) -> str:
    """The name every temporary of ``target`` starts with: ``.NAME.partial-``."""
    return f".{target.name}{PARTIAL_MARK}"


def lock_if_current(fd: int, path: Path) -> bool:
    """Lock ``fd`` exclusively without waiting; True only if no one else holds it and ``path``
    still names that file (a holder may have removed it just before we locked)."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def remove_stale_partials(target: Path) -> None:
    """Delete temporary files of ``target`` that no live writer holds."""
    for name in glob.glob(glob.escape(str(target.parent / partial_prefix(target))) + "*"):
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue  # a link, or gone already
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode) and lock_if_current(fd, Path(name)):
                os.unlink(name)
        except OSError:
            pass  # removed by another sweeper meanwhile
        finally:
            os.close(fd)


def check_writable(path: str | Path, flag: str = "--output") -> Path:
    """Fail now, naming the path and the problem, if a file cannot be written at ``path``."""
    target = Path(path).expanduser().absolute()
    parent = target.parent
    problem = None
    if target.is_dir():
        problem = "it is a folder; give a file name"
    elif not parent.exists():
        problem = f"the folder {str(parent)!r} does not exist; create it first"
    elif not parent.is_dir():
        problem = f"{str(parent)!r} is a file, not a folder"
    else:
        try:  # the only reliable test (read-only mounts, ACLs, root): create a file there
            fd, probe = tempfile.mkstemp(prefix=f".{target.name}.probe-", dir=parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            problem = f"cannot create files in {str(parent)!r} ({e.strerror or e})"
    if problem:
        raise OutputError(f"cannot write {flag} {str(path)!r}: {problem}")
    return target


@cache
def current_umask() -> int:
    """The process's umask, read once (reading it means setting it, which is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _locked_temporary(target: Path) -> tuple[int, Path]:
    while True:
        fd, name = tempfile.mkstemp(prefix=partial_prefix(target), dir=target.parent)
        if lock_if_current(fd, Path(name)):
            return fd, Path(name)
        os.close(fd)  # a sweeper took it between creation and lock: make another


@contextmanager
def atomic_path(path: str | Path) -> Iterator[tuple[int, Path]]:
    """Yield (descriptor, path) of a locked temporary file beside ``path`` that replaces ``path`` only
    on success, fsynced (a writer that opens the path itself, as h5py does, writes the same inode)."""
    target = Path(path)
    remove_stale_partials(target)
    fd, temp = _locked_temporary(target)
    try:
        yield fd, temp
        os.fsync(fd)
        os.chmod(temp, 0o666 & ~current_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | Path, text: bool = False) -> Iterator[IO]:
    """Yield a file object (binary, or UTF-8 text) whose content replaces ``path`` only on success."""
    with atomic_path(path) as (fd, _):
        f: IO[Any] = os.fdopen(fd, "w", closefd=False, encoding="utf-8") if text else os.fdopen(fd, "wb", closefd=False)
        with f:
            yield f
            f.flush()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; return the path."""
    with atomic_write(path, text=True) as f:
        f.write(text)
    return Path(path)
