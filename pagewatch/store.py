"""The workspace on disk: snapshot blobs (blobs.py) and the SQLite database beside them.

Writes follow one rule: the blob is on disk (fsynced, renamed into place) before any row names it,
and every row of one check (the check, its counts, its alerts) commits in one transaction taken
with ``BEGIN IMMEDIATE`` (unchanged pages' checks share one: `Store.add_compared`). The schema's
migrations are in schema.py. A kill at any moment leaves a workspace that opens and is consistent:
at worst an orphan blob that no row names, never a row without its blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from .blobs import Blobs, workspace_error
from .errors import NotFound, StoreError, WorkspaceError
from .models import CHANGE_KINDS, NOT_MODIFIED, REMOVAL_KINDS, Watch, header

DB_NAME = "pagewatch.db"
BUSY_TIMEOUT_S = 30.0

#: the schema migrations (schema.py) a database must have had, by name: checked at every open
#: without importing sqlite-utils, which only applies them
MIGRATIONS = ("m001_initial", "m002_compare_after_store", "m003_chain", "m004_alert_sizes")


def chain_value(
    previous: str, sha256: str, url: str | None, checked_at: str, status: int | None
) -> str:
    """The chain value of a capture: SHA-256 over the previous capture's chain value and this
    capture's body digest, URL (the one that answered), time and status, one per line."""
    text = f"{previous}\n{sha256}\n{url or ''}\n{checked_at}\n{'' if status is None else status}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    redirected: bool
    counts: dict[str, int]
    alias_counts: dict[str, dict[str, int]]
    fingerprints: dict[str, str]
    headers: tuple[tuple[str, str], ...]
    compared: bool
    source: str = "live"

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


def _unwritable(root: Path) -> str:
    """Why nothing can be written in ``root``, if its file system says: read-only, or full."""
    try:
        found = os.statvfs(root)
    except OSError:
        return ""
    if found.f_flag & os.ST_RDONLY:
        return "the workspace is read-only"
    if found.f_bavail * found.f_frsize < 64 * 1024:
        return "the disk is full"
    return ""


def _emptied(db_path: Path, snapshots: Path) -> bool:
    """Is the database an empty file beside stored snapshots? (An empty one in a workspace with
    none is an `init` a crash cut short: it is set up again.)"""
    try:
        if db_path.stat().st_size:
            return False
        return any(child.is_dir() and any(child.iterdir()) for child in snapshots.iterdir())
    except OSError:
        return False  # what cannot be read is reported as the database is opened


