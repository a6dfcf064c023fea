"""One watch through the line, over real HTTP on 127.0.0.1: what is stored, when it is compared,
and how trouble with one watch or capture is contained."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagewatch import check as check_module
from pagewatch import extract
from pagewatch.blobs import Blobs
from pagewatch.check import Checker
from pagewatch.cli import cli
from pagewatch.fetch import make_client
from pagewatch.models import PhraseGroup, Watch
from pagewatch.replay import Page, ReplayServer
from pagewatch.store import Store

UYGHUR = (PhraseGroup("uyghur", ("Uyghur", "Uighur")),)
WITH = "<html><body><main><p>Glasses.</p><p>Is it Uyghur: boolean.</p></main></body></html>"
WITHOUT = "<html><body><main><p>Glasses.</p></main></body></html>"


def watch(url: str, selector: str | None = None, groups: tuple[PhraseGroup, ...] = UYGHUR) -> Watch:
    return Watch(url=url, list="t", every=3600, groups=groups, selector=selector)


def run(store: Store, clock: Any, *watches: Watch) -> list[Any]:
    async def go() -> list[Any]:
        async with make_client(check_module.FetchPolicy()) as client:
            checker = Checker(store, client, clock, confirm_delay=0)
            return [await checker.check(w) for w in watches]

    return asyncio.run(go())


async def another_process_checks(store: Store, clock: Any, w: Watch) -> None:
    """A check of ``w`` by another process, with its own connection, while ours is in flight."""
    other = Store(store.root)
    async with make_client(check_module.FetchPolicy()) as client:
        await Checker(other, client, clock, confirm_delay=0).check(w)
    other.close()


def alerts(store: Store) -> list[dict[str, Any]]:
    return store.alerts(status="all")


def test_unchanged_page_costs_a_row_not_a_blob_or_an_extraction(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)
    blobs = sorted(store.blobs.root.rglob("*.gz"))
    calls: list[object] = []
    real = extract.visible_text
    monkeypatch.setattr(extract, "visible_text", lambda *a: calls.append(a) or real(*a))
    clock.advance(hours=1)
    [outcome] = run(store, clock, w)
    assert (outcome.outcome, outcome.changed) == ("capture", False)
    assert calls == []
    assert sorted(store.blobs.root.rglob("*.gz")) == blobs
    assert store.db.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 2


def test_a_crash_between_store_and_compare_is_compared_next_time(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)
    seen_at = clock()

    def crash(*_: object) -> list[int]:
        raise KeyboardInterrupt  # stands for a kill after the capture's commit

    server.set("/p", Page.html(WITHOUT))
    clock.advance(hours=1)
    missing_at = clock()
    monkeypatch.setattr(Store, "finish_compare", crash)
    with pytest.raises(KeyboardInterrupt):
        run(store, clock, w)
    monkeypatch.undo()
    assert alerts(store) == []

    clock.advance(hours=1)  # the next check compares the interrupted capture first
    run(store, clock, w)
    run(store, clock, w)
    [alert] = alerts(store)
    assert (alert["kind"], alert["count_before"], alert["count_after"]) == ("removed", 1, 0)
    assert (alert["last_seen_at"], alert["first_missing_at"]) == (
        seen_at.isoformat(timespec="microseconds"),
        missing_at.isoformat(timespec="microseconds"),
    )


def test_a_capture_older_than_a_stored_one_is_kept_but_not_compared(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    clock.advance(hours=2)
    run(store, clock, w)  # taken at T+2h
    server.set("/p", Page.html(WITHOUT))
    clock.advance(hours=-1)
    [late] = run(store, clock, w)  # taken at T+1h, stored after: a slow fetch overtaken
    assert late.outcome == "superseded"
    assert alerts(store) == []
    clock.advance(hours=5)
    run(store, clock, w)  # the timeline is T+2h (with) -> T+6h (without): one removal
    [alert] = alerts(store)
    assert alert["kind"] == "removed"


@pytest.mark.parametrize("snapshot", ["kept", "deleted"])
def test_a_selector_added_after_a_redesign_raises_nothing_then_watches(
    store: Store, server: ReplayServer, clock: Any, snapshot: str
) -> None:
    """The old page (all in <div>s) cannot be read with the new selector, or not at all: its
    stored counts are of the whole page, the new ones of <main>. Compared, they would read as
    a removal the vendor never made. Nothing is compared; the new capture is the baseline."""
    nav = "<nav>Is it Uyghur? See the guide.</nav>"
    rows = "<p>Glasses.</p><p>Is it Uyghur: boolean.</p>"
    server.set("/p", Page.html(f"<html><body><div>{nav}</div><div>{rows}</div></body></html>"))
    run(store, clock, watch(server.url("/p")))
    if snapshot == "deleted":
        for blob in store.blobs.root.rglob("*.gz"):
            blob.unlink()
    redesigned = f"<html><body>{nav}<main>{rows}</main></body></html>"  # the same text
    server.set("/p", Page.html(redesigned))
    clock.advance(hours=1)
    [outcome] = run(store, clock, watch(server.url("/p"), selector="main"))
    assert (outcome.outcome, alerts(store)) == ("capture", [])
    server.set("/p", Page.html(redesigned.replace("<p>Is it Uyghur: boolean.</p>", "")))
    clock.advance(hours=1)
    run(store, clock, watch(server.url("/p"), selector="main"))
    [alert] = alerts(store)
    assert (alert["kind"], alert["count_before"], alert["count_after"]) == ("removed", 1, 0)


def test_narrowed_group_is_recounted_not_alerted(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page.html("<p>Uighur alarm. Is it Uyghur.</p>"))
    run(store, clock, watch(server.url("/p")))
    clock.advance(hours=1)
    narrow = (PhraseGroup("uyghur", ("Uyghur",)),)
    run(store, clock, watch(server.url("/p"), groups=narrow))
    assert alerts(store) == []


def test_an_unreadable_old_snapshot_still_alerts_and_spares_the_pass(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/a", Page.html(WITH))
    server.set("/b", Page.html(WITH + "<p>b</p>"))
    a, b = watch(server.url("/a")), watch(server.url("/b"))
    run(store, clock, a, b)
    sha = store.last_capture(store.watch_id(a.url)[0]).sha256  # type: ignore[union-attr]
    store.blobs.path(sha).write_bytes(b"not gzip")  # damaged evidence
    server.set("/a", Page.html(WITHOUT))
    server.set("/b", Page.html(WITHOUT + "<p>b</p>"))
    clock.advance(hours=1)
    outcomes = run(store, clock, a, b)
    assert [o.outcome for o in outcomes] == ["capture", "capture"]
    by_url = {x["url"]: x for x in alerts(store)}
    assert by_url[a.url]["context"] == "(passage unavailable)"
    assert by_url[a.url]["kind"] == by_url[b.url]["kind"] == "removed"
    assert "Is it Uyghur" in by_url[b.url]["context"]


def test_an_unexpected_error_in_one_watch_spares_the_others(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("/a", Page.html(WITH))
    server.set("/b", Page.html(WITH))
    real = extract.visible_text

    def flaky(content: bytes, *rest: Any) -> Any:
        if b"boom" in content:
            raise RuntimeError("extractor bug")
        return real(content, *rest)

    monkeypatch.setattr(extract, "visible_text", flaky)
    server.set("/a", Page.html(WITH + "<!-- boom -->"))
    outcomes = run(store, clock, watch(server.url("/a")), watch(server.url("/b")))
    assert [o.outcome for o in outcomes] == ["error", "capture"]
    assert outcomes[0].message == "RuntimeError: extractor bug"


@pytest.mark.parametrize(
    ("code", "message"),
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the workspace is read-only")],
    ids=["disk-full", "read-only"],
)
def test_an_unwritable_workspace_is_one_clear_line(
    root: Path, server: ReplayServer, monkeypatch: pytest.MonkeyPatch, code: int, message: str
) -> None:
    server.set("/p", Page.html(WITH))
    (root / "watchlists" / "w.toml").write_text(
        f'[phrases]\nu = ["Uyghur"]\n[[watch]]\nurl = "{server.url("/p")}"\n', encoding="utf-8"
    )

    def refuse(self: Blobs, target: Path, data: bytes) -> int:
        raise OSError(code, "refused")

    monkeypatch.setattr(Blobs, "_write", refuse)
    result = CliRunner().invoke(cli, ["--workspace", str(root), "check"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {message}: cannot write {root / 'snapshots'}")
    assert len(result.stderr.splitlines()) == 1
    opened = Store(root)  # nothing half-written: no check row points at the missing blob
    try:
        assert opened.db.execute("SELECT COUNT(*) FROM checks").fetchone()[0] == 0
    finally:
        opened.close()


def test_a_renamed_watchlist_keeps_its_history(
    root: Path, server: ReplayServer, clock: Any
) -> None:
    from pagewatch.workspace import check_pass, select_watches

    server.set("/p", Page.html(WITH))
    old = root / "watchlists" / "face.toml"
    old.write_text(f'[phrases]\nu = ["Uyghur"]\n[[watch]]\nurl = "{server.url("/p")}"\n', "utf-8")
    store = Store(root)
    try:
        asyncio.run(check_pass(store, select_watches(root), now=clock))
        old.rename(root / "watchlists" / "face-recognition.toml")  # an analyst renames the list
        server.set("/p", Page.html(WITHOUT))
        clock.advance(hours=1)
        asyncio.run(check_pass(store, select_watches(root), now=clock))
        [alert] = store.alerts(status="all")
    finally:
        store.close()
    assert (alert["kind"], alert["list"]) == ("removed", "face-recognition")


def test_a_removal_the_second_fetch_does_not_confirm_is_not_alerted(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)
    clock.advance(hours=1)
    server.queue("/p", Page.html(WITHOUT), Page.html(WITH))  # a CDN serving two versions
    [outcome] = run(store, clock, w)
    assert alerts(store) == []
    rows = store.db.execute("SELECT outcome, reason FROM checks ORDER BY id").fetchall()
    assert rows == [("capture", ""), ("unconfirmed", "unconfirmed"), ("capture", "")]
    assert "change not confirmed by check #3" in outcome.message

    clock.advance(hours=1)
    server.set("/p", Page.html(WITHOUT))  # now it really went: confirmed, alerted once
    missing_at = clock()
    run(store, clock, w)
    [alert] = alerts(store)
    assert alert["first_missing_at"] == missing_at.isoformat(timespec="microseconds")
    assert alert["check_before"] == 3  # compared with the last trusted capture, not the flap


def test_a_failed_second_fetch_leaves_the_change_to_the_next_capture(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)
    seen_at = clock()
    clock.advance(hours=1)
    missing_at = clock()
    server.queue("/p", Page.html(WITHOUT), Page(b"slow down", 429))  # rate-limited repeat
    [outcome] = run(store, clock, w)
    assert alerts(store) == []
    assert "change awaits confirmation by the next capture" in outcome.message
    rows = store.db.execute("SELECT outcome, compared FROM checks ORDER BY id").fetchall()
    assert rows == [("capture", 1), ("capture", 0), ("failed", 1)]

    clock.advance(hours=1)
    server.set("/p", Page.html(WITHOUT))  # the next check agrees: the window starts at #2
    run(store, clock, w)
    [alert] = alerts(store)
    assert (alert["last_seen_at"], alert["first_missing_at"]) == (
        seen_at.isoformat(timespec="microseconds"),
        missing_at.isoformat(timespec="microseconds"),
    )


def test_a_capture_left_by_a_crash_is_confirmed_by_the_next_one(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)

    async def killed(*_: object) -> None:
        raise KeyboardInterrupt  # a kill while waiting to confirm

    server.set("/p", Page.html(WITHOUT))  # one stale answer...
    clock.advance(hours=1)
    monkeypatch.setattr(Checker, "_second_look", killed)
    with pytest.raises(KeyboardInterrupt):
        run(store, clock, w)
    monkeypatch.undo()
    server.set("/p", Page.html(WITH))  # ...and the next check sees the phrase
    clock.advance(hours=1)
    run(store, clock, w)
    assert alerts(store) == []
    outcomes = store.db.execute("SELECT outcome FROM checks ORDER BY id").fetchall()
    assert outcomes == [("capture",), ("unconfirmed",), ("capture",)]


def test_an_unconfirmed_restore_does_not_reopen_the_removal(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))
    run(store, clock, w)
    server.set("/p", Page.html(WITHOUT))
    clock.advance(hours=1)
    run(store, clock, w)  # removed, confirmed
    clock.advance(hours=1)
    server.queue("/p", Page.html(WITH), Page.html(WITHOUT))  # one stale edge node
    run(store, clock, w)
    clock.advance(hours=1)
    run(store, clock, w)
    assert [a["kind"] for a in alerts(store)] == ["removed"]


def test_not_modified_is_an_unchanged_capture(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    blobs = sorted(store.blobs.root.rglob("*.gz"))
    clock.advance(hours=1)
    [outcome] = run(store, clock, w)
    assert (outcome.outcome, outcome.changed, outcome.message) == (
        "capture", False, "not modified (304)",
    )  # fmt: skip
    rows = store.db.execute("SELECT status, sha256, message FROM checks ORDER BY id").fetchall()
    assert rows[1] == (200, rows[0][1], "not modified (304)")
    assert sorted(store.blobs.root.rglob("*.gz")) == blobs

    server.set("/p", Page(WITHOUT.encode(), etag='"v2"'))  # a new version: fetched in full
    clock.advance(hours=1)
    run(store, clock, w)
    [alert] = alerts(store)
    assert (alert["kind"], alert["snapshot_before"]) == ("removed", rows[0][1])
    assert "Is it Uyghur" in alert["context"]  # the 304 capture's body is read from its blob


def test_validators_are_dropped_when_the_last_full_fetch_is_a_day_old(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    for _ in range(3):  # a server that keeps answering 304 while the body changed
        server.set("/p", Page(WITHOUT.encode(), etag='"v1"'))
        clock.advance(hours=10)
        run(store, clock, w)
    messages = [r[0] for r in store.db.execute("SELECT message FROM checks ORDER BY id")]
    assert messages[1:3] == ["not modified (304)", "not modified (304)"]
    assert messages[3] == ""  # 30 h after the last full fetch: fetched in full
    [alert] = alerts(store)
    assert alert["kind"] == "removed"


def test_a_304_stored_by_the_ordinary_path_is_still_marked_not_modified(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    from datetime import UTC, datetime

    from pagewatch.models import Capture

    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    store.db.execute("UPDATE checks SET compared = 0 WHERE id = 1")  # not the fast path
    # a 304 whose validators were read before the capture became pending (a race)
    reply = Capture(w.url, w.url, 304, (("ETag", '"v1"'),), b"", "", datetime.now(UTC))

    async def go() -> None:
        async with make_client(check_module.FetchPolicy()) as client:
            await Checker(store, client, clock, confirm_delay=0)._record(w, reply, compare=False)

    asyncio.run(go())
    rows = store.db.execute("SELECT message, sha256 FROM checks ORDER BY id").fetchall()
    assert rows[1] == ("not modified (304)", rows[0][1])


@pytest.mark.parametrize(
    "content_type",
    ["text/html; charset=iso-8859-1", "text/html; charset=gbk", "text/plain; charset=utf-8"],
    ids=["latin-1-lie", "gbk-lie", "served-as-text"],
)
def test_the_same_bytes_under_other_headers_raise_nothing(
    store: Store, server: ReplayServer, clock: Any, content_type: str
) -> None:
    """The vendor did not change the page: its headers did. Nothing went."""
    page = "<html><body><p>民族: <b>Uy</b>ghur</p></body></html>".encode()
    groups = (PhraseGroup("uyghur", ("Uyghur",)), PhraseGroup("ethnicity", ("民族",)))
    w = watch(server.url("/p"), groups=groups)
    server.set("/p", Page(page, 200, {"Content-Type": "text/html; charset=utf-8"}))
    run(store, clock, w)
    clock.advance(hours=1)
    server.set("/p", Page(page, 200, {"Content-Type": content_type}))
    run(store, clock, w)
    assert alerts(store) == []


def test_a_304_stands_for_the_capture_its_validators_came_from(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process stores a new version while our conditional GET is in flight, and an
    edge still on the old version answers our If-None-Match with 304: what we store is the
    old version, confirmed, not an empty page."""
    from pagewatch.models import Capture

    changed = WITH.replace("Glasses.", "Glasses. Smile.")
    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    clock.advance(hours=1)
    server.set("/p", Page(changed.encode(), etag='"v2"'))
    sent: list[dict[str, str]] = []

    async def racing_fetch(
        client: Any, url: str, now: Any, policy: Any, validators: Any, *_: Any
    ) -> Any:
        monkeypatch.setattr(check_module, "fetch", real_fetch)
        await another_process_checks(store, clock, w)
        clock.advance(seconds=30)
        sent.append(dict(validators))
        return Capture(url, url, 304, (("ETag", '"v1"'),), b"", "", clock())

    real_fetch = check_module.fetch
    monkeypatch.setattr(check_module, "fetch", racing_fetch)
    [outcome] = run(store, clock, w)
    assert sent == [{"If-None-Match": '"v1"'}]
    rows = store.db.execute("SELECT outcome, message, sha256 FROM checks ORDER BY id").fetchall()
    assert [r[:2] for r in rows] == [
        ("capture", ""), ("capture", ""), ("capture", "not modified (304)"),
    ]  # fmt: skip
    assert rows[2][2] == rows[0][2] != rows[1][2]  # the first version, confirmed again
    assert outcome.outcome == "capture"


