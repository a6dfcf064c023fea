"""Checking a workspace whole: the database's integrity, every snapshot against its name, and
the chain of captures (each row's chain value follows from the one before it and the row's own
digest, URL, time and status, so a capture row edited in those fields, inserted or deleted
shows, except the deletion of the very latest capture, which nothing after it vouches for; an
exported bundle's chain values, checked with `verify --against-workspace`, cover that)."""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .store import Store, chain_value

log = logging.getLogger("pagewatch.fsck")


@dataclass
class FsckReport:
    """What fsck checked and what it found wrong (``problems``) or merely noticed (``notes``)."""

    captures: int = 0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(store: Store, progress: Callable[[int, int], None] | None = None) -> FsckReport:
    report = FsckReport()
    db = store.db
    for (line,) in db.execute("PRAGMA integrity_check"):
        if line != "ok":
            report.problems.append(f"database: {line}")
    for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check"):
        report.problems.append(f"database: {table} row {rowid} names a missing {parent} row")
    _check_chain(store, report)
    _check_rows(store, report)
    _check_snapshots(store, report, progress)
    return report


def _check_chain(store: Store, report: FsckReport) -> None:
    previous = ""
    for check_id, sha256, final_url, checked_at, status, chain in store.db.execute(
        "SELECT id, sha256, final_url, checked_at, status, chain FROM checks"
        " WHERE sha256 IS NOT NULL ORDER BY id"
    ):
        report.captures += 1
        expected = chain_value(previous, sha256, final_url, checked_at, status)
        if chain is None:
            report.problems.append(f"capture {check_id} ({checked_at}): has no chain value")
        elif chain != expected:
            report.problems.append(
                f"capture {check_id} ({checked_at}, {final_url}): chain broken: its chain value"
                " does not follow from the capture before it and its own digest, URL, time and"
                " status (a capture row was edited, inserted or deleted here)"
            )
        previous = chain or expected


def _check_rows(store: Store, report: FsckReport) -> None:
    db = store.db
    for check_id, sha256 in db.execute(
        "SELECT c.id, c.sha256 FROM checks c LEFT JOIN snapshots s ON s.sha256 = c.sha256"
        " WHERE c.sha256 IS NOT NULL AND s.sha256 IS NULL"
    ):
        report.problems.append(f"capture {check_id}: names snapshot {sha256[:12]}, not recorded")
    for (check_id,) in db.execute(
        "SELECT c.id FROM checks c WHERE c.outcome = 'capture'"
        " AND NOT EXISTS (SELECT 1 FROM counts n WHERE n.check_id = c.id)"
    ):
        report.problems.append(f"capture {check_id}: comparable, but its phrase counts are missing")
    for alert_id, before, after in db.execute(
        "SELECT a.id, a.check_before, a.check_after FROM alerts a WHERE"
        " NOT EXISTS (SELECT 1 FROM checks c WHERE c.id = a.check_before)"
        " OR NOT EXISTS (SELECT 1 FROM checks c WHERE c.id = a.check_after)"
    ):
        report.problems.append(f"alert {alert_id}: names missing captures {before}/{after}")


def _check_snapshots(
    store: Store, report: FsckReport, progress: Callable[[int, int], None] | None
) -> None:
    rows = store.db.execute("SELECT sha256, size FROM snapshots ORDER BY sha256").fetchall()
    named = set()
    for done, (sha256, size) in enumerate(rows, 1):
        named.add(sha256)
        report.snapshots += 1
        problem = _blob_problem(store.blobs.path(sha256), sha256, size)
        if problem:
            report.problems.append(f"snapshot {sha256}: {problem}")
        if progress:
            progress(done, len(rows))
    for path in sorted(store.blobs.root.glob("*/*.gz")):
        if path.name.removesuffix(".gz") not in named:
            report.notes.append(f"{path}: no capture names this snapshot (an interrupted write)")


def _blob_problem(path: Path, sha256: str, size: int) -> str:
    digest = hashlib.sha256()
    length = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                length += len(chunk)
    except FileNotFoundError:
        return f"missing ({path})"
    except (OSError, EOFError, zlib.error) as exc:
        return f"unreadable ({path}): {exc}"
    if digest.hexdigest() != sha256:
        return f"content does not match its name ({path})"
    if length != size:
        return f"is {length} bytes, the database says {size}"
    return ""