def _connect(db_path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are ours); read-only ones never write,
    so a read-only copy of a workspace (an archive, a mounted snapshot) can be reviewed."""
    if not readonly:
        return sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    uri = db_path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:  # a WAL database on a read-only medium
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)


class Stored(NamedTuple):
    """A check just stored: its id, its outcome (a capture may come back ``superseded``), and
    whether it is compared already."""

    id: int
    outcome: str
    compared: bool


class Store:
    """The database and blobs of one workspace."""

    def __init__(self, root: Path, *, create: bool = False, readonly: bool = False):
        self.root = root
        self.watchlists_dir = root / "watchlists"
        self.blobs = Blobs(root / "snapshots")
        db_path = root / DB_NAME
        if not create and not db_path.exists():
            if db_path.is_symlink():
                raise WorkspaceError(f"{db_path}: a link to nothing (or a loop of links)")
            raise WorkspaceError(
                f"{root}: not a pagewatch workspace (no {DB_NAME}); run `pagewatch init` there"
            )
        if _emptied(db_path, self.blobs.root):  # `init` too: it must not set one up anew
            raise WorkspaceError(
                f"{db_path}: empty, though the workspace holds snapshots: the database was lost"
                " or truncated; restore it from a backup (`pagewatch backup` makes them) rather"
                " than start a new history over the old one"
            )
        try:
            if create:
                self.watchlists_dir.mkdir(parents=True, exist_ok=True)
                self.blobs.root.mkdir(parents=True, exist_ok=True)
            conn = _connect(db_path, readonly)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
            self.db = conn
            if _unmigrated(conn):
                if readonly:
                    raise WorkspaceError(
                        f"{db_path}: made by an older pagewatch; run `pagewatch check` once"
                        " (it needs to write) to bring it up to date"
                    )
                from .schema import migrate

                with self.write():  # under the write lock: two processes never migrate at once
                    migrate(conn)
        except sqlite3.DatabaseError as exc:
            if not readonly and (why := _unwritable(root)):  # SQLite cannot make its -shm, say
                raise WorkspaceError(f"{why}: cannot write {db_path} ({exc})") from exc
            raise WorkspaceError(f"{db_path}: cannot open database: {exc}") from exc
        except WorkspaceError:
            raise
        except OSError as exc:
            raise workspace_error(exc, root) from exc

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, its lock taken up front so it never fails half-way when busy."""
        conn = self.db
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _store_error(exc, self.root / DB_NAME) from exc
        try:
            yield self.db
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _store_error(exc, self.root / DB_NAME) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- watches -------------------------------------------------------------------------

    def sync_watch(self, watch: Watch, config_hash: str, now: datetime) -> int:
        """The watch's row id, creating or refreshing its row from the watchlist."""
        row = self.db.execute(
            "SELECT id, every, selector, config_hash FROM watches WHERE list = ? AND url = ?",
            [watch.list, watch.url],
        ).fetchone()
        if row and tuple(row[1:]) == (watch.every, watch.selector, config_hash):
            return int(row[0])
        return self.sync_watches([(watch, config_hash)], now)[0]

    def sync_watches(self, watches: Sequence[tuple[Watch, str]], now: datetime) -> list[int]:
        """The row ids of watches (each with its config hash), every row created or refreshed
        from the watchlist, all in one transaction."""
        with self.write() as db:
            return [
                int(
                    db.execute(
                        "INSERT INTO watches (list, url, every, selector, config_hash,"
                        " first_seen_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list, url) DO"
                        " UPDATE SET every = excluded.every, selector = excluded.selector,"
                        " config_hash = excluded.config_hash RETURNING id",
                        [watch.list, watch.url, watch.every, watch.selector, chash, iso(now)],
                    ).fetchone()[0]
                )
                for watch, chash in watches
            ]

    def watch_rows(self) -> dict[tuple[str, str], tuple[int, int, str | None, str]]:
        """Every watch row by (list, URL): its id, interval, selector and config hash."""
        rows = self.db.execute("SELECT list, url, id, every, selector, config_hash FROM watches")
        return {(r[0], r[1]): (int(r[2]), r[3], r[4], r[5]) for r in rows}

    def data_version(self) -> int:
        """A number that changes when another connection (another process) commits."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def adopt_moved(self, watches: Sequence[Watch]) -> list[tuple[str, str, str]]:
        """Carry a watch's history over when its URL moved to another list (or the list file
        was renamed): a new (list, URL) takes the row of the same URL in a list that no longer
        exists, if there is exactly one. Returns (url, old list, new list) for each move."""
        loaded = {w.list for w in watches}
        known = {(r[0], r[1]) for r in self.db.execute("SELECT list, url FROM watches")}
        orphans: dict[str, list[str]] = {}
        for list_name, url in known:
            if list_name not in loaded:
                orphans.setdefault(url, []).append(list_name)
        moves = []
        for watch in watches:
            old = orphans.get(watch.url, [])
            if watch.key in known or len(old) != 1:
                continue
            with self.write() as db:
                db.execute(
                    "UPDATE watches SET list = ? WHERE list = ? AND url = ?",
                    [watch.list, old[0], watch.url],
                )
                db.execute(
                    "UPDATE alerts SET list = ? WHERE list = ? AND url = ?",
                    [watch.list, old[0], watch.url],
                )
            moves.append((watch.url, old[0], watch.list))
            orphans.pop(watch.url)
        return moves

    def recent_checks(self, per_watch: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The latest checks of every watch, newest first, by (list, URL)."""
        rows = self.db.execute(
            "SELECT w.list, w.url, c.checked_at, c.outcome, c.reason, c.message FROM watches w"
            " JOIN (SELECT *, ROW_NUMBER() OVER (PARTITION BY watch_id"
            "       ORDER BY checked_at DESC, id DESC) AS n FROM checks) c"
            " ON c.watch_id = w.id WHERE c.n <= ? ORDER BY w.id, c.n",
            [per_watch],
        ).fetchall()
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for list_name, url, at, outcome, reason, message in rows:
            found.setdefault((list_name, url), []).append(
                {"checked_at": at, "outcome": outcome, "reason": reason, "message": message}
            )
        return found

    def capture_times(self) -> dict[tuple[str, str], tuple[str | None, str]]:
        """Per watch: its latest capture's time (or None) and its first check's time."""
        rows = self.db.execute(
            "SELECT w.list, w.url, MAX(CASE WHEN c.outcome = 'capture' THEN c.checked_at END),"
            " MIN(c.checked_at) FROM watches w JOIN checks c ON c.watch_id = w.id GROUP BY w.id"
        ).fetchall()
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}

    def list_names(self) -> set[str]:
        """Every list a watch of this workspace has belonged to."""
        return {r[0] for r in self.db.execute("SELECT DISTINCT list FROM watches")}

    def watch_id(self, url: str, list_name: str | None = None) -> list[int]:
        sql, args = "SELECT id FROM watches WHERE url = ?", [url]
        if list_name:
            sql, args = sql + " AND list = ?", [*args, list_name]
        return [int(r[0]) for r in self.db.execute(sql, args).fetchall()]

    def latest_check_time(self) -> datetime | None:
        """When the workspace's latest check was taken, by its own clock."""
        found = self.db.execute("SELECT MAX(checked_at) FROM checks").fetchone()[0]
        return parse_iso(found) if found else None

    def last_checked(self) -> dict[tuple[str, str], datetime]:
        """When each watch (by list and URL) was last checked, successful or not."""
        rows = self.db.execute(
            "SELECT w.list, w.url, MAX(c.checked_at) FROM watches w"
            " JOIN checks c ON c.watch_id = w.id GROUP BY w.id"
        ).fetchall()
        return {(r[0], r[1]): parse_iso(r[2]) for r in rows}

    # -- checks --------------------------------------------------------------------------

    _CHECK_COLUMNS = (
        "id, watch_id, checked_at, outcome, status, final_url, sha256, content_type,"
        " config_hash, redirects, headers, compared, source"
    )

    def last_capture(self, watch_id: int) -> CheckRow | None:
        """The latest capture of a watch (by capture time) whose counts can be compared."""
        rows = self._captures(
            "watch_id = ? AND outcome = 'capture' ORDER BY checked_at DESC, id DESC LIMIT 1",
            [watch_id],
        )
        return rows[0] if rows else None

    def latest_captures(
        self, watch_ids: Sequence[int]
    ) -> dict[int, tuple[CheckRow | None, datetime | None]]:
        """Each watch's `last_capture`, and when a capture of it last came with its body (not
        as a 304): two queries for many watches, so that a pass reads ahead of its checks."""
        marks = ",".join("?" * len(watch_ids))
        latest = "ORDER BY checked_at DESC, id DESC LIMIT 1"
        rows = self._captures(
            f"id IN (SELECT (SELECT id FROM checks c WHERE c.watch_id = w.id"
            f" AND c.outcome = 'capture' {latest}) FROM watches w WHERE w.id IN ({marks}))",
            list(watch_ids),
        )
        full = self.db.execute(
            f"SELECT w.id, (SELECT checked_at FROM checks c WHERE c.watch_id = w.id"
            f" AND c.outcome = 'capture' AND c.message != ? {latest})"
            f" FROM watches w WHERE w.id IN ({marks})",
            [NOT_MODIFIED, *watch_ids],
        ).fetchall()
        found: dict[int, tuple[CheckRow | None, datetime | None]] = {
            watch_id: (None, parse_iso(at) if at else None) for watch_id, at in full
        }
        for row in rows:
            found[row.watch_id] = (row, found[row.watch_id][1])
        return found

    def capture_before(self, row: CheckRow) -> CheckRow | None:
        """The capture of the same watch just before ``row`` in capture time."""
        return self._neighbour(row, "<", "DESC")

    def capture_after(self, row: CheckRow) -> CheckRow | None:
        """The capture of the same watch just after ``row`` in capture time."""
        return self._neighbour(row, ">", "")

    def _neighbour(self, row: CheckRow, side: str, order: str) -> CheckRow | None:
        rows = self._captures(
            "watch_id = ? AND outcome = 'capture'"
            f" AND (checked_at {side} ? OR (checked_at = ? AND id {side} ?))"
            f" ORDER BY checked_at {order}, id {order} LIMIT 1",
            [row.watch_id, iso(row.checked_at), iso(row.checked_at), row.id],
        )
        return rows[0] if rows else None

    def pending(self, watch_id: int) -> list[CheckRow]:
        """Captures stored but not yet compared (normally the one just stored; after a crash,
        the ones the crash interrupted), oldest first."""
        return self._captures(
            "watch_id = ? AND outcome = 'capture' AND compared = 0 ORDER BY checked_at, id",
            [watch_id],
        )

    def _captures(self, where: str, args: list[Any]) -> list[CheckRow]:
        found = self.db.execute(
            f"SELECT {self._CHECK_COLUMNS}, (SELECT json_group_array(json_array(grp, count,"
            " aliases, fingerprint)) FROM counts WHERE check_id = checks.id)"
            f" FROM checks WHERE {where}",
            args,
        ).fetchall()
        rows = []
        for row in found:
            counts: dict[str, int] = {}
            alias_counts: dict[str, dict[str, int]] = {}
            fingerprints: dict[str, str] = {}
            for grp, count, aliases, fingerprint in json.loads(row[13]):
                counts[grp] = count
                alias_counts[grp] = json.loads(aliases)
                fingerprints[grp] = fingerprint
            rows.append(
                CheckRow(
                    id=row[0],
                    watch_id=row[1],
                    checked_at=parse_iso(row[2]),
                    outcome=row[3],
                    status=row[4],
                    final_url=row[5],
                    sha256=row[6],
                    content_type=row[7],
                    config_hash=row[8],
                    redirected=row[9] not in ("", "[]"),
                    counts=counts,
                    alias_counts=alias_counts,
                    fingerprints=fingerprints,
                    headers=tuple((k, v) for k, v in json.loads(row[10])),
                    compared=bool(row[11]),
                    source=row[12],
                )
            )
        return rows

    def open_removals(self, watch_id: int) -> set[str]:
        """Groups whose latest alert on this watch is a removal not yet followed by a restore."""
        rows = self.db.execute(
            "SELECT grp, kind FROM alerts a WHERE watch_id = ? AND kind IN (?, ?, ?) AND id = ("
            " SELECT id FROM alerts b WHERE b.watch_id = a.watch_id AND b.grp = a.grp"
            " AND b.kind IN (?, ?, ?) AND b.status != 'withdrawn'"
            " ORDER BY first_missing_at DESC, id DESC LIMIT 1)",
            [watch_id, *sorted(CHANGE_KINDS), *sorted(CHANGE_KINDS)],
        ).fetchall()
        return {grp for grp, kind in rows if kind in REMOVAL_KINDS}

    def add_check(
        self,
        check: dict[str, Any],
        *,
        blob: tuple[bytes, str] | None = None,
        counts: Sequence[dict[str, Any]] = (),
        compared: bool = False,
        in_order: bool = True,
        compare_first: bool = False,
    ) -> Stored:
        """Store one check with its blob and counts, before anything is compared.

        A capture older than one already stored for the watch (a slow fetch overtaken by
        another process's) is kept as evidence but marked ``superseded``: captures are compared
        in capture-time order, never out of it. ``in_order=False`` (imported history, placed
        anywhere in the timeline and compared by re-detection over the whole of it) skips that
        rule. ``compare_first``: a watch's first capture has nothing to be compared with, so it
        is stored compared (decided inside the transaction: another process may have stored
        one since the caller looked).
        """
        stored_size = self.blobs.put(*blob) if blob else 0
        with self.write() as db:
            return _add_check(
                db, check, blob, stored_size, counts, compared, in_order, compare_first
            )

    def add_compared(
        self, checks: Sequence[tuple[dict[str, Any], Sequence[dict[str, Any]]]]
    ) -> list[Stored]:
        """Store checks that need no comparison (unchanged pages: their counts are the previous
        capture's) in one transaction, their bodies already stored; ids and outcomes in order.
        One commit for many: a steady pass is mostly such rows."""
        with self.write() as db:
            return [_add_check(db, check, None, 0, counts, True, True) for check, counts in checks]

    def mark_unconfirmed(self, check_id: int, why: str) -> None:
        """Keep a capture as evidence but out of every comparison."""
        with self.write() as db:
            db.execute(
                "UPDATE checks SET outcome = 'unconfirmed', compared = 1, reason = 'unconfirmed',"
                " message = ? WHERE id = ? AND compared = 0",
                [why, check_id],
            )

    def finish_compare(self, check_id: int, alerts: Sequence[dict[str, Any]]) -> list[int]:
        """Store a capture's alerts and mark it compared, once: a second call adds nothing."""
        with self.write() as db:
            done = db.execute("SELECT compared FROM checks WHERE id = ?", [check_id]).fetchone()
            if done is None or done[0]:
                return []
            ids = [_insert(db, "alerts", row) for row in alerts]
            db.execute("UPDATE checks SET compared = 1 WHERE id = ?", [check_id])
        return ids

    def checks(self, watch_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Every check of the given watches in capture-time order, with its counts."""
        marks = ",".join("?" * len(watch_ids))
        rows = list(
            _query(
                self.db,
                f"SELECT c.*, w.list, w.url FROM checks c JOIN watches w ON w.id = c.watch_id"
                f" WHERE c.watch_id IN ({marks}) ORDER BY c.checked_at, c.id",
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

    # -- whole timelines (import, backfill, re-detection) ----------------------------------

    def captures_at(self, watch_id: int, checked_at: datetime, sha256: str) -> int:
        """How many captures of this watch at this time with this body are stored."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM checks WHERE watch_id = ? AND checked_at = ? AND sha256 = ?",
            [watch_id, iso(checked_at), sha256],
        ).fetchone()
        return int(row[0])

    def capture_moments(self, watch_id: int, source: str) -> set[datetime]:
        """The capture times of a watch's captures from one source (what a backfill has done)."""
        rows = self.db.execute(
            "SELECT checked_at FROM checks WHERE watch_id = ? AND source = ?"
            " AND sha256 IS NOT NULL",
            [watch_id, source],
        ).fetchall()
        return {parse_iso(r[0]) for r in rows}

    def timeline(self, watch_id: int) -> tuple[list[CheckRow], int]:
        """Every comparable capture of a watch in capture-time order (the ones a comparison once
        set aside too), and the watch's latest check id, which settle() checks is unchanged."""
        rows = self._captures(
            "watch_id = ? AND sha256 IS NOT NULL"
            " AND outcome IN ('capture', 'unconfirmed', 'superseded') ORDER BY checked_at, id",
            [watch_id],
        )
        return rows, self._latest_check(watch_id)

    def _latest_check(self, watch_id: int) -> int:
        row = self.db.execute("SELECT MAX(id) FROM checks WHERE watch_id = ?", [watch_id])
        return int(row.fetchone()[0] or 0)

    def watch_alerts(self, watch_id: int, kinds: frozenset[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(kinds))
        return list(
            _query(
                self.db,
                f"SELECT * FROM alerts WHERE watch_id = ? AND kind IN ({marks}) ORDER BY id",
                [watch_id, *sorted(kinds)],
            )
        )

    def settle(
        self,
        watch_id: int,
        latest_check: int,
        outcomes: dict[int, tuple[str, bool, str]],
        updates: Sequence[tuple[int, dict[str, Any]]],
        inserts: Sequence[dict[str, Any]],
    ) -> list[int] | None:
        """Write what re-detecting a watch's timeline decided, in one transaction: each
        capture's outcome (``capture`` or ``unconfirmed``), whether it is compared, and why;
        alerts whose window moved; new alerts. Returns the new alerts' ids, or None (nothing
        written) if a check of the watch was stored since the timeline was read."""
        with self.write() as db:
            if self._latest_check(watch_id) != latest_check:
                return None
            for check_id, (outcome, compared, why) in outcomes.items():
                db.execute(  # an unconfirmed capture says why; one no longer unconfirmed, nothing
                    "UPDATE checks SET outcome = ?1, compared = ?2,"
                    " reason = CASE WHEN ?1 = 'unconfirmed' THEN 'unconfirmed'"
                    "  WHEN reason = 'unconfirmed' THEN '' ELSE reason END,"
                    " message = CASE WHEN ?1 = 'unconfirmed' THEN ?3"
                    "  WHEN reason = 'unconfirmed' THEN '' ELSE message END"
                    " WHERE id = ?4",
                    [outcome, int(compared), why, check_id],
                )
            for alert_id, fields in updates:
                assignments = ", ".join(f"{column} = ?" for column in fields)
                db.execute(
                    f"UPDATE alerts SET {assignments} WHERE id = ?", [*fields.values(), alert_id]
                )
            return [_insert(db, "alerts", row) for row in inserts]

    def check_ids_at(self, watch_id: int, checked_at: str, sha256: str | None) -> list[int]:
        """The checks of a watch at one moment: its captures of that body (sha256 given), or
        its failed checks (sha256 None); oldest first."""
        sql = "SELECT id FROM checks WHERE watch_id = ? AND checked_at = ? AND "
        sql += "sha256 = ?" if sha256 else "outcome = 'failed' AND ? IS NULL"
        rows = self.db.execute(sql + " ORDER BY id", [watch_id, checked_at, sha256])
        return [int(r[0]) for r in rows]

    def carry_alert(self, row: dict[str, Any]) -> int | None:
        """Store an alert brought from elsewhere unless the watch has one of the same kind and
        window; its id, or None."""
        with self.write() as db:
            found = db.execute(
                "SELECT 1 FROM alerts WHERE watch_id = ? AND kind = ? AND grp = ?"
                " AND last_seen_at = ? AND first_missing_at = ?",
                [row["watch_id"], row["kind"], row["grp"], row["last_seen_at"],
                 row["first_missing_at"]],
            ).fetchone()  # fmt: skip
            return None if found else _insert(db, "alerts", row)

    # -- evidence ------------------------------------------------------------------------

    def evidence(
        self,
        *,
        list_name: str | None = None,
        url: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        check_ids: Sequence[int] = (),
    ) -> Iterator[dict[str, Any]]:
        """Stored checks with their watch and counts, in capture-time order, for export: every
        capture (whatever its outcome: all are evidence) and every failed check."""
        where: list[str] = ["1"]
        args: list[Any] = []
        for clause, value in (
            ("w.list = ?", list_name),
            ("w.url = ?", url),
            ("c.checked_at >= ?", iso(since) if since else None),
            ("c.checked_at <= ?", iso(until) if until else None),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        if check_ids:
            where.append(f"c.id IN ({','.join('?' * len(check_ids))})")
            args.extend(check_ids)
        previous_chain = (
            "(SELECT p.chain FROM checks p WHERE p.sha256 IS NOT NULL AND p.id < c.id"
            " ORDER BY p.id DESC LIMIT 1)"
        )
        cursor = self.db.execute(
            f"SELECT c.*, w.list AS list, w.url AS watch_url, w.every AS every,"
            f" {previous_chain} AS chain_prev FROM checks c JOIN watches w ON w.id = c.watch_id"
            f" WHERE {' AND '.join(where)} ORDER BY c.checked_at, c.id",
            args,
        )
        columns = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(columns, values, strict=True))
            row["counts"], row["aliases"] = {}, {}
            for grp, count, aliases in self.db.execute(
                "SELECT grp, count, aliases FROM counts WHERE check_id = ?", [row["id"]]
            ):
                row["counts"][grp] = count
                row["aliases"][grp] = json.loads(aliases)
            yield row

    def chained_rows(self, check_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The given captures' chained fields, chain value and the chain value before theirs."""
        found: dict[int, dict[str, Any]] = {}
        previous = (
            "(SELECT p.chain FROM checks p WHERE p.sha256 IS NOT NULL AND p.id < c.id"
            " ORDER BY p.id DESC LIMIT 1)"
        )
        for start in range(0, len(check_ids), 500):
            part = list(check_ids[start : start + 500])
            for row in _query(
                self.db,
                f"SELECT c.id, c.sha256, c.final_url, c.checked_at, c.status, c.chain,"
                f" {previous} AS chain_prev, w.list, w.url FROM checks c"
                f" JOIN watches w ON w.id = c.watch_id"
                f" WHERE c.id IN ({','.join('?' * len(part))})",
                part,
            ):
                found[row["id"]] = row
        return found

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
        return list(_query(self.db, sql + " ORDER BY id", args))

    def alert(self, alert_id: int) -> dict[str, Any]:
        rows = self.alerts(status="all", ids=[alert_id])
        if not rows:
            raise NotFound(f"no alert {alert_id}")
        return rows[0]

    def ack(self, alert_ids: Sequence[int], now: datetime, note: str = "") -> list[int]:
        """Acknowledge alerts; all ids must exist. Returns those that were new. A note given
        for an alert acknowledged already replaces its note (its time stays)."""
        with self.write() as db:
            found = _statuses(db, alert_ids, "nothing was acknowledged")
            fresh = [i for i in alert_ids if found[i] == "new"]
            for alert_id in fresh:
                db.execute(
                    "UPDATE alerts SET status = 'acked', acked_at = ?, note = ? WHERE id = ?",
                    [iso(now), note, alert_id],
                )
            if note:
                for alert_id in (i for i in alert_ids if found[i] == "acked"):
                    db.execute("UPDATE alerts SET note = ? WHERE id = ?", [note, alert_id])
        return fresh

    def unack(self, alert_ids: Sequence[int]) -> list[int]:
        """Take acknowledgements back (note included); all ids must exist. Returns those that
        were acknowledged."""
        with self.write() as db:
            found = _statuses(db, alert_ids, "nothing was changed")
            acked = [i for i in alert_ids if found[i] == "acked"]
            for alert_id in acked:
                db.execute(
                    "UPDATE alerts SET status = 'new', acked_at = NULL, note = '' WHERE id = ?",
                    [alert_id],
                )
        return acked

    # -- watch health ----------------------------------------------------------------------

    def body_size(self, sha256: str | None) -> int | None:
        """The raw size of a stored body (as received), None if there is none."""
        if not sha256:
            return None
        row = self.db.execute("SELECT size FROM snapshots WHERE sha256 = ?", [sha256]).fetchone()
        return int(row[0]) if row else None

    def health_checks(self, watch_id: int, count: int) -> list[dict[str, Any]]:
        """The watch's latest ``count`` checks, newest first (capture-time order)."""
        return list(
            _query(
                self.db,
                "SELECT id, checked_at, outcome, reason, message, sha256, final_url FROM checks"
                " WHERE watch_id = ? ORDER BY checked_at DESC, id DESC LIMIT ?",
                [watch_id, count],
            )
        )

    def health_marks(self, watch_id: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The watch's latest successful capture and its first check (None when there is none)."""
        columns = "id, checked_at, outcome, reason, message, sha256, final_url"
        good = list(
            _query(
                self.db,
                f"SELECT {columns} FROM checks WHERE watch_id = ? AND outcome = 'capture'"
                " ORDER BY checked_at DESC, id DESC LIMIT 1",
                [watch_id],
            )
        )
        first = list(
            _query(
                self.db,
                f"SELECT {columns} FROM checks WHERE watch_id = ? ORDER BY checked_at, id LIMIT 1",
                [watch_id],
            )
        )
        return (good[0] if good else None), (first[0] if first else None)

    def check_before(self, check: dict[str, Any]) -> dict[str, Any] | None:
        """The check of the same watch just before ``check`` (a row of health_checks)."""
        rows = list(
            _query(
                self.db,
                "SELECT id, checked_at, outcome, reason, message, sha256, final_url FROM checks"
                " WHERE watch_id = (SELECT watch_id FROM checks WHERE id = ?)"
                " AND (checked_at < ? OR (checked_at = ? AND id < ?))"
                " ORDER BY checked_at DESC, id DESC LIMIT 1",
                [check["id"], check["checked_at"], check["checked_at"], check["id"]],
            )
        )
        return rows[0] if rows else None

    def raise_health(self, row: dict[str, Any]) -> int | None:
        """Store a health alert unless its spell has one already; its id, or None.

        A spell runs from the watch's last ``restored_health`` alert: it holds at most one
        ``blocked`` and one ``failing``, and ends with one ``restored_health``, which needs
        one of them. Decided inside the write transaction, so two processes never both raise.
        """
        with self.write() as db:
            kinds = _spell(db, row["watch_id"])
            wanted = bool(kinds) if row["kind"] == "restored_health" else row["kind"] not in kinds
            if not wanted:
                return None
            return _insert(db, "alerts", row)

    def spell_end(self, watch_id: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The watch's last failed or unusable check (None if none) and the capture after it
        that ended the spell (the latest check when there is no such capture)."""
        columns = "id, checked_at, outcome, reason, message, sha256, final_url"
        bad = list(
            _query(
                self.db,
                f"SELECT {columns} FROM checks WHERE watch_id = ?"
                " AND outcome IN ('failed', 'unusable') ORDER BY checked_at DESC, id DESC LIMIT 1",
                [watch_id],
            )
        )
        after = "AND (checked_at > ? OR (checked_at = ? AND id > ?)) AND outcome = 'capture'"
        args = [bad[0]["checked_at"], bad[0]["checked_at"], bad[0]["id"]] if bad else []
        back = list(
            _query(
                self.db,
                f"SELECT {columns} FROM checks WHERE watch_id = ? {after if bad else ''}"
                f" ORDER BY checked_at {'' if bad else 'DESC'}, id {'' if bad else 'DESC'}"
                " LIMIT 1",
                [watch_id, *args],
            )
        )
        return (bad[0] if bad else None), back[0]

    def unsettled_watches(self) -> set[int]:
        """Watches whose latest check is not a capture, or with a health spell open: the ones
        a crash may have left a health alert to raise for (see Checker._health)."""
        rows = self.db.execute(
            "SELECT w.id FROM watches w WHERE (SELECT outcome FROM checks c WHERE c.watch_id = w.id"
            " ORDER BY checked_at DESC, id DESC LIMIT 1) != 'capture'"
            f" UNION SELECT a.watch_id FROM alerts a WHERE {_OPEN_SPELL}"
        )
        return {int(r[0]) for r in rows}

    def spell(self, watch_id: int) -> set[str]:
        """The health alerts (`blocked`, `failing`) of the watch's current spell (see
        raise_health): a read, so most checks need not take the write lock to learn that."""
        return _spell(self.db, watch_id)

    def vacuum_into(self, target: Path) -> None:
        """A consistent copy of the database at ``target`` (one read transaction: a `run`
        writing meanwhile is neither blocked nor half-copied)."""
        try:
            self.db.execute("VACUUM INTO ?", [str(target)])
        except UnicodeEncodeError as exc:  # bytes in the path that are no UTF-8 (SQLite's paths)
            raise WorkspaceError(f"cannot write {target}: the path is not valid UTF-8") from exc
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise WorkspaceError(f"the disk is full: cannot write {target}") from exc
            raise WorkspaceError(f"cannot write {target}: {exc}") from exc

    def snapshot_names(self) -> list[str]:
        """The SHA-256 of every stored body the database names, in order."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT sha256 FROM snapshots UNION"
                " SELECT sha256 FROM checks WHERE sha256 IS NOT NULL ORDER BY 1"
            )
        ]

    # -- review (`pagewatch serve`, `pagewatch report`) ----------------------------------

    def alert_stamp(self) -> tuple[int, int]:
        """The newest alert's id and the number of new alerts: it changes when alerts arrive
        or are acknowledged, so a page showing alerts knows when it is out of date."""
        row = self.db.execute(
            "SELECT COALESCE(MAX(id), 0), COALESCE(SUM(status = 'new'), 0) FROM alerts"
        ).fetchone()
        return int(row[0]), int(row[1])

    def watches(self) -> list[dict[str, Any]]:
        """Every watch the database knows, in the order they were first seen."""
        return list(_query(self.db, "SELECT * FROM watches ORDER BY id"))

    def watch(self, watch_id: int) -> dict[str, Any]:
        rows = list(_query(self.db, "SELECT * FROM watches WHERE id = ?", [watch_id]))
        if not rows:
            raise NotFound(f"no watch {watch_id}")
        return rows[0]

    def check(self, check_id: int) -> dict[str, Any]:
        """One stored check as its row has it (headers and redirects as JSON text)."""
        rows = list(_query(self.db, "SELECT * FROM checks WHERE id = ?", [check_id]))
        if not rows:
            raise NotFound(f"no capture {check_id}")
        return rows[0]


def _statuses(db: sqlite3.Connection, alert_ids: Sequence[int], else_: str) -> dict[int, str]:
    """The status of each alert, by id; NotFound naming any id that does not exist."""
    marks = ",".join("?" * len(alert_ids))
    found = {
        int(r[0]): str(r[1])
        for r in db.execute(f"SELECT id, status FROM alerts WHERE id IN ({marks})", list(alert_ids))
    }
    missing = [i for i in alert_ids if i not in found]
    if missing:
        raise NotFound("no alert " + ", ".join(str(i) for i in missing) + f"; {else_}")
    return found


def _add_check(
    db: sqlite3.Connection,
    check: dict[str, Any],
    blob: tuple[bytes, str] | None,
    stored_size: int,
    counts: Sequence[dict[str, Any]],
    compared: bool,
    in_order: bool,
    compare_first: bool = False,
) -> Stored:
    """`Store.add_check` inside its write transaction."""
    outcome = check["outcome"]
    if outcome == "capture" and in_order:
        latest = db.execute(  # the watch's latest capture: is it later than this one?
            "SELECT checked_at > ? FROM checks WHERE watch_id = ? AND outcome = 'capture'"
            " ORDER BY checked_at DESC LIMIT 1",
            [check["checked_at"], check["watch_id"]],
        ).fetchone()
        outcome = "superseded" if latest and latest[0] else "capture"
        compared = compared or (compare_first and latest is None)
    if blob:
        db.execute(
            "INSERT OR IGNORE INTO snapshots (sha256, size, stored_size, stored_at)"
            " VALUES (?, ?, ?, ?)",
            [blob[1], len(blob[0]), stored_size, check["checked_at"]],
        )
    done = compared or outcome != "capture"  # nothing to compare, or compared already
    row = {**check, "outcome": outcome, "compared": int(done)}
    if row.get("sha256"):
        row["chain"] = _next_chain(db, row)
    check_id = _insert(db, "checks", row)
    for count in counts:
        _insert(db, "counts", {**count, "check_id": check_id})
    return Stored(check_id, outcome, done)


def _next_chain(db: sqlite3.Connection, row: dict[str, Any]) -> str:
    """The chain value of a capture about to be inserted (inside the write transaction)."""
    last = db.execute(
        "SELECT chain FROM checks WHERE sha256 IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    previous = last[0] if last and last[0] else ""
    return chain_value(
        previous, row["sha256"], row.get("final_url"), row["checked_at"], row.get("status")
    )


#: an alert ``a`` of an open health spell: blocked or failing, and no restore since
_OPEN_SPELL = (
    "a.kind IN ('blocked', 'failing') AND a.id > (SELECT COALESCE(MAX(id), 0) FROM alerts r"
    " WHERE r.watch_id = a.watch_id AND r.kind = 'restored_health')"
)


def _spell(db: sqlite3.Connection, watch_id: int) -> set[str]:
    rows = db.execute(
        f"SELECT a.kind FROM alerts a WHERE a.watch_id = ? AND {_OPEN_SPELL}", [watch_id]
    )
    return {r[0] for r in rows}


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """Insert one row; plain SQL, as sqlite-utils' insert() re-reads the schema on every call."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _query(db: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
    """Rows as dicts by column name."""
    cursor = db.execute(sql, args)
    names = [column[0] for column in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def _unmigrated(conn: sqlite3.Connection) -> bool:
    """Might the database lack a migration? (A new one does; sqlite-utils then decides.) The
    table is read, not its index, as sqlite-utils reads it: a page trashed there shows now."""
    try:
        applied = conn.execute(
            "SELECT name FROM _sqlite_migrations NOT INDEXED WHERE migration_set = 'pagewatch'"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such" in str(exc):  # table (a new database) or column (another sqlite-utils)
            return True
        raise  # a disk or lock error is that, not an old database
    return not {name for (name,) in applied}.issuperset(MIGRATIONS)


def _store_error(exc: sqlite3.OperationalError, path: Path) -> StoreError | WorkspaceError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return WorkspaceError(f"the workspace is read-only: cannot write {path} ({text})")
    if "full" in text:
        return WorkspaceError(f"the disk is full: cannot write {path} ({text})")
    return StoreError(f"database error: {text}")
