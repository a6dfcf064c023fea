"""History added after the fact (imports, backfills) and re-detection over whole timelines;
the questions analysts ask of them (`changes --around`, `timeline`)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pagewatch.cli import cli
from pagewatch.ingest import ingest, normal_url
from pagewatch.models import ArchivedResponse
from pagewatch.replay import Page, ReplayServer
from pagewatch.store import Store, iso
from pagewatch.watchlist import add_watch
from pagewatch.workspace import check_pass, redetect_watches, select_watches

URL = "https://vendor.example/docs/face-attributes"
T0 = datetime(2020, 11, 2, 9, 0, tzinfo=UTC)
WITH = (
    "<html><body><main><p>Attributes: glasses.</p><p>Is it Uyghur: boolean.</p></main>"
    "</body></html>"
)
WITHOUT = "<html><body><main><p>Attributes: glasses.</p></main></body></html>"


def pw(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args])


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def archived(hours: float, html: str, url: str = URL, status: int = 200) -> ArchivedResponse:
    return ArchivedResponse(
        target_uri=url,
        status=status,
        headers=(("Content-Type", "text/html; charset=utf-8"),),
        body=html.encode(),
        captured_at=at(hours),
        origin=f"test#{hours}",
    )


def bring_in(root: Path, *responses: ArchivedResponse, source: str = "import") -> Any:
    """Store archived responses and decide the affected watches again, as `import` does."""
    store = Store(root)
    try:
        watches = select_watches(root)
        summary = ingest(store, watches, responses, source)
        redone = asyncio.run(
            redetect_watches(store, list(summary.watches.values()), now=lambda: at(1000))
        )
    finally:
        store.close()
    return summary, redone


def alerts(root: Path) -> list[dict[str, Any]]:
    result = pw(root, "alerts", "--json", "--status", "all")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def windows(root: Path) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["last_seen_at"], a["first_missing_at"]) for a in alerts(root)]


@pytest.fixture
def watched(root: Path) -> Path:
    add_watch(root / "watchlists", "vendors", URL, ["uyghur=Uyghur,Uighur"], every="1h")
    return root


def test_an_imported_history_raises_the_removal_it_shows(watched: Path) -> None:
    summary, [redone] = bring_in(
        watched,
        archived(1, WITH),
        archived(2, WITH),
        archived(3, WITHOUT),
        archived(4, WITHOUT),
    )
    assert (summary.added, summary.duplicates, summary.unwatched) == (4, 0, 0)
    assert windows(watched) == [("removed", iso(at(2)), iso(at(3)))]
    [alert] = alerts(watched)
    assert alert["source"] == "import"
    assert "[-Is it Uyghur: boolean.-]" in alert["context"]
    assert redone.added == (alert["id"],)


def test_a_second_import_adds_nothing(watched: Path) -> None:
    history = [archived(1, WITH), archived(3, WITHOUT), archived(4, WITHOUT)]
    bring_in(watched, *history)
    first = alerts(watched)
    summary, [redone] = bring_in(watched, *history)
    assert (summary.added, summary.duplicates) == (0, 3)
    assert (redone.added, redone.moved, redone.stale) == ((), (), ())
    assert alerts(watched) == first


def test_a_change_the_next_capture_contradicts_is_not_alerted(watched: Path) -> None:
    bring_in(watched, archived(1, WITH), archived(2, WITHOUT), archived(3, WITH), archived(4, WITH))
    assert alerts(watched) == []
    history = json.loads(pw(watched, "history", "--json", URL).stdout)
    assert [h["outcome"] for h in history] == ["capture", "unconfirmed", "capture", "capture"]


def test_removal_and_restore_from_archived_history(watched: Path) -> None:
    bring_in(
        watched,
        archived(1, WITH),
        archived(2, WITHOUT),
        archived(3, WITHOUT),
        archived(4, WITH),
        archived(5, WITH),
    )
    assert windows(watched) == [
        ("removed", iso(at(1)), iso(at(2))),
        ("restored", iso(at(3)), iso(at(4))),
    ]


def test_a_latest_change_waits_for_a_capture_that_confirms_it(watched: Path) -> None:
    _, [redone] = bring_in(watched, archived(1, WITH), archived(2, WITHOUT))
    assert redone.waiting and alerts(watched) == []
    bring_in(watched, archived(3, WITHOUT))
    assert windows(watched) == [("removed", iso(at(1)), iso(at(2)))]


def test_archived_failures_and_stand_ins_are_kept_not_compared(watched: Path) -> None:
    captcha = "<html><body><h1>Verify you are human</h1><p>Complete the captcha.</p></body></html>"
    summary, _ = bring_in(
        watched,
        archived(1, WITH),
        archived(2, "Service unavailable", status=503),
        archived(3, captcha),
        archived(4, WITH),
    )
    assert (summary.added, summary.unusable) == (4, 2)
    assert alerts(watched) == []
    outcomes = [
        (h["outcome"], h["reason"])
        for h in json.loads(pw(watched, "history", "--json", URL).stdout)
    ]
    assert outcomes == [("capture", ""), ("unusable", "http_503"), ("unusable", "suspect"),
                        ("capture", "")]  # fmt: skip


def test_unwatched_urls_are_counted_not_stored(watched: Path) -> None:
    summary, redone = bring_in(watched, archived(1, WITH, url="https://elsewhere.example/"))
    assert (summary.added, summary.unwatched, redone) == (0, 1, [])


@pytest.mark.parametrize(
    ("written", "archived_as"),
    [
        ("https://vendor.example/docs", "HTTPS://Vendor.Example:443/docs#top"),
        ("http://vendor.example", "http://vendor.example:80/"),
    ],
    ids=["case-port-fragment", "empty-path"],
)
def test_archive_urls_match_watched_urls(written: str, archived_as: str) -> None:
    assert normal_url(written) == normal_url(archived_as)


# -- imports into a live timeline ------------------------------------------------------------


@pytest.fixture
def live(root: Path, server: ReplayServer) -> tuple[Path, str]:
    """A watch checked live at +1h (with the phrase) and +5h (without, confirmed at once):
    one removal alert, window +1h .. +5h, acknowledged with a note."""
    url = server.url("/guide")
    add_watch(root / "watchlists", "vendors", url, ["uyghur=Uyghur,Uighur"], every="1h")
    store = Store(root)
    try:
        for hours, html in ((1, WITH), (5, WITHOUT)):
            server.set("/guide", Page.html(html))
            asyncio.run(
                check_pass(store, select_watches(root), now=lambda h=hours: at(h), confirm_delay=0)
            )
    finally:
        store.close()
    [alert] = alerts(root)
    assert (alert["last_seen_at"], alert["first_missing_at"]) == (iso(at(1)), iso(at(5)))
    assert pw(root, "ack", str(alert["id"]), "--note", "reported to the editor").exit_code == 0
    return root, url


def test_an_import_between_two_captures_narrows_the_window(live: tuple[Path, str]) -> None:
    root, url = live
    [before] = alerts(root)
    _, [redone] = bring_in(root, archived(3, WITHOUT, url=url))
    [after] = alerts(root)
    assert redone.moved == (before["id"],) and redone.added == ()
    assert after["id"] == before["id"]
    assert (after["last_seen_at"], after["first_missing_at"]) == (iso(at(1)), iso(at(3)))
    assert (after["status"], after["note"]) == ("acked", "reported to the editor")
    assert after["source"] == "import"


def test_an_import_that_still_has_the_phrase_moves_last_seen(live: tuple[Path, str]) -> None:
    root, url = live
    bring_in(root, archived(2, WITH, url=url), archived(4, WITH, url=url))
    [after] = alerts(root)
    assert (after["last_seen_at"], after["first_missing_at"]) == (iso(at(4)), iso(at(5)))
    assert after["source"] == "import"  # its window now rests on an imported capture


def test_live_checks_go_on_after_an_import(live: tuple[Path, str], server: ReplayServer) -> None:
    root, url = live
    bring_in(root, archived(3, WITHOUT, url=url))
    server.set("/guide", Page.html(WITH))
    store = Store(root)
    try:
        asyncio.run(check_pass(store, select_watches(root), now=lambda: at(8), confirm_delay=0))
    finally:
        store.close()
    assert [a["kind"] for a in alerts(root)] == ["removed", "restored"]
    assert windows(root)[1] == ("restored", iso(at(5)), iso(at(8)))


# -- questions of timelines -------------------------------------------------------------------


@pytest.fixture
def story(watched: Path) -> Path:
    """Present from day 0 to day 36, gone on day 37, back on day 60 (two captures each)."""
    bring_in(
        watched,
        *(archived(24 * day, WITH) for day in (0, 10, 36)),
        *(archived(24 * day, WITHOUT) for day in (37, 40)),
        *(archived(24 * day, WITH) for day in (60, 61)),
    )
    return watched


@pytest.mark.parametrize(
    ("around", "days", "found"),
    [
        ("2020-12-08", "3", 1),
        ("2020-12-15", "3", 0),
        ("2020-12-15", "7", 1),
        ("2020-12-09T09:00:00+00:00", "0", 1),
    ],
    ids=["inside", "after", "widened", "instant"],
)
def test_changes_around_a_date(story: Path, around: str, days: str, found: int) -> None:
    result = pw(story, "changes", "--around", around, "--days", days, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == found
    if rows:
        assert (rows[0]["last_seen_at"], rows[0]["first_missing_at"]) == (
            iso(at(24 * 36)),
            iso(at(24 * 37)),
        )


def test_changes_around_needs_a_date(story: Path) -> None:
    result = pw(story, "changes", "--around", "last tuesday")
    assert result.exit_code == 2
    assert "not an ISO 8601 date" in result.output


@pytest.mark.parametrize("phrase", ["uyghur", "Uighur"], ids=["group", "alias"])
def test_timeline_gives_the_spans_of_presence(story: Path, phrase: str) -> None:
    result = pw(story, "timeline", phrase, "--json")
    assert result.exit_code == 0, result.output
    [page] = json.loads(result.stdout)
    assert page["url"] == URL and page["group"] == "uyghur"
    assert [(s["since"], s["last_seen"], s["until"]) for s in page["spans"]] == [
        (iso(at(0)), iso(at(24 * 36)), iso(at(24 * 37))),
        (iso(at(24 * 60)), iso(at(24 * 61)), None),
    ]
    text = pw(story, "timeline", phrase)
    assert "still there" in text.stdout and "gone by" in text.stdout


def test_timeline_of_an_unknown_phrase_is_bad_usage(story: Path) -> None:
    result = pw(story, "timeline", "nonsense")
    assert result.exit_code == 2
    assert "no phrase group or alias 'nonsense'" in result.output


# -- Wayback backfill through the command line ------------------------------------------------


@pytest.fixture
def archive() -> Any:
    from fake_wayback import FakeWayback

    with FakeWayback() as running:
        yield running


def snapshot(stamp: str, html: str, **kwargs: Any) -> Any:
    from fake_wayback import Snapshot

    return Snapshot(stamp, URL, body=html.encode(), **kwargs)


def backfill(root: Path, archive: Any, *args: str) -> Result:
    return pw(root, "backfill", "--wayback-url", archive.base_url, "--min-interval", "0", *args)


def test_backfill_finds_the_removal_and_its_window(watched: Path, archive: Any) -> None:
    archive.add(
        snapshot("20201101090000", WITH),
        snapshot("20201120090000", WITH),  # the last capture that still had it
        snapshot("20201201090000", "Service unavailable", status=503),
        snapshot("20201208180000", WITHOUT),  # the first that did not
        snapshot("20201215090000", WITHOUT),
    )
    result = backfill(watched, archive)
    assert result.exit_code == 0, result.output
    assert "5 captures added (1 not comparable)" in result.output
    [alert] = alerts(watched)
    assert (alert["kind"], alert["group"], alert["source"]) == ("removed", "uyghur", "wayback")
    assert alert["last_seen_at"] == "2020-11-20T09:00:00.000000+00:00"
    assert alert["first_missing_at"] == "2020-12-08T18:00:00.000000+00:00"
    assert "[-Is it Uyghur: boolean.-]" in alert["context"]

    again = backfill(watched, archive)  # resumable: nothing is fetched twice
    assert again.exit_code == 0, again.output
    assert "0 captures added" in again.output and "No new alerts." in again.output
    assert len(archive.seen("web")) == 5
    assert alerts(watched) == [alert]


def test_backfill_within_dates(watched: Path, archive: Any) -> None:
    archive.add(
        snapshot("20201101090000", WITH),
        snapshot("20201208180000", WITHOUT),
        snapshot("20201215090000", WITHOUT),
    )
    result = backfill(watched, archive, "--from", "2020-12-01", "--to", "2020-12-31")
    assert result.exit_code == 0, result.output
    assert "2 captures added" in result.output and alerts(watched) == []


def test_backfill_goes_on_past_a_capture_the_archive_lost(watched: Path, archive: Any) -> None:
    archive.add(
        snapshot("20201101090000", WITH),
        snapshot("20201120090000", WITH, gone=True),
        snapshot("20201208180000", WITHOUT),
        snapshot("20201215090000", WITHOUT),
    )
    result = backfill(watched, archive)
    assert result.exit_code == 0, result.output
    assert "3 captures added" in result.output and "1 failed" in result.output
    [alert] = alerts(watched)
    assert alert["last_seen_at"] == "2020-11-01T09:00:00.000000+00:00"


def test_backfill_from_an_archive_that_is_down_says_so(watched: Path, archive: Any) -> None:
    from fake_wayback import Canned

    archive.fail("cdx", *[Canned(503)] * 3)
    result = backfill(watched, archive, "--retries", "2", "--backoff", "0.01")
    assert result.exit_code == 1, result.output  # nothing was done: a script must know
    assert "failed: listing captures of " + URL in result.output
    assert isinstance(result.exception, (SystemExit, type(None)))  # no traceback
    assert len(archive.seen("cdx")) == 3  # the first try and two retries


def test_a_replay_that_is_not_the_archived_bytes_is_kept_not_compared(
    watched: Path, archive: Any
) -> None:
    archive.add(
        snapshot("20201101090000", WITH),
        snapshot("20201120090000", WITH, served=WITHOUT.encode()),  # the replay lies
        snapshot("20201215090000", WITH + "<!-- v2 -->"),
    )
    result = backfill(watched, archive)
    assert result.exit_code == 0, result.output
    assert alerts(watched) == []
    history = json.loads(pw(watched, "history", "--json", URL).stdout)
    assert [(h["outcome"], h["reason"]) for h in history] == [
        ("capture", ""),
        ("unusable", "not_original"),
        ("capture", ""),
    ]


def test_a_bare_date_ends_a_range_at_the_end_of_that_day(watched: Path, archive: Any) -> None:
    archive.add(snapshot("20201208180000", WITH), snapshot("20201209090000", WITH))
    result = backfill(watched, archive, "--from", "2020-12-08", "--to", "2020-12-08")
    assert result.exit_code == 0, result.output
    assert "1 captures added" in result.output


def test_an_alert_later_history_contradicts_is_withdrawn_not_deleted(watched: Path) -> None:
    bring_in(watched, archived(1, WITH), archived(2, WITHOUT), archived(3, WITHOUT))
    [first] = alerts(watched)
    assert pw(watched, "ack", str(first["id"]), "--note", "sent to the editor").exit_code == 0

    # a capture just after the 'removal' still had the phrase: the removal was a flap
    _, [redone] = bring_in(watched, archived(2.5, WITH))
    assert redone.stale == (first["id"],)
    [withdrawn] = alerts(watched)
    assert (withdrawn["status"], withdrawn["note"]) == ("withdrawn", "sent to the editor")
    assert json.loads(pw(watched, "alerts", "--json").stdout) == []  # not among the new ones
    listed = json.loads(pw(watched, "alerts", "--json", "--status", "withdrawn").stdout)
    assert [a["id"] for a in listed] == [first["id"]]

    bring_in(watched, archived(4, WITHOUT))  # now it really went, later
    assert [(a["status"], a["last_seen_at"], a["first_missing_at"]) for a in alerts(watched)] == [
        ("withdrawn", iso(at(1)), iso(at(2))),
        ("new", iso(at(2.5)), iso(at(3))),
    ]
