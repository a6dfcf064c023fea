"""Snapshot blobs: raw bodies, gzip-compressed, named by their SHA-256.

A blob is written to a temporary file, synced, renamed into place and its directory synced, so
a kill leaves either the whole blob or none (at worst a stray temporary file). Blobs are written
by the process that checks and by extraction workers alike (analysis.py), so this module needs
nothing of the store's.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import StoreError, WorkspaceError

#: gzip level of stored bodies: level 1 compresses a 55 KB page in a quarter of level 6's time
#: (0.7 ms, not 3.2) into 28% more bytes (13.6 KB, not 10.6); a first pass over thousands of
#: pages is bound by it, and a body is stored once however often it is seen
COMPRESS_LEVEL = 1


class Blobs:
    """Raw bodies, gzip-compressed, at ``snapshots/ab/<sha256>.gz``."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.gz"

    def put(self, body: bytes, sha256: str) -> int:
        """Store a body under its digest (no-op if present); return the bytes used on disk."""
        target = self.path(sha256)
        if target.exists():
            return target.stat().st_size
        try:
            return self._write(target, gzip.compress(body, compresslevel=COMPRESS_LEVEL, mtime=0))
        except OSError as exc:
            raise workspace_error(exc, target) from exc

    def _write(self, target: Path, data: bytes) -> int:
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.root)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:12]}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return len(data)

    def get(self, sha256: str) -> bytes:
        """The body named by ``sha256``, checked against its name."""
        try:
            body = gzip.decompress(self.path(sha256).read_bytes())
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise StoreError(f"snapshot {sha256[:12]} is unreadable: {exc}") from exc
        if hashlib.sha256(body).hexdigest() != sha256:
            raise StoreError(f"snapshot {sha256[:12]} does not match its SHA-256")
        return body


def workspace_error(exc: OSError, path: Path) -> WorkspaceError:
    """A one-line error for a workspace we cannot write: full, read-only, or forbidden."""
    if exc.errno == errno.ENOSPC:
        return WorkspaceError(f"the disk is full: cannot write {path}")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WorkspaceError(f"the workspace is read-only: cannot write {path}")
    return WorkspaceError(f"cannot write {path}: {exc.strerror or exc}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
