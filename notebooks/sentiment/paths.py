"""Where things live on disk, safe path segments and atomic writes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
NOTEBOOKS_DIR = PACKAGE_DIR.parent

# A data name/version or output name becomes one directory level: no separators, no dot-dot, no
# leading dot (temporary directories start with one).
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def default_project_root(cwd: Path | None = None) -> Path:
    """The project the notebook runs in, when no `project_root` parameter says so: the repository
    this package was loaded from (the parent of `notebooks/`); or, when the package is an installed
    wheel (Databricks installs it into site-packages), the parent of the notebook's folder, which is
    the working directory of a notebook there."""
    if NOTEBOOKS_DIR.name == "notebooks":
        return NOTEBOOKS_DIR.parent
    cwd = cwd or Path.cwd()
    return cwd.parent if cwd.name == "notebooks" else cwd


def is_safe_segment(value: str) -> bool:
    """True when `value` can be used as a single directory name."""
    return bool(_SAFE_SEGMENT.match(value)) and ".." not in value


class UnsafePathError(ValueError):
    """A name would put a file outside its root (defence in depth behind the spec's checks)."""


def under(root: Path, *segments: str) -> Path:
    """`root/segment/...`, refusing any segment that is not a single safe directory name, and any
    result that is not strictly below `root` once normalised. Names reach the notebooks from specs,
    upstream outputs and run ids; pipectl validates the ones it can see, this holds for the rest."""
    for segment in segments:
        if not is_safe_segment(segment):
            raise UnsafePathError(
                f"{segment!r} cannot be used as a directory name under {root} (letters, digits, '.', "
                "'_', '-', starting with a letter or digit, at most 128 characters, no '..')"
            )
    path = Path(root, *segments)
    base = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([base, full]) != base or full == base:
        raise UnsafePathError(f"{path} is not inside {root}")
    return path


@contextlib.contextmanager
def locked_dir(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on directory `path` (created if missing) while writing into it, and
    yield whether the lock is held. The kernel drops the lock when the process dies, so a writer
    that holds it knows that temporary files other writers left there are debris of a killed one.
    Where locks are not supported (some FUSE mounts, Windows) it yields False and does not wait."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield False
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = True
        except OSError as exc:
            if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL, errno.ENOSYS):
                raise
            held = False
        yield held
    finally:
        os.close(fd)  # releases the lock


def remove_debris(directory: Path, patterns: list[str]) -> list[str]:
    """Remove entries of `directory` matching `patterns` (temporary files and directories of
    writers that were killed). Call only while holding `locked_dir(directory)`. Returns what was
    removed."""
    removed = []
    for pattern in patterns:
        for entry in sorted(directory.glob(pattern)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def write_error(what: str, path: Path, exc: OSError) -> str:
    """A sentence for a failed write: what, where, and the cause in words (disk full, read-only)."""
    causes = {
        errno.ENOSPC: "the file system is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    cause = causes.get(exc.errno or 0, exc.strerror or str(exc))
    where = exc.filename or path
    return f"cannot write {what} to {path}: {cause} ({where})"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    # os.umask can only be read by setting it; do it once, early, before any threads matter.
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def _normal_mode(path: str | os.PathLike[str]) -> None:
    """mkstemp creates files 0600; give them the mode a plain open() would have."""
    os.chmod(path, 0o666 & ~_umask())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a half-written one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _normal_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def temp_path_beside(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name in the same directory as `path` (so a rename onto it is atomic)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    _normal_mode(tmp)
    return Path(tmp)
