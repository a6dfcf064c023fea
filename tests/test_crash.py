"""Nothing lost: SIGKILL real `pagewatch check` and `pagewatch run` processes at random moments,
again and again, and the workspace still opens consistent; the pass after raises every alert
exactly once. Also: one `run` per workspace, a full disk and a read-only workspace give one
clear line and leave the data whole, and `backup` copies a workspace while `run` writes to it."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import random
import signal
import sqlite3
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import wait_for

from pagewatch.cli import cli
from pagewatch.replay import Page, ReplayServer
from pagewatch.workspace import init

PAGES = 24
SLOW = 0.4  # seconds a third of the pages take to answer, so kills land mid-fetch too
ROUNDS = 27  # each kills a `check` and a `run` working side by side
CHANGE_KINDS = {"removed", "page_removed", "restored"}


def page(i: int, with_phrase: bool) -> Page:
    filler = " ".join(
        f"Paragraph {i}-{k} about face attributes and their accuracy." for k in range(300)
    )
    phrase = "<p>Is it Uyghur: boolean attribute.</p>" if with_phrase else ""
    body = f"<html><body><main><p>{filler}</p>{phrase}<p>End {i}.</p></main></body></html>"
    return Page(body.encode(), delay=SLOW if i % 3 == 0 else 0.0)


def consistent(root: Path) -> tuple[int, list[tuple[str, str, int, int]]]:
    """Assert the workspace is whole; return its number of captures and its alerts as
    (url, kind, count_before, count_after)."""
    db = sqlite3.connect(f"file:{root / 'pagewatch.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for (sha,) in db.execute("SELECT sha256 FROM checks WHERE sha256 IS NOT NULL"):
            blob = root / "snapshots" / sha[:2] / f"{sha}.gz"
            assert hashlib.sha256(gzip.decompress(blob.read_bytes())).hexdigest() == sha
        orphans = db.execute(
            "SELECT COUNT(*) FROM checks c WHERE outcome = 'capture'"
            " AND NOT EXISTS (SELECT 1 FROM counts WHERE check_id = c.id)"
        ).fetchone()[0]
        assert orphans == 0, "a capture was stored without its counts"
        capture = "SELECT 1 FROM checks c WHERE c.id = a.{} AND c.sha256 IS NOT NULL"
        counted = "SELECT 1 FROM counts n WHERE n.check_id = a.{} AND n.grp = a.grp"
        half_written = db.execute(
            "SELECT a.id FROM alerts a WHERE "
            + " OR ".join(
                f"NOT EXISTS ({sql.format(column)})"
                for sql in (capture, counted)
                for column in ("check_before", "check_after")
            )
        ).fetchall()
        assert half_written == [], "an alert names captures or counts that are not there"
        uncompared_alerted = db.execute(
            "SELECT COUNT(*) FROM alerts a JOIN checks c ON c.id = a.check_after"
            " WHERE c.compared = 0"
        ).fetchone()[0]
        assert uncompared_alerted == 0, "an alert exists for a capture not marked compared"
        captures = db.execute("SELECT COUNT(*) FROM checks WHERE outcome = 'capture'").fetchone()[0]
        alerts = db.execute(
            "SELECT url, kind, count_before, count_after FROM alerts ORDER BY id"
        ).fetchall()
        return captures, alerts
    finally:
        db.close()


def pagewatch(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pagewatch", "--workspace", str(root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    return err.decode()


def clean_check(root: Path) -> None:
    finish(pagewatch(root, "check", "--confirm-delay", "0.2"))


def expect_one_each(root: Path, server: ReplayServer, kinds: list[str]) -> None:
    """Every page raised exactly these alerts, in this order: none repeated, none missed."""
    _, alerts = consistent(root)
    for i in range(PAGES):
        mine = [
            (kind, before, after) for url, kind, before, after in alerts if url.endswith(f"/p{i}")
        ]
        want = {"removed": ("removed", 1, 0), "restored": ("restored", 0, 1)}
        assert mine == [want[k] for k in kinds], f"/p{i}: {mine}"
    assert len(alerts) == PAGES * len(kinds), "an alert no page accounts for"


@pytest.mark.slow
def test_sigkill_check_and_run_at_random_moments_loses_nothing(
    tmp_path: Path, server: ReplayServer
) -> None:
    init(tmp_path)
    lines = ['every = "1s"\n[phrases]\nuyghur = ["Uyghur"]\n']
    for i in range(PAGES):
        server.set(f"/p{i}", page(i, True))
        lines.append(f'[[watch]]\nurl = "{server.url(f"/p{i}")}"\n')
    (tmp_path / "watchlists" / "crash.toml").write_text("\n".join(lines), encoding="utf-8")
    # the first pass also times a pass here: kills must land in its work (fetch, blob write,
    # commit, compare), not in the start-up of the interpreter, however loaded the machine is
    started = time.monotonic()
    seed = pagewatch(tmp_path, "check", "--confirm-delay", "0.3")
    wait_for(lambda: len(server.requests) > 0, timeout=30)
    first_fetch = time.monotonic() - started
    finish(seed)
    work = time.monotonic() - started - first_fetch
    captures, alerts = consistent(tmp_path)
    assert (captures, alerts) == (PAGES, [])

    rng = random.Random(20201208)
    kills = 0

    def moment() -> float:
        return rng.uniform(0.9 * first_fetch, first_fetch + 0.9 * work)

    def kill_rounds(rounds: int) -> None:
        nonlocal kills, captures
        for _ in range(rounds):
            procs = [
                (pagewatch(tmp_path, "check", "--confirm-delay", "0.3"), moment()),
                (pagewatch(tmp_path, "run", "--reload-every", "0.5"), moment()),
            ]
            started = time.monotonic()
            for proc, delay in sorted(procs, key=lambda p: p[1]):
                time.sleep(max(0.0, started + delay - time.monotonic()))
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
            for proc, _ in procs:
                _, err = proc.communicate(timeout=30)
                assert b"Traceback" not in err, err.decode()
            now_captures, _ = consistent(tmp_path)
            assert now_captures >= captures, "a kill lost earlier captures"
            captures = now_captures

    # the phrase leaves every page; kills land while passes fetch, store and compare it
    for i in range(PAGES):
        server.set(f"/p{i}", page(i, False))
    kill_rounds(ROUNDS // 2)
    clean_check(tmp_path)
    expect_one_each(tmp_path, server, ["removed"])

    # and comes back; kills again, and still every alert exactly once
    for i in range(PAGES):
        server.set(f"/p{i}", page(i, True))
    kill_rounds(ROUNDS - ROUNDS // 2)
    clean_check(tmp_path)
    clean_check(tmp_path)  # a pass with nothing new raises nothing new
    expect_one_each(tmp_path, server, ["removed", "restored"])
    assert kills >= 50, f"only {kills} kills landed: the passes ended too soon"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = pagewatch(tmp_path, "run", "--reload-every", "0.2", *args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def checks_stored(root: Path) -> int:
    db = sqlite3.connect(f"file:{root / 'pagewatch.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM checks").fetchone()[0])
    finally:
        db.close()


def small_workspace(root: Path, server: ReplayServer, pages: int = 6) -> None:
    init(root)
    body = 'every = "1s"\n[phrases]\nuyghur = ["Uyghur"]\n'
    for i in range(pages):
        server.set(f"/s{i}", Page.html(f"<p>Is it Uyghur? page {i}</p>"))
        body += f'\n[[watch]]\nurl = "{server.url(f"/s{i}")}"\n'
    (root / "watchlists" / "small.toml").write_text(body, encoding="utf-8")


@pytest.mark.slow
def test_second_run_refuses_to_start(
    tmp_path: Path, server: ReplayServer, running: Callable[..., subprocess.Popen[bytes]]
) -> None:
    small_workspace(tmp_path, server)
    first = running()
    wait_for(lambda: checks_stored(tmp_path) > 0)  # it holds the workspace and works
    second = pagewatch(tmp_path, "run")
    _, err = second.communicate(timeout=30)
    assert second.returncode == 1
    [line] = err.decode().strip().splitlines()
    assert line == f"Error: {tmp_path}: `pagewatch run` is already running here (pid {first.pid})"
    assert first.poll() is None  # the first goes on
    first.send_signal(signal.SIGTERM)
    assert "stopped" in finish(first)


@pytest.mark.slow
def test_backup_while_run_writes_is_consistent(
    tmp_path: Path, server: ReplayServer, running: Callable[..., subprocess.Popen[bytes]]
) -> None:
    small_workspace(tmp_path, server)
    proc = running()
    wait_for(lambda: checks_stored(tmp_path) >= 6)
    server.set("/s0", Page.html("<p>Is it a face? page 0</p>"))  # an alert on its way
    wait_for(lambda: bool(consistent(tmp_path)[1]), timeout=30)

    out = tmp_path.parent / f"{tmp_path.name}-backup"
    copies = []
    for n in range(3):  # while run goes on writing: captures, blobs, alerts
        result = CliRunner().invoke(
            cli, ["--workspace", str(tmp_path), "backup", "--out", f"{out}{n}"]
        )
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Backed up {tmp_path} to {out}{n}: ")
        copies.append(Path(f"{out}{n}"))
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    finish(proc)

    for copy in copies:
        captures, alerts = consistent(copy)  # integrity, every blob present and matching
        assert captures >= 6 and alerts == [(server.url("/s0"), "removed", 1, 0)]
        assert (copy / "watchlists" / "small.toml").read_bytes() == (
            tmp_path / "watchlists" / "small.toml"
        ).read_bytes()
        shown = CliRunner().invoke(cli, ["--workspace", str(copy), "alerts", "--json"])
        assert shown.exit_code == 0, shown.output
        assert [a["url"] for a in json.loads(shown.stdout)] == [server.url("/s0")]
        assert CliRunner().invoke(cli, ["--workspace", str(copy), "fsck"]).exit_code == 0
    sizes = [consistent(copy)[0] for copy in copies]
    assert sizes == sorted(sizes)  # later copies hold at least as much


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    init(tmp_path / "ws")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--workspace", str(tmp_path / "ws"), "backup", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {tmp_path / 'out'}: not empty; give --out a new or empty folder"
    )
    assert (tmp_path / "out" / "keep.txt").read_text(encoding="utf-8") == "mine"


# -- a full disk, a read-only workspace -----------------------------------------------------------


@contextlib.contextmanager
def mounted(*args: str, target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


def snapshot_of(root: Path) -> dict[str, Any]:
    """Every row of the database and every blob, for comparing before and after."""
    db = sqlite3.connect(f"file:{root / 'pagewatch.db'}?mode=ro", uri=True)
    try:
        rows = {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("watches", "checks", "counts", "alerts", "snapshots")
        }
    finally:
        db.close()
    blobs = {str(p.relative_to(root)): p.read_bytes() for p in (root / "snapshots").rglob("*.gz")}
    return rows | blobs


def assert_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every row and every blob from before is there after, unchanged."""
    for key, value in before.items():
        if isinstance(value, list):
            missing = [row for row in value if row not in after[key]]
            assert missing == [], f"{key}: rows lost or changed"
        else:
            assert after.get(key) == value, f"{key}: lost or changed"


