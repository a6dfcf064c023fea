"""Every error pagewatch raises on purpose.

    PagewatchError
     ├── WatchlistError (ValueError)      a watchlist file is broken; carries path and line
     ├── UsageError (ValueError)          a command was asked for something that cannot be done
     ├── WorkspaceError (OSError)         the workspace is missing, locked, read-only, full
     │    └── WorkspaceLocked             another `pagewatch run` holds the workspace
     ├── StoreError (RuntimeError)        the database or a snapshot blob is unreadable or corrupt
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


class NotFound(PagewatchError, LookupError):
    """Something the user named does not exist in the workspace."""
