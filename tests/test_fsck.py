"""The tamper-evident workspace: the chain of captures and `pagewatch fsck`."""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pagewatch.cli import cli
from pagewatch.replay import Page, ReplayServer
from pagewatch.store import chain_value

BEFORE = "<html><body><main><p>Is it Uyghur: boolean.</p><p>Glasses.</p></main></body></html>"
AFTER = "<html><body><main><p>Glasses.</p></main></body></html>"


def pw(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args])


@pytest.fixture
def workspace(tmp_path: Path, server: ReplayServer) -> Path:
    """Two watches checked one after the other, so ids are known: 1 and 2 the seeds, 3 the
    removal on /a and 4 its confirming fetch, 5 a failed check of /b (no snapshot)."""
    assert pw(tmp_path, "init").exit_code == 0
    urls = [server.url(path) for path in ("/a", "/b")]
    for url in urls:
        assert pw(tmp_path, "add", url, "--list", "v", "--phrase", "Uyghur").exit_code == 0
    server.set("/a", Page.html(BEFORE))
    server.set("/b", Page.html(BEFORE + "<!-- b -->"))
    for url in urls:
        assert pw(tmp_path, "check", url).exit_code == 0
    server.set("/a", Page.html(AFTER))
    server.set("/b", Page(b"down", 503))
    for url in urls:
        assert pw(tmp_path, "check", url, "--confirm-delay", "0").exit_code == 0
    assert pw(tmp_path, "fsck").exit_code == 0
    return tmp_path


def sql(root: Path, statement: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "pagewatch.db") as conn:
        return conn.execute(statement, args).fetchall()


def test_every_capture_is_chained_to_the_one_before(workspace: Path) -> None:
    rows = sql(
        workspace,
        "SELECT sha256, final_url, checked_at, status, chain FROM checks"
        " WHERE sha256 IS NOT NULL ORDER BY id",
    )
    assert len(rows) == 4  # two seeds, the removal and its confirming fetch; the 503 has none
    previous = ""
    for sha256, url, checked_at, status, chain in rows:
        previous = chain_value(previous, str(sha256), str(url), str(checked_at), int(str(status)))
        assert chain == previous
    assert sql(workspace, "SELECT chain FROM checks WHERE sha256 IS NULL") == [(None,)]


def test_fsck_of_a_sound_workspace(workspace: Path) -> None:
    result = pw(workspace, "fsck")
    assert result.exit_code == 0
    assert result.stdout.strip().endswith("4 captures, 3 snapshots checked: ok")


def _edit_digest(root: Path) -> str:
    [(other,)] = sql(root, "SELECT sha256 FROM checks WHERE id = 1")
    sql(root, "UPDATE checks SET sha256 = ? WHERE id = 3", other)
    return "capture 3 "


def _edit_time(root: Path) -> str:
    sql(root, "UPDATE checks SET checked_at = '2001-01-01T00:00:00+00:00' WHERE id = 3")
    return "capture 3 "


def _delete_capture(root: Path) -> str:
    sql(root, "DELETE FROM counts WHERE check_id = 2")
    sql(root, "DELETE FROM checks WHERE id = 2")
    return "capture 3 "  # the capture after the gap no longer follows from its predecessor


def _rechain_edit(root: Path) -> str:
    """A forger who edits a row and recomputes its chain value breaks the next one's link."""
    [(prev,)] = sql(root, "SELECT chain FROM checks WHERE id = 2")
    [(sha, url, status)] = sql(root, "SELECT sha256, final_url, status FROM checks WHERE id = 3")
    when = "2001-01-01T00:00:00+00:00"
    forged = chain_value(str(prev), str(sha), str(url), when, int(str(status)))
    sql(root, "UPDATE checks SET checked_at = ?, chain = ? WHERE id = 3", when, forged)
    return "capture 4 "


def _flip_blob_byte(root: Path) -> str:
    [(sha,)] = sql(root, "SELECT sha256 FROM checks WHERE id = 3")
    path = root / "snapshots" / str(sha)[:2] / f"{sha}.gz"
    body = bytearray(gzip.decompress(path.read_bytes()))
    body[10] ^= 0x01
    path.write_bytes(gzip.compress(bytes(body)))
    return f"snapshot {sha}: content does not match"


def _remove_blob(root: Path) -> str:
    [(sha,)] = sql(root, "SELECT sha256 FROM checks WHERE id = 3")
    (root / "snapshots" / str(sha)[:2] / f"{sha}.gz").unlink()
    return f"snapshot {sha}: missing"


def _truncate_blob(root: Path) -> str:
    [(sha,)] = sql(root, "SELECT sha256 FROM checks WHERE id = 3")
    path = root / "snapshots" / str(sha)[:2] / f"{sha}.gz"
    path.write_bytes(path.read_bytes()[:20])
    return f"snapshot {sha}: unreadable"


def _drop_counts(root: Path) -> str:
    sql(root, "DELETE FROM counts WHERE check_id = 1")
    return "capture 1: comparable, but its phrase counts are missing"


@pytest.mark.parametrize(
    "tamper",
    [
        _edit_digest,
        _edit_time,
        _delete_capture,
        _rechain_edit,
        _flip_blob_byte,
        _remove_blob,
        _truncate_blob,
        _drop_counts,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_fsck_names_what_was_tampered_with(workspace: Path, tamper: Callable[[Path], str]) -> None:
    culprit = tamper(workspace)
    result = pw(workspace, "fsck")
    assert result.exit_code == 1
    assert culprit in result.output
    assert "the workspace failed its check" in result.output
    assert isinstance(result.exception, (SystemExit, type(None)))  # no traceback


def test_fsck_notes_orphan_snapshots_without_failing(workspace: Path) -> None:
    orphan = workspace / "snapshots" / "ff" / ("ff" * 32 + ".gz")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(gzip.compress(b"left by a kill"))
    result = pw(workspace, "fsck")
    assert result.exit_code == 0
    assert "no capture names this snapshot" in result.output
