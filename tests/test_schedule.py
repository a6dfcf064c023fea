"""`pagewatch run`: due times from the database, live edits, a clean stop, one per workspace."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import wait_for

from pagewatch.cli import cli
from pagewatch.replay import Page, ReplayServer
from pagewatch.schedule import CATCH_UP_SPREAD_S, first_due, run_lock
from pagewatch.store import iso
from pagewatch.workspace import init

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "due_from", "due_to"),
    [
        (None, NOW, NOW + timedelta(seconds=CATCH_UP_SPREAD_S)),
        (NOW - timedelta(days=3), NOW, NOW + timedelta(seconds=CATCH_UP_SPREAD_S)),
        (NOW - timedelta(minutes=20), NOW + timedelta(minutes=40), NOW + timedelta(minutes=40)),
    ],
    ids=["never-checked", "overdue-by-many-intervals", "not-yet-due"],
)
def test_first_due(last: datetime | None, due_from: datetime, due_to: datetime) -> None:
    for _ in range(50):
        assert due_from <= first_due(3600, last, NOW) <= due_to


def test_second_run_refuses(tmp_path: Path) -> None:
    init(tmp_path)
    with run_lock(tmp_path):
        result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "run"])
    assert result.exit_code == 1
    assert "`pagewatch run` is already running here" in result.stderr


def test_a_lock_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    init(tmp_path)
    lock = tmp_path / ".pagewatch-run.lock"
    lock.mkdir()
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "run"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write {lock}: Is a directory\n"


def checks(root: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(f"file:{root / 'pagewatch.db'}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT w.url, c.outcome, c.checked_at FROM checks c"
            " JOIN watches w ON w.id = c.watch_id ORDER BY c.id"
        ).fetchall()
    finally:
        db.close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pagewatch", "--workspace", str(tmp_path), "run",
             "--reload-every", "0.2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def watchlist(root: Path, *urls: str, every: str = "2s") -> None:
    body = f'every = "{every}"\n[phrases]\nuyghur = ["Uyghur"]\n'
    body += "".join(f'\n[[watch]]\nurl = "{u}"\n' for u in urls)
    (root / "watchlists" / "live.toml").write_text(body, encoding="utf-8")


@pytest.mark.slow
def test_run_checks_on_interval_reloads_and_stops_cleanly(
    tmp_path: Path, server: ReplayServer, running: Callable[[], subprocess.Popen[str]]
) -> None:
    init(tmp_path)
    server.set("/a", Page.html("<p>Is it Uyghur</p>"))
    server.set("/b", Page.html("<p>Uyghur alarm</p>"))
    watchlist(tmp_path, server.url("/a"))
    proc = running()
    wait_for(lambda: len(checks(tmp_path)) >= 2)  # on its interval, again and again

    watchlist(tmp_path, server.url("/a"), server.url("/b"))  # an edit, no restart
    wait_for(lambda: any(url == server.url("/b") for url, _, _ in checks(tmp_path)))

    server.set("/a", Page.html("<p>Is it a face</p>"))  # the phrase goes
    result = lambda: CliRunner().invoke(cli, ["--workspace", str(tmp_path), "alerts", "--json"])  # noqa: E731
    wait_for(lambda: len(json.loads(result().stdout)) == 1)
    [alert] = json.loads(result().stdout)
    assert (alert["url"], alert["kind"]) == (server.url("/a"), "removed")

    # a slow page, so that checks are in flight when SIGTERM comes: they finish and are stored
    server.set("/b", Page(b"<p>Uyghur alarm</p>", delay=1.5))
    seen = len(server.requests)  # requests from here on get the slow page
    wait_for(lambda: "/b" in server.requests[seen:])  # a check of /b now waits on its answer
    before = len(checks(tmp_path))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in err.splitlines()[-1]
    assert "Traceback" not in err and "ERROR" not in err, err
    assert "stopping: waiting for 0 check(s)" not in err  # one was in flight, as intended
    after = checks(tmp_path)
    assert len(after) > before
    assert after[-1][1] == "capture"  # the in-flight check finished and was stored
    logged = [line for line in err.splitlines() if " capture http" in line]
    assert len(logged) == sum(1 for _, outcome, _ in checks(tmp_path) if outcome == "capture")


@pytest.mark.slow
def test_restart_after_downtime_runs_one_catch_up_check(
    tmp_path: Path, server: ReplayServer, running: Callable[[], subprocess.Popen[str]]
) -> None:
    init(tmp_path)
    server.set("/a", Page.html("<p>Is it Uyghur</p>"))
    watchlist(tmp_path, server.url("/a"), every="1h")
    CliRunner().invoke(cli, ["--workspace", str(tmp_path), "check"])
    db = sqlite3.connect(tmp_path / "pagewatch.db")
    with db:  # pretend the last check was five hours ago: five intervals missed
        db.execute(
            "UPDATE checks SET checked_at = ?", [iso(datetime.now(UTC) - timedelta(hours=5))]
        )
    db.close()

    proc = running()
    wait_for(lambda: len(checks(tmp_path)) == 2, timeout=CATCH_UP_SPREAD_S + 10)
    time.sleep(2)
    assert len(checks(tmp_path)) == 2  # one catch-up, not five
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
