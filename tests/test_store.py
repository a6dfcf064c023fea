"""Opening a workspace's database: migrations applied once, and checked without sqlite-utils."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from pagewatch import schema
from pagewatch.cli import cli
from pagewatch.errors import WorkspaceError
from pagewatch.store import DB_NAME, MIGRATIONS, Store


def test_migration_names_are_the_schemas() -> None:
    pending = schema.migrations.pending(sqlite_utils.Database(memory=True))
    assert tuple(m.name for m in pending) == MIGRATIONS


def _older_workspace(root: Path) -> Path:
    """A workspace whose database had all but the last migration (an older pagewatch)."""
    Store(root, create=True).close()
    path = root / DB_NAME
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [MIGRATIONS[-1]])
        for column in ("chars_before", "chars_after", "bytes_before", "bytes_after"):
            conn.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
    conn.close()
    return path


def test_an_older_database_is_brought_up_to_date(tmp_path: Path) -> None:
    path = _older_workspace(tmp_path)
    Store(tmp_path).close()
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(alerts)")}
        applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY name")]
    conn.close()
    assert {"chars_before", "bytes_after"} <= columns
    assert tuple(applied) == MIGRATIONS


def test_an_older_database_read_only_says_what_to_do(tmp_path: Path) -> None:
    _older_workspace(tmp_path)
    with pytest.raises(WorkspaceError) as raised:
        Store(tmp_path, readonly=True)
    assert str(raised.value).startswith(f"{tmp_path / DB_NAME}: made by an older pagewatch")


def test_an_up_to_date_database_opens_without_sqlite_utils(tmp_path: Path) -> None:
    Store(tmp_path, create=True).close()
    code = (
        "import sys; from pathlib import Path; from pagewatch.store import Store\n"
        f"Store(Path({str(tmp_path)!r})).close()\n"
        "print('sqlite_utils' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_an_emptied_database_beside_snapshots_is_refused_not_started_anew(tmp_path: Path) -> None:
    """A truncated pagewatch.db would otherwise be set up as a new workspace: the history lost,
    its snapshots orphaned, and a removal made meanwhile missed. Readers say the same."""
    store = Store(tmp_path, create=True)
    body = b"<p>Is it Uyghur</p>"
    store.blobs.put(body, hashlib.sha256(body).hexdigest())
    store.close()
    db = tmp_path / DB_NAME
    db.write_bytes(b"")
    for command in ("check", "alerts", "init"):
        result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), command])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: {db}: empty, though the workspace holds snapshots")
        assert len(result.stderr.splitlines()) == 1
    assert db.stat().st_size == 0


def test_an_empty_database_of_an_interrupted_init_is_set_up(tmp_path: Path) -> None:
    Store(tmp_path, create=True).close()
    (tmp_path / DB_NAME).write_bytes(b"")  # a crash right after the file was made
    Store(tmp_path).close()
    assert (tmp_path / DB_NAME).stat().st_size > 0


def test_a_database_link_to_nowhere_is_named(tmp_path: Path) -> None:
    Store(tmp_path, create=True).close()
    db = tmp_path / DB_NAME
    db.unlink()
    db.symlink_to(db)  # a loop
    with pytest.raises(WorkspaceError, match="a link to nothing"):
        Store(tmp_path)