def test_full_disk_gives_one_line_and_keeps_the_data(tmp_path: Path, server: ReplayServer) -> None:
    root = tmp_path / "ws"
    with mounted("-t", "tmpfs", "-o", "size=3m", "tmpfs", target=root):
        small_workspace(root, server, pages=2)
        assert CliRunner().invoke(cli, ["--workspace", str(root), "check"]).exit_code == 0
        before = snapshot_of(root)
        noise = "".join(random.Random(1).choices(string.ascii_letters + " ", k=6_000_000))
        server.set("/s1", Page.html(f"<p>{noise}</p>"))  # compresses to more than the disk holds
        result = subprocess.run(
            [sys.executable, "-m", "pagewatch", "--workspace", str(root), "check"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("Error: the disk is full: cannot write ")
        assert str(root) in line
        _, alerts = consistent(root)
        assert alerts == []
        assert_kept(before, snapshot_of(root))  # nothing lost


def test_read_only_workspace_gives_one_line_and_still_reads(
    tmp_path: Path, server: ReplayServer
) -> None:
    root = tmp_path / "ws"
    small_workspace(root, server, pages=2)
    assert CliRunner().invoke(cli, ["--workspace", str(root), "check"]).exit_code == 0
    before = snapshot_of(root)
    with mounted("--bind", "-o", "ro", str(root), target=root):
        subprocess.run(["mount", "-o", "remount,ro,bind", str(root)], check=True)
        if os.access(root, os.W_OK) and not _read_only(root):
            pytest.skip("the bind mount is not read-only here")
        result = subprocess.run(
            [sys.executable, "-m", "pagewatch", "--workspace", str(root), "check"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert (
            line
            == f"Error: the workspace is read-only: cannot write {root / 'pagewatch.db'}"
            + (" (attempt to write a readonly database)")
        )
        add = ["add", "--list", "more", "--phrase", "Uyghur", server.url("/s9")]
        for command in (["run"], add):
            done = subprocess.run(
                [sys.executable, "-m", "pagewatch", "--workspace", str(root), *command],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 1, done.stderr
            [line] = done.stderr.strip().splitlines()  # one line, no traceback
            assert line.startswith("Error: ") and "read-only" in line.lower(), line
        shown = CliRunner().invoke(cli, ["--workspace", str(root), "history", server.url("/s0")])
        assert shown.exit_code == 0, shown.output  # the evidence can still be read
        assert snapshot_of(root) == before
    assert snapshot_of(root) == before


def _read_only(path: Path) -> bool:
    try:
        (path / ".probe").write_bytes(b"")
    except OSError:
        return True
    (path / ".probe").unlink()
    return False
