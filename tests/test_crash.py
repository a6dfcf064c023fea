"""Nothing lost: SIGKILL a real `pagewatch check` mid-pass, again and again, and the workspace
still opens consistent; the pass after raises every alert exactly once."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pagewatch.replay import Page, ReplayServer
from pagewatch.workspace import init

PAGES = 40


def page(i: int, with_phrase: bool) -> Page:
    filler = " ".join(
        f"Paragraph {i}-{k} about face attributes and their accuracy." for k in range(300)
    )
    phrase = "<p>Is it Uyghur: boolean attribute.</p>" if with_phrase else ""
    return Page.html(
        f"<html><body><main><p>{filler}</p>{phrase}<p>End {i}.</p></main></body></html>"
    )


def consistent(root: Path) -> tuple[int, int]:
    """Assert the workspace is whole; return (captures, alerts)."""
    db = sqlite3.connect(root / "pagewatch.db")
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
        dupes = db.execute(
            "SELECT COUNT(*) FROM (SELECT watch_id, grp, check_before FROM alerts"
            " GROUP BY watch_id, grp, check_before, kind HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert dupes == 0
        captures = db.execute("SELECT COUNT(*) FROM checks WHERE outcome = 'capture'").fetchone()[0]
        alerts = db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]
        return captures, alerts
    finally:
        db.close()


def check_process(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pagewatch", "--workspace", str(root), "check"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_mid_check_loses_nothing(tmp_path: Path, server: ReplayServer) -> None:
    init(tmp_path)
    lines = ['[phrases]\nuyghur = ["Uyghur"]\n']
    for i in range(PAGES):
        server.set(f"/p{i}", page(i, True))
        lines.append(f'[[watch]]\nurl = "{server.url(f"/p{i}")}"\n')
    (tmp_path / "watchlists" / "crash.toml").write_text("\n".join(lines), encoding="utf-8")
    seed = check_process(tmp_path)
    _, err = seed.communicate(timeout=60)
    assert seed.returncode == 0, err.decode()
    captures, alerts = consistent(tmp_path)
    assert (captures, alerts) == (PAGES, 0)

    # the phrase leaves every page; kill passes at staggered moments while they store it
    for i in range(PAGES):
        server.set(f"/p{i}", page(i, False))
    kills = 0
    for delay in (0.05, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3):
        proc = check_process(tmp_path)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=30)
        now_captures, _ = consistent(tmp_path)
        assert now_captures >= captures, "a kill lost earlier captures"
        captures = now_captures
    assert kills >= 3, "the pass ended before it could be killed: make it longer"

    final = check_process(tmp_path)
    _, err = final.communicate(timeout=60)
    assert final.returncode == 0, err.decode()
    consistent(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "pagewatch", "--workspace", str(tmp_path), "alerts", "--json"],
        capture_output=True,
        check=True,
    ).stdout
    alerts_json = json.loads(out)
    # every page lost its phrase once: exactly one removal per page, none repeated, none missed
    assert sorted(a["url"] for a in alerts_json) == sorted(
        server.url(f"/p{i}") for i in range(PAGES)
    )
    assert {(a["kind"], a["count_before"], a["count_after"]) for a in alerts_json} == {
        ("removed", 1, 0)
    }