def test_a_first_capture_is_compared_with_one_another_process_stored_meanwhile(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watch's first capture has nothing to be compared with and is stored compared, but
    only if it still is the first when its row is written: another process may have stored
    one while our fetch was in flight, and the removal since that one must be alerted."""
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))

    async def racing_fetch(
        client: Any, url: str, now: Any, policy: Any, validators: Any, *_: Any
    ) -> Any:
        monkeypatch.setattr(check_module, "fetch", real_fetch)
        await another_process_checks(store, clock, w)
        server.set("/p", Page.html(WITHOUT))
        clock.advance(seconds=30)
        return await real_fetch(client, url, now, policy, validators)

    real_fetch = check_module.fetch
    monkeypatch.setattr(check_module, "fetch", racing_fetch)
    [outcome] = run(store, clock, w)
    assert [(a["kind"], a["check_before"], a["check_after"]) for a in alerts(store)] == [
        ("removed", 1, 2)
    ]
    assert outcome.alert_ids


def test_a_stored_etag_that_cannot_be_sent_back_means_a_full_fetch(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    """An imported capture may carry an ETag with a control character; it is not sent back
    (it would make every later check of the watch fail), the page is fetched in full."""
    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    store.db.execute("UPDATE checks SET headers = ? WHERE id = 1", ['[["ETag", "W/\\"a\\fb\\""]]'])
    clock.advance(hours=1)
    [outcome] = run(store, clock, w)
    assert (outcome.outcome, outcome.message) == ("capture", "HTTP 200, unchanged")


def test_a_pass_reads_ahead_but_never_past_another_processs_capture(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass reads its next watches' latest captures in one go; a capture another process
    stores after that read is the one the check goes by: its validators are the ones sent."""
    server.set("/p", Page(WITH.encode(), etag='"v1"'))
    w = watch(server.url("/p"))
    run(store, clock, w)
    clock.advance(hours=1)
    sent: list[dict[str, str]] = []
    real_fetch = check_module.fetch

    async def spy(client: Any, url: str, now: Any, policy: Any, validators: Any, *_: Any) -> Any:
        sent.append(dict(validators))
        return await real_fetch(client, url, now, policy, validators)

    async def go() -> Any:
        async with make_client(check_module.FetchPolicy()) as client:
            checker = Checker(store, client, clock, confirm_delay=0)
            assert next(checker._read_ahead([w])) == w  # v1 read as the latest capture
            server.set("/p", Page(WITH.replace("Glasses.", "Hats.").encode(), etag='"v2"'))
            other = Store(store.root)  # another process stores v2 meanwhile
            await Checker(other, client, clock, confirm_delay=0).check(w)
            other.close()
            clock.advance(minutes=5)
            monkeypatch.setattr(check_module, "fetch", spy)
            return await checker.check(w)

    outcome = asyncio.run(go())
    assert sent == [{"If-None-Match": '"v2"'}]
    assert (outcome.outcome, outcome.message) == ("capture", "not modified (304)")


def test_unchanged_pages_are_committed_before_their_checks_return(
    store: Store, server: ReplayServer, clock: Any
) -> None:
    """Unchanged pages share a commit, but each check returns only once its row is stored."""
    watches = [watch(server.url(f"/p{i}")) for i in range(12)]
    for i in range(12):
        server.set(f"/p{i}", Page(WITH.encode(), etag=f'"v{i}"'))
    run(store, clock, *watches)
    clock.advance(hours=1)
    reader = Store(store.root)  # what another process sees the moment a check is done
    seen: list[tuple[str, int]] = []

    def on_done(outcome: Any) -> None:
        row = reader.db.execute("SELECT outcome FROM checks WHERE id = ?", [outcome.check_id])
        seen.append((row.fetchone()[0], outcome.check_id))

    async def go() -> None:
        async with make_client(check_module.FetchPolicy()) as client:
            await Checker(store, client, clock, confirm_delay=0).run_pass(watches, on_done)

    asyncio.run(go())
    reader.close()
    assert sorted(seen) == [("capture", check_id) for check_id in range(13, 25)]


def test_a_failed_shared_commit_fails_only_the_checks_in_it(
    store: Store, server: ReplayServer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pagewatch.errors import StoreError

    server.set("/same", Page(WITH.encode(), etag='"v1"'))
    server.set("/new", Page(WITH.encode()))
    same, new = watch(server.url("/same")), watch(server.url("/new"))
    run(store, clock, same)
    clock.advance(hours=1)

    def trouble(*_: object) -> None:
        raise StoreError("database error: disk I/O error")

    monkeypatch.setattr(Store, "add_compared", trouble)
    outcomes = run(store, clock, same, new)
    assert [(o.outcome, o.message) for o in outcomes] == [
        ("error", "StoreError: database error: disk I/O error"),
        ("capture", "HTTP 200"),
    ]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: no process pool")
def test_a_big_pass_s_workers_store_and_read_bodies_importing_no_more_than_that(
    tmp_path: Path,
) -> None:
    """A big pass's workers are spawned processes: each imports the main script again, then
    what its jobs need. Neither the `pagewatch` command's script (pagewatch.__main__) nor the
    jobs (pagewatch.analysis) import the CLI, the HTTP client or the database, so a worker
    starts in a fraction of the time; and what a worker stores is there for the checker."""
    script = tmp_path / "pagewatch_command.py"
    script.write_text(  # the shape of the console script pip writes for `pagewatch`
        "import sys\n"
        "from pagewatch.__main__ import main\n"
        "if __name__ == '__main__':\n"
        "    import hashlib, json\n"
        "    from pathlib import Path\n"
        "    from pagewatch import analysis\n"
        "    from pagewatch.blobs import Blobs\n"
        "    from pagewatch.models import PhraseGroup\n"
        "    pool = analysis.make_executor(analysis.POOL_THRESHOLD)\n"
        f"    body = {WITH.encode()!r}\n"
        "    sha = hashlib.sha256(body).hexdigest()\n"
        "    blobs = Blobs(Path(sys.argv[1]))\n"
        "    groups = (PhraseGroup('uyghur', ('Uyghur',)),)\n"
        "    job = analysis.store_and_analyse\n"
        "    found = pool.submit(job, blobs, body, sha, body, 'text/html', None, groups).result()\n"
        "    loaded = pool.submit(eval, 'sorted(__import__(\"sys\").modules)').result()\n"
        "    pool.shutdown()\n"
        "    print(json.dumps([found.counts['uyghur'].count, blobs.get(sha) == body, loaded]))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "snapshots")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    count, stored, loaded = json.loads(done.stdout)
    assert (count, stored) == (1, True)
    assert "pagewatch.analysis" in loaded
    heavy = ["pagewatch.cli", "pagewatch.check", "pagewatch.store", "pagewatch.client", "httpx",
             "h11", "click", "sqlite3"]  # fmt: skip
    assert [m for m in heavy if m in loaded] == []


def test_a_clock_behind_the_latest_check_is_said_not_kept_quiet(
    store: Store, server: ReplayServer, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Captures taken by a clock that stepped back are older than the latest one: superseded,
    never compared, until the clock passes it. A pass says so rather than stay silent."""
    server.set("/p", Page.html(WITH))
    w = watch(server.url("/p"))

    async def one_pass() -> None:
        async with make_client(check_module.FetchPolicy()) as client:
            await Checker(store, client, clock, confirm_delay=0).run_pass([w])

    asyncio.run(one_pass())
    clock.advance(hours=1)
    asyncio.run(one_pass())
    assert "the clock reads" not in caplog.text
    clock.advance(hours=-3)
    asyncio.run(one_pass())
    [record] = [r for r in caplog.records if "the clock reads" in r.getMessage()]
    assert "before this workspace's latest check" in record.getMessage()
