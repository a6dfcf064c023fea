"""The database schema, as sqlite-utils migrations applied in order (see `Store`'s opening).

Add a migration at the end, never edit one that has shipped, and add its name to
`store.MIGRATIONS`: a database is opened without importing sqlite-utils when it has them all.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils import Migrations

from .store import chain_value

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


@migrations()
def m002_compare_after_store(db: sqlite_utils.Database) -> None:
    """Captures are stored first and compared after: `compared` says whether that happened.

    Each count also keeps the fingerprint of its group's aliases, so a capture can still be
    compared group by group after the watchlist changed in other ways.
    """
    db.executescript(
        """
        ALTER TABLE checks ADD COLUMN compared INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE counts ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
        CREATE INDEX checks_pending ON checks (watch_id, compared) WHERE compared = 0;
        CREATE INDEX checks_time ON checks (watch_id, checked_at, id);
        """
    )


@migrations()
def m003_chain(db: sqlite_utils.Database) -> None:
    """Every capture carries a hash chained to the workspace's previous capture (see chain_value),
    so an edited or deleted capture row shows; existing captures are chained in id order."""
    db.execute("ALTER TABLE checks ADD COLUMN chain TEXT")
    db.execute("ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT 'live'")
    previous = ""
    rows = db.execute(
        "SELECT c.id, c.sha256, c.final_url, c.checked_at, c.status FROM checks c"
        " WHERE c.sha256 IS NOT NULL ORDER BY c.id"
    ).fetchall()
    for check_id, sha256, final_url, checked_at, status in rows:
        previous = chain_value(previous, sha256, final_url, checked_at, status)
        db.execute("UPDATE checks SET chain = ? WHERE id = ?", [previous, check_id])


@migrations()
def m004_alert_sizes(db: sqlite_utils.Database) -> None:
    """A removal alert says how much the page shrank: the visible text (characters) and the raw
    body (bytes) of its two captures; NULL where unknown (alerts made before this)."""
    db.executescript(
        """
        ALTER TABLE alerts ADD COLUMN chars_before INTEGER;
        ALTER TABLE alerts ADD COLUMN chars_after INTEGER;
        ALTER TABLE alerts ADD COLUMN bytes_before INTEGER;
        ALTER TABLE alerts ADD COLUMN bytes_after INTEGER;
        """
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations ``conn``'s database has not had (inside the caller's transaction)."""
    db = sqlite_utils.Database(conn)
    if migrations.pending(db):
        migrations.apply(db)
