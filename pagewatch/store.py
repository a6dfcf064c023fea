"""The workspace on disk: snapshot blobs named by SHA-256, and the SQLite database beside them.

Writes follow one rule: the blob is on disk (fsynced, renamed into place) before any row names it,
and every row of one check (the check, its counts, its alerts) commits in one transaction taken
with ``BEGIN IMMEDIATE``. A kill at any moment leaves a workspace that opens and is consistent:
at worst an orphan blob that no row names, never a row without its blob.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .errors import NotFound, StoreError, WorkspaceError
from .models import Watch

DB_NAME = "pagewatch.db"
BUSY_TIMEOUT_S = 30.0

migrations = Migrations("pagewatch")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY,
            list TEXT NOT NULL,
            url TEXT NOT NULL,
            every INTEGER NOT NULL,
            selector TEXT,
            config_hash TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            UNIQUE (list, url)
        );
        CREATE TABLE snapshots (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            stored_at TEXT NOT NULL
        );
        CREATE TABLE checks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            watch_id INTEGER NOT NULL REFERENCES watches(id),
            checked_at TEXT NOT NULL,
            outcome TEXT NOT NULL,          -- capture | unusable | failed
            reason TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            status INTEGER,
            final_url TEXT,
            redirects TEXT NOT NULL DEFAULT '[]',
            headers TEXT NOT NULL DEFAULT '[]',
            sha256 TEXT REFERENCES snapshots(sha256),
            content_type TEXT,
            config_hash TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT 'live'
        );
        CREATE INDEX checks_watch ON checks (watch_id, id);
        CREATE TABLE counts (
            check_id INTEGER NOT NULL REFERENCES checks(id),
            grp TEXT NOT NULL,
            count INTEGER NOT NULL,
            aliases TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (check_id, grp)
        );
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            watch_id INTEGER NOT NULL REFERENCES watches(id),
            list TEXT NOT NULL,
            url TEXT NOT NULL,
            grp TEXT NOT NULL,
            alias TEXT NOT NULL,
            kind TEXT NOT NULL,
            count_before INTEGER NOT NULL,
            count_after INTEGER NOT NULL,
            last_seen_at TEXT NOT NULL,
            first_missing_at TEXT NOT NULL,
            check_before INTEGER NOT NULL REFERENCES checks(id),
            check_after INTEGER NOT NULL REFERENCES checks(id),
            snapshot_before TEXT NOT NULL,
            snapshot_after TEXT NOT NULL,
            final_url TEXT,
            context TEXT NOT NULL,
            context_parts TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'new',
            created_at TEXT NOT NULL,
            acked_at TEXT,
            note TEXT NOT NULL DEFAULT '',
            UNIQUE (watch_id, grp, check_after, kind)
        );
        CREATE INDEX alerts_status ON alerts (status, id);
        """
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with an explicit offset, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class CheckRow:
    """One stored check as detection needs it."""

    id: int
    watch_id: int
    checked_at: datetime
    outcome: str
    status: int | None
    final_url: str | None
    sha256: str | None
    content_type: str | None
    config_hash: str
    counts: dict[str, int]
    alias_counts: dict[str, dict[str, int]]


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
        target.parent.mkdir(parents=True, exist_ok=True)
        data = gzip.compress(body, compresslevel=6, mtime=0)
        fd, tmp = tempfile.mkstemp(prefix=f".{sha256[:12]}.", suffix=".tmp", dir=target.parent)
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """The database and blobs of one workspace."""

    def __init__(self, root: Path, *, create: bool = False):
        self.root = root
        self.watchlists_dir = root / "watchlists"
        self.blobs = Blobs(root / "snapshots")
        db_path = root / DB_NAME
        if not create and not db_path.exists():
            raise WorkspaceError(
                f"{root}: not a pagewatch workspace (no {DB_NAME}); run `pagewatch init` there"
            )
        try:
            if create:
                self.watchlists_dir.mkdir(parents=True, exist_ok=True)
                self.blobs.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            if migrations.pending(self.db):
                with self.write():
                    pass  # take the write lock so two processes never migrate at once
                migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{db_path}: cannot open database: {exc}") from exc
        except OSError as exc:
            raise WorkspaceError(f"{root}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        self.db.conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction, its lock taken up front so it never fails half-way when busy."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _store_error(exc) from exc
        try:
            yield self.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            conn.execute("ROLLBACK")
            raise _store_error(exc) from exc

    # -- watches -------------------------------------------------------------------------

    def sync_watch(self, watch: Watch, config_hash: str, now: datetime) -> int:
        """The watch's row id, creating or refreshing its row from the watchlist."""
        row = self.db.execute(
            "SELECT id, every, selector, config_hash FROM watches WHERE list = ? AND url = ?",
            [watch.list, watch.url],
        ).fetchone()
        if row and tuple(row[1:]) == (watch.every, watch.selector, config_hash):
            return int(row[0])
        with self.write() as db:
            if row:
                db.execute(
                    "UPDATE watches SET every = ?, selector = ?, config_hash = ? WHERE id = ?",
                    [watch.every, watch.selector, config_hash, row[0]],
                )
                return int(row[0])
            cursor = db.execute(
                "INSERT INTO watches (list, url, every, selector, config_hash, first_seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [watch.list, watch.url, watch.every, watch.selector, config_hash, iso(now)],
            )
            return int(cursor.lastrowid or 0)

    def watch_id(self, url: str, list_name: str | None = None) -> list[int]:
        sql, args = "SELECT id FROM watches WHERE url = ?", [url]
        if list_name:
            sql, args = sql + " AND list = ?", [*args, list_name]
        return [int(r[0]) for r in self.db.execute(sql, args).fetchall()]

    def last_checked(self) -> dict[tuple[str, str], datetime]:
        """When each watch (by list and URL) was last checked, successful or not."""
        rows = self.db.execute(
            "SELECT w.list, w.url, MAX(c.checked_at) FROM watches w"
            " JOIN checks c ON c.watch_id = w.id GROUP BY w.id"
        ).fetchall()
        return {(r[0], r[1]): parse_iso(r[2]) for r in rows}

    # -- checks --------------------------------------------------------------------------

    def last_capture(self, watch_id: int) -> CheckRow | None:
        """The most recent check of a watch whose counts can be compared."""
        row = self.db.execute(
            "SELECT id, watch_id, checked_at, outcome, status, final_url, sha256, content_type,"
            " config_hash FROM checks WHERE watch_id = ? AND outcome = 'capture'"
            " ORDER BY id DESC LIMIT 1",
            [watch_id],
        ).fetchone()
        if row is None:
            return None
        counts: dict[str, int] = {}
        alias_counts: dict[str, dict[str, int]] = {}
        for grp, count, aliases in self.db.execute(
            "SELECT grp, count, aliases FROM counts WHERE check_id = ?", [row[0]]
        ):
            counts[grp] = count
            alias_counts[grp] = json.loads(aliases)
        return CheckRow(
            id=row[0],
            watch_id=row[1],
            checked_at=parse_iso(row[2]),
            outcome=row[3],
            status=row[4],
            final_url=row[5],
            sha256=row[6],
            content_type=row[7],
            config_hash=row[8],
            counts=counts,
            alias_counts=alias_counts,
        )

    def open_removals(self, watch_id: int) -> set[str]:
        """Groups whose latest alert on this watch is a removal not yet followed by a restore."""
        rows = self.db.execute(
            "SELECT grp, kind FROM alerts a WHERE watch_id = ? AND id = ("
            " SELECT MAX(id) FROM alerts b WHERE b.watch_id = a.watch_id AND b.grp = a.grp)",
            [watch_id],
        ).fetchall()
        return {grp for grp, kind in rows if kind in ("removed", "page_removed")}

    def record_check(
        self,
        check: dict[str, Any],
        *,
        blob: tuple[bytes, str] | None = None,
        counts: Sequence[dict[str, Any]] = (),
        alerts: Sequence[dict[str, Any]] = (),
        compared_with: int | None = None,
        compared: bool = False,
    ) -> tuple[int, list[int]]:
        """Store one check with its blob, counts and alerts; return its id and the alert ids.

        With ``compared``, ``compared_with`` is the capture (or None: no capture) that detection
        compared against; if another process stored a newer capture of the watch meanwhile,
        StaleComparison is raised and nothing is written, so the caller can compare again.
        """
        stored_size = self.blobs.put(*blob) if blob else 0
        with self.write() as db:
            if compared:
                latest = db.execute(
                    "SELECT MAX(id) FROM checks WHERE watch_id = ? AND outcome = 'capture'",
                    [check["watch_id"]],
                ).fetchone()[0]
                if latest != compared_with:
                    raise StaleComparison(check["watch_id"])
            if blob:
                db.execute(
                    "INSERT OR IGNORE INTO snapshots (sha256, size, stored_size, stored_at)"
                    " VALUES (?, ?, ?, ?)",
                    [blob[1], len(blob[0]), stored_size, check["checked_at"]],
                )
            check_id = _insert(db, "checks", check)
            for row in counts:
                _insert(db, "counts", {**row, "check_id": check_id})
            alert_ids = [_insert(db, "alerts", {**row, "check_after": check_id}) for row in alerts]
        return check_id, alert_ids

    def checks(self, watch_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Every check of the given watches, oldest first, with its counts."""
        marks = ",".join("?" * len(watch_ids))
        rows = list(
            self.db.query(
                f"SELECT c.*, w.list, w.url FROM checks c JOIN watches w ON w.id = c.watch_id"
                f" WHERE c.watch_id IN ({marks}) ORDER BY c.id",
                list(watch_ids),
            )
        )
        counts: dict[int, dict[str, int]] = {}
        for check_id, grp, count in self.db.execute(
            f"SELECT check_id, grp, count FROM counts WHERE check_id IN"
            f" (SELECT id FROM checks WHERE watch_id IN ({marks}))",
            list(watch_ids),
        ):
            counts.setdefault(check_id, {})[grp] = count
        for row in rows:
            row["counts"] = counts.get(row["id"], {})
        return rows

    # -- alerts --------------------------------------------------------------------------

    def alerts(
        self, status: str = "new", list_name: str | None = None, ids: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []
        if status != "all":
            where.append("status = ?")
            args.append(status)
        if list_name:
            where.append("list = ?")
            args.append(list_name)
        if ids:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        return list(self.db.query(sql + " ORDER BY id", args))

    def alert(self, alert_id: int) -> dict[str, Any]:
        rows = self.alerts(status="all", ids=[alert_id])
        if not rows:
            raise NotFound(f"no alert {alert_id}")
        return rows[0]

    def ack(self, alert_ids: Sequence[int], now: datetime, note: str = "") -> list[int]:
        """Acknowledge alerts; all ids must exist. Returns those that were new."""
        with self.write() as db:
            marks = ",".join("?" * len(alert_ids))
            found = {
                r[0]: r[1]
                for r in db.execute(
                    f"SELECT id, status FROM alerts WHERE id IN ({marks})", list(alert_ids)
                )
            }
            missing = [i for i in alert_ids if i not in found]
            if missing:
                raise NotFound("no alert " + ", ".join(str(i) for i in missing))
            fresh = [i for i in alert_ids if found[i] == "new"]
            for alert_id in fresh:
                db.execute(
                    "UPDATE alerts SET status = 'acked', acked_at = ?, note = ? WHERE id = ?",
                    [iso(now), note, alert_id],
                )
        return fresh


class StaleComparison(StoreError):
    """A newer capture of the watch was stored while this one was being compared."""

    def __init__(self, watch_id: int):
        super().__init__(f"watch {watch_id} was captured by another process meanwhile")


def _insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row; plain SQL, as sqlite-utils' insert() re-reads the schema on every call."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    return int(cursor.lastrowid or 0)


def _store_error(exc: sqlite3.OperationalError) -> StoreError | WorkspaceError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return WorkspaceError(f"the workspace database is read-only: {text}")
    if "full" in text:
        return WorkspaceError(f"the disk is full: {text}")
    return StoreError(f"database error: {text}")
