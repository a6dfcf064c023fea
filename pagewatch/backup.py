"""`pagewatch backup`: a consistent copy of a workspace, also while `pagewatch run` writes to it.

The database is copied first, with SQLite's ``VACUUM INTO``: one read transaction, so the copy is
the database as of one moment and writers are not held up. Then the snapshot blobs that copy
names: a blob is on disk before any row names it, so each one is there to copy. Each is copied to
a temporary file, fsynced and renamed into place; then the watchlists. Last, the copy is checked
the way `pagewatch fsck` checks a workspace (integrity, every blob against its SHA-256, the chain
of captures), so a backup that reports success has been read back whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .blobs import workspace_error
from .errors import UsageError, WorkspaceError
from .fsck import fsck
from .store import DB_NAME, Store

COPIED_FILES = (".gitignore",)


@dataclass(frozen=True)
class BackupReport:
    """What a backup copied, and what it found wrong in the copy (``problems``)."""

    target: Path
    captures: int
    snapshots: int
    snapshot_bytes: int
    watchlists: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def backup(
    root: Path, out: Path, progress: Callable[[int, int], None] | None = None
) -> BackupReport:
    """Copy the workspace at ``root`` into ``out`` (a new or empty folder)."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: not empty; give --out a new or empty folder")
    source = Store(root, readonly=True)  # a read-only workspace can be backed up too
    try:
        _make_dir(out)
        partial = out / f".{DB_NAME}.partial"
        try:
            source.vacuum_into(partial)
            _fsync(partial)
            _replace(partial, out / DB_NAME)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        copy = Store(out, readonly=True)
        try:
            names = copy.snapshot_names()
            copied = 0
            for done, sha256 in enumerate(names, 1):
                copied += _copy_blob(source, copy, sha256)
                if progress:
                    progress(done, len(names))
            watchlists = _copy_watchlists(root, out)
            report = fsck(copy)  # the copy read back: integrity, every blob, the chain
        finally:
            copy.close()
    finally:
        source.close()
    return BackupReport(
        out, report.captures, report.snapshots, copied, watchlists, tuple(report.problems)
    )


def _copy_blob(source: Store, copy: Store, sha256: str) -> int:
    """Copy one blob, as it is (compressed), unless it is there already; the bytes copied.
    A blob missing from the workspace is left for the check of the copy to report."""
    src, dst = source.blobs.path(sha256), copy.blobs.path(sha256)
    if dst.exists() or not src.exists():
        return 0
    _make_dir(dst.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{sha256[:12]}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh, src.open("rb") as fin:
            shutil.copyfileobj(fin, fh, 1 << 20)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.filename == str(src):
            return 0  # unreadable in the workspace: the check of the copy names it
        raise workspace_error(exc, dst) from exc
    return dst.stat().st_size


def _copy_watchlists(root: Path, out: Path) -> int:
    """The watchlists folder, whole, and the workspace's .gitignore; the TOML files copied."""
    count = 0
    try:
        if (root / "watchlists").is_dir():
            shutil.copytree(root / "watchlists", out / "watchlists", dirs_exist_ok=True)
            count = sum(1 for _ in (out / "watchlists").rglob("*.toml"))
        else:
            _make_dir(out / "watchlists")
        for name in COPIED_FILES:
            if (root / name).is_file():
                shutil.copy2(root / name, out / name)
    except OSError as exc:
        raise workspace_error(exc, out) from exc
    return count


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise workspace_error(exc, path) from exc


def _fsync(path: Path) -> None:
    try:
        with path.open("rb+") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        raise workspace_error(exc, path) from exc


def _replace(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except OSError as exc:
        raise WorkspaceError(f"cannot write {dst}: {exc.strerror or exc}") from exc
