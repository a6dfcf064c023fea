"""Watch health: failing after three intervals without a capture, blind behind stand-ins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pagewatch.check import _failed_row, config_hash
from pagewatch.cli import cli
from pagewatch.health import RecentCheck, health
from pagewatch.models import FailedCheck, PhraseGroup, Watch
from pagewatch.replay import Page, ReplayServer
from pagewatch.store import Store
from pagewatch.workspace import select_watches

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
W = Watch("https://v.example/d", "l", 3600, (PhraseGroup("u", ("Uyghur",)),))


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def check(hours: float, outcome: str = "capture", reason: str = "") -> RecentCheck:
    return RecentCheck(ago(hours), outcome, reason, "")


@pytest.mark.parametrize(
    ("recent", "last_capture", "first", "state"),
    [
        ([], None, None, "new"),
        ([check(0.5)], ago(0.5), ago(10), "ok"),
        ([check(0.5, "failed", "timeout"), check(1.5, "failed", "timeout")], ago(2.5), ago(10),
         "ok"),
        ([check(0.5, "failed", "timeout"), check(1.5, "failed", "timeout")], ago(3.5), ago(10),
         "failing"),
        ([check(0.5, "failed", "connect")], None, ago(4), "failing"),
        ([check(0.5, "failed", "connect")], None, ago(1), "ok"),
        ([check(0.5, "unusable", "suspect"), check(1.5, "failed", "http_403"),
          check(2.5, "failed", "http_429")], ago(3.5), ago(10), "blind"),
        ([check(0.5, "unusable", "suspect"), check(1.5, "capture")], ago(1.5), ago(10), "ok"),
    ],
    ids=["new", "ok", "failing-but-not-3-intervals", "failing", "never-captured-long",
         "never-captured-short", "blind", "one-suspect-is-not-blind"],
)  # fmt: skip
def test_health(
    recent: list[RecentCheck], last_capture: datetime | None, first: datetime | None, state: str
) -> None:
    assert health(W, recent, last_capture, first, NOW).state == state


def test_status_command(tmp_path: Path, server: ReplayServer) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["--workspace", str(tmp_path), "init"])
    server.set("/ok", Page.html("<p>Is it Uyghur</p>"))
    server.set("/walled", Page(b"denied", 403))
    body = "".join(
        f'\n[[watch]]\nurl = "{server.url(p)}"\n' for p in ("/ok", "/walled", "/unchecked")
    )
    (tmp_path / "watchlists" / "s.toml").write_text('[phrases]\nu = ["Uyghur"]\n' + body, "utf-8")
    for _ in range(3):
        args = ["--workspace", str(tmp_path), "check", server.url("/ok"), server.url("/walled")]
        assert runner.invoke(cli, args).exit_code == 0
    result = runner.invoke(cli, ["--workspace", str(tmp_path), "status"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 watches: 1 ok, 0 failing, 1 blind, 1 new; 1 due now; last check ")
    assert lines[1].startswith(
        f"  blind    {server.url('/walled')} [s]  last 3 checks met a stand-in"
    )
    states = json.loads(
        runner.invoke(cli, ["--workspace", str(tmp_path), "status", "--json"]).stdout
    )
    assert [(s["url"], s["state"], s["due_now"]) for s in states] == [
        (server.url("/ok"), "ok", False),
        (server.url("/walled"), "blind", False),
        (server.url("/unchecked"), "new", True),
    ]


def test_a_health_alert_a_crash_left_unraised_is_raised_by_the_next_check(
    tmp_path: Path, server: ReplayServer
) -> None:
    """A check stored, then the process killed before its health alert: the next check (in a
    new process) raises it first, then the alert its own outcome calls for."""
    runner = CliRunner()
    ws = ["--workspace", str(tmp_path)]
    runner.invoke(cli, [*ws, "init"])
    server.set("/walled", Page(b"denied", 403))
    (tmp_path / "watchlists" / "s.toml").write_text(
        f'[phrases]\nu = ["Uyghur"]\n\n[[watch]]\nurl = "{server.url("/walled")}"\n', "utf-8"
    )
    for _ in range(2):
        assert runner.invoke(cli, [*ws, "check"]).exit_code == 0
    watch = select_watches(tmp_path)[0]
    store = Store(tmp_path)
    watch_id = store.watch_id(watch.url, watch.list)[0]
    failed = FailedCheck(watch.url, "http_403", "HTTP 403", datetime.now(UTC), 403, watch.url)
    store.add_check(_failed_row(watch_id, failed, config_hash(watch)))  # and then the kill
    store.close()
    assert _kinds(runner, ws) == []

    server.set("/walled", Page.html("<p>Is it Uyghur</p>"))
    assert runner.invoke(cli, [*ws, "check"]).exit_code == 0
    assert _kinds(runner, ws) == ["blocked", "restored_health"]


def _kinds(runner: CliRunner, ws: list[str]) -> list[str]:
    found = json.loads(runner.invoke(cli, [*ws, "alerts", "--json"]).stdout)
    return [a["kind"] for a in sorted(found, key=lambda a: a["id"])]


def test_a_health_alert_that_could_not_be_written_is_raised_at_the_next_check(
    server: ReplayServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One checker for the life of `pagewatch run`: a database busy at the moment a `failing`
    alert was due does not lose it; the next check raises it before its own."""
    import asyncio

    from conftest import Clock

    from pagewatch.check import Checker
    from pagewatch.errors import StoreError
    from pagewatch.fetch import FetchPolicy, make_client
    from pagewatch.workspace import init

    init(tmp_path)
    store, clock = Store(tmp_path), Clock()
    real, busy = Store.raise_health, [False]

    def raise_health(self: Store, row: dict[str, object]) -> int | None:
        if busy[0]:
            busy[0] = False
            raise StoreError("database error: database is locked")
        return real(self, row)

    monkeypatch.setattr(Store, "raise_health", raise_health)
    watch = Watch(server.url("/p"), "t", 3600, W.groups)

    async def go() -> None:
        async with make_client(FetchPolicy()) as client:
            checker = Checker(store, client, clock, confirm_delay=0)
            server.set("/p", Page.html("<p>Is it Uyghur</p>"))
            await checker.check(watch)
            server.set("/p", Page.html("oops", status=500))
            for attempt in range(3):
                clock.advance(hours=1)
                busy[0] = attempt == 2  # the third failure would raise `failing`
                await checker.check(watch)
            assert [a["kind"] for a in store.alerts(status="all")] == []
            server.set("/p", Page.html("<p>Is it Uyghur</p>"))
            clock.advance(hours=1)
            await checker.check(watch)

    asyncio.run(go())
    kinds = [a["kind"] for a in sorted(store.alerts(status="all"), key=lambda a: a["id"])]
    assert kinds == ["failing", "restored_health"]
