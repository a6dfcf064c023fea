"""Every error pagewatch raises on purpose.

    PagewatchError
     ├── WatchlistError (ValueError)      a watchlist file is broken; carries path and line
     ├── UsageError (ValueError)          a command was asked for something that cannot be done
     ├── WorkspaceError (OSError)         the workspace is missing, locked, read-only, full
     │    └── WorkspaceLocked             another `pagewatch run` holds the workspace
     ├── StoreError (RuntimeError)        the database or a snapshot blob is unreadable or corrupt
     ├── BundleError (ValueError)         a WARC/WACZ file cannot be read; has path, member, offset
     ├── ServeError (OSError)             `pagewatch serve` cannot listen where it was asked to
     ├── ArchiveError (RuntimeError)      the Wayback Machine failed or answered nonsense; has url
     │    └── CaptureGone                 the archive lists a capture it no longer serves
     └── NotFound (LookupError)           a thing the user named does not exist

A failed fetch is not an exception: it is a `FailedCheck` value (see models.py).
The CLI maps WatchlistError and UsageError to exit code 2, everything else to 1.
"""

from __future__ import annotations

from pathlib import Path


class PagewatchError(Exception):
    """Root of every error pagewatch raises deliberately."""


class WatchlistError(PagewatchError, ValueError):
    """A watchlist file cannot be used as it stands."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return self.message
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.message}"


class UsageError(PagewatchError, ValueError):
    """The command was asked for something that cannot be done."""


class WorkspaceError(PagewatchError, OSError):
    """The workspace cannot be opened or written."""


class WorkspaceLocked(WorkspaceError):
    """Another `pagewatch run` already holds this workspace."""


class StoreError(PagewatchError, RuntimeError):
    """The database or a snapshot blob is unreadable or does not match its name."""


class BundleError(PagewatchError, ValueError):
    """A WARC or WACZ file cannot be opened or read as it stands.

    ``member`` is the file inside a WACZ, ``offset`` the byte offset of the record (within the
    member, when there is one), so the message points at the culprit in one line.
    """

    def __init__(
        self,
        message: str,
        path: Path | str | None = None,
        member: str | None = None,
        offset: int | None = None,
    ):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.member = member
        self.offset = offset
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.path is None else str(self.path)
        if self.member:
            where += f"!{self.member}"
        if self.offset is not None:
            where += f"#{self.offset}"
        return f"{where}: {self.message}" if where else self.message


class NotFound(PagewatchError, LookupError):
    """Something the user named does not exist in the workspace."""


class ServeError(PagewatchError, OSError):
    """The review server cannot listen where it was asked to (port taken, address unknown)."""


class ArchiveError(PagewatchError, RuntimeError):
    """A web archive could not give what was asked, after retries, or gave something unusable.

    ``url`` is what it is about: the watched URL of a listing, the archive URL of a capture;
    ``status`` the archive's last HTTP status, if any.
    """

    def __init__(self, message: str, url: str = "", status: int | None = None):
        self.message = message
        self.url = url
        self.status = status
        super().__init__(message)


class CaptureGone(ArchiveError):
    """The archive's index lists a capture that its replay no longer serves (404, or elsewhen)."""
